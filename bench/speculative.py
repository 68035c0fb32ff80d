"""Prompt-lookup speculative decoding: decode speed with drafts against without, and acceptance.

Two kinds of replies, each decoded twice from an empty cache at temperature 0, once with
`speculative="off"` and once with the mode under test (default `auto`, the engine's default),
interleaved (the order alternates from one prompt to the next, so a machine that slows down or
speeds up during the run weighs on both sides alike):

- edit: a file from the edit corpus (tests/edit_corpus: the largest UTF-8 `before` files, one per
  case; they are small, 100-300 characters) plus a change request, asking for the whole file back
  with the change: the reply copies most of the file, as edit replies do;
- chat: open prompts where little of the reply repeats the prompt.

Both runs of a pair must give the same text (counted as mismatches: 0 expected). Decode speed is
the kind's generated tokens (after the first) over its decode seconds, summed over its prompts;
acceptance is accepted / drafted tokens. The run ends with one line per kind: its name first, the
speed ratio (with drafts / without) last. Goals: edit >= 1.8, chat >= 0.97.

    .venv/bin/python bench/speculative.py [--model PATH|starter] [--mode auto|on] [--edits 8]
        [--chats 6] [--tokens 200] [--ctx 4096] [--threads N]
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

from app.core.llm.engine import Engine, LoadOptions, ReplyStats, SamplingParams, run_to_completion
from app.core.llm.speculative import SpeculativeMode
from app.core.models.starter import resolve_model

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.edit_corpus_support import load_corpus

CHANGES = [
    "add a one-line comment at the very top that says what the file is for",
    "rename the first function or variable it defines to a clearer name, everywhere",
    "fix any typo you find and keep everything else exactly as it is",
    "add a blank line at the end and keep everything else exactly as it is",
]
CHATS = [
    "Tell me a short story about a lighthouse keeper and a storm.",
    "Why is the sky blue? Explain it to a ten-year-old.",
    "Give me five ideas for a birthday party for a friend who loves hiking.",
    "What are the pros and cons of working from home?",
    "Describe the city of Paris in spring.",
    "How do I start learning to play the guitar?",
    "Write a poem about autumn leaves.",
    "What should I pack for a weekend camping trip?",
]


@dataclass(slots=True)
class Side:
    tokens: int = 0
    seconds: float = 0.0
    drafted: int = 0
    accepted: int = 0

    def add(self, stats: ReplyStats) -> None:
        self.tokens += max(0, stats.generated_tokens - stats.forced_tokens - 1)
        self.seconds += stats.decode_seconds
        self.drafted += stats.drafted_tokens
        self.accepted += stats.accepted_tokens

    @property
    def tok_s(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0


@dataclass(slots=True)
class Kind:
    name: str
    plain: Side = field(default_factory=Side)
    drafted: Side = field(default_factory=Side)
    mismatches: int = 0
    prompts: int = 0

    @property
    def ratio(self) -> float:
        return self.drafted.tok_s / self.plain.tok_s if self.plain.tok_s > 0 else 0.0


def edit_prompts(count: int) -> list[str]:
    """The corpus's largest text files (its files are small: 100-300 characters), one per case."""
    files: dict[str, tuple[str, str]] = {}
    for case in load_corpus():
        for path, file in case.before.items():
            try:
                text = file.data.decode("utf-8")
            except UnicodeDecodeError:
                continue
            if len(text) >= 100 and "\x00" not in text and "\r" not in text:
                files.setdefault(case.name, (path, text))
    chosen = sorted(files.values(), key=lambda item: -len(item[1]))[:count]
    return [
        f"Here is the file {path}:\n```\n{text}```\n\nRewrite {path} and "
        f"{CHANGES[i % len(CHANGES)]}. Reply with the complete file in one code block."
        for i, (path, text) in enumerate(chosen)
    ]


def run_pair(engine: Engine, prompt: str, mode: SpeculativeMode, tokens: int, kind: Kind) -> None:
    messages = [{"role": "user", "content": prompt}]
    order: list[SpeculativeMode] = ["off", mode] if kind.prompts % 2 == 0 else [mode, "off"]
    answers: dict[str, str] = {}
    for side in order:
        engine.reset_cache()
        sampling = SamplingParams(temperature=0.0, seed=1, max_tokens=tokens, speculative=side)
        _, answer, stats = run_to_completion(engine, messages, sampling)
        answers[side] = answer
        (kind.plain if side == "off" else kind.drafted).add(stats)
        print(
            f"  {kind.name} #{kind.prompts} {side:4}: {stats.generated_tokens} tokens at "
            f"{stats.decode_tokens_per_s:.1f} tok/s, {stats.accepted_tokens}/"
            f"{stats.drafted_tokens} drafted accepted",
            flush=True,
        )
    if answers["off"] != answers[mode]:
        kind.mismatches += 1
    kind.prompts += 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="starter")
    parser.add_argument("--mode", choices=("auto", "on"), default="auto")
    parser.add_argument("--edits", type=int, default=8)
    parser.add_argument("--chats", type=int, default=6)
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--ctx", type=int, default=4096)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--gpu-layers", type=int, default=0)
    args = parser.parse_args(argv)
    engine = Engine()
    info = engine.load(
        resolve_model(args.model),
        LoadOptions(n_ctx=args.ctx, n_threads=args.threads or None, n_gpu_layers=args.gpu_layers),
    )
    print(f"model {info.name}, {info.n_threads} decode threads, mode {args.mode}", flush=True)
    edit, chat = Kind("edit"), Kind("chat")
    try:
        for prompt in edit_prompts(args.edits):
            run_pair(engine, prompt, args.mode, args.tokens, edit)
        for prompt in CHATS[: args.chats]:
            run_pair(engine, prompt, args.mode, args.tokens, chat)
    finally:
        engine.unload()
    print()
    for kind in (edit, chat):
        side = kind.drafted
        rate = side.accepted / side.drafted if side.drafted else 0.0
        print(
            f"{kind.name}: {kind.prompts} prompts, {kind.plain.tok_s:.1f} tok/s without drafts, "
            f"{side.tok_s:.1f} with ({args.mode}), {side.accepted}/{side.drafted} drafted tokens "
            f"accepted ({rate:.0%}), {kind.mismatches} text mismatches, ratio {kind.ratio:.2f}"
        )
    return 0 if edit.mismatches == chat.mismatches == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
