"""Run one prompt under two thinking policies and compare what pruning saved and what it cost.

Both runs use the same loaded model, the same seed and the same sampler, one after the other, each
starting from an empty KV cache so neither gets the other's prompt for free. With identical
policies the two replies are identical, so every difference is the policy's doing.

Every export names what it was run on (model, quantization, seed, both policies in full), since a
comparison read without them cannot be repeated or trusted; two empty answers are "no answer on
either side", never "identical".
"""

from __future__ import annotations

import dataclasses
import difflib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.core.errors import LeanCoderError
from app.core.gguf.header import read_header
from app.core.llm.chat_template import Message
from app.core.llm.engine import CancelToken, GenerationEvent, ReplyStats, SamplingParams
from app.core.llm.engine_types import ChatEngine, ModelInfo
from app.core.models.display_name import quantization
from app.core.thinking.parser import Channel
from app.core.thinking.policy import ThinkingPolicy

DEFAULT_SEED = 1234
BOTH_EMPTY = "no answer on either side"
IDENTICAL = "identical"
DIFFERENT = "different"


@dataclass(slots=True)
class CompareSide:
    policy: ThinkingPolicy
    thinking: str = ""
    answer: str = ""
    stats: ReplyStats = field(default_factory=ReplyStats)


@dataclass(slots=True)
class Comparison:
    prompt: str
    seed: int
    a: CompareSide
    b: CompareSide
    model: str = "unknown model"
    quantization: str = "unknown"

    def answers(self) -> str:
        """BOTH_EMPTY, IDENTICAL or DIFFERENT: how the two answers relate."""
        if not self.a.answer.strip() and not self.b.answer.strip():
            return BOTH_EMPTY
        return IDENTICAL if self.a.answer == self.b.answer else DIFFERENT

    def diff_summary(self) -> list[str]:
        """The answer diff's lines, or one line saying why there is none."""
        kind = self.answers()
        if kind == BOTH_EMPTY:
            return ["No answer on either side: neither run wrote an answer (see the thinking)."]
        return self.answer_diff() if kind == DIFFERENT else ["The two answers are identical."]

    def savings(self, side: str) -> str:
        """What `side` ("a" or "b") saved against the other: tokens and seconds, or what it
        cost when it spent more."""
        mine, other = (self.a, self.b) if side == "a" else (self.b, self.a)
        tokens = other.stats.generated_tokens - mine.stats.generated_tokens
        seconds = other.stats.total_seconds - mine.stats.total_seconds
        total = other.stats.generated_tokens
        share = f" ({abs(tokens) / total:.0%})" if total else ""
        return (
            f"{'saved' if tokens >= 0 else 'spent'} {abs(tokens)} tokens{share} "
            f"{'' if tokens >= 0 else 'more '}and took {abs(seconds):.1f} s "
            f"{'less' if seconds >= 0 else 'more'} than {other.policy.name}"
        )

    def answer_diff(self) -> list[str]:
        return list(
            difflib.unified_diff(
                self.a.answer.splitlines(),
                self.b.answer.splitlines(),
                fromfile=self.a.policy.name,
                tofile=self.b.policy.name,
                lineterm="",
            )
        )

    def rows(self) -> list[tuple[str, str, str, str]]:
        """(measure, A, B, change) for the table every front end shows."""
        sa, sb = self.a.stats, self.b.stats

        def change(x: float, y: float) -> str:
            return f"{(y - x) / x:+.0%}" if x else ("0%" if y == x else "n/a")

        measures: list[tuple[str, float, float, str]] = [
            ("thinking tokens", sa.thinking_tokens, sb.thinking_tokens, "{:.0f}"),
            ("answer tokens", sa.answer_tokens, sb.answer_tokens, "{:.0f}"),
            ("total tokens", sa.generated_tokens, sb.generated_tokens, "{:.0f}"),
            ("time (s)", sa.total_seconds, sb.total_seconds, "{:.2f}"),
            ("decode tokens/s", sa.decode_tokens_per_s, sb.decode_tokens_per_s, "{:.1f}"),
            ("suppressed", sa.suppressed_tokens, sb.suppressed_tokens, "{:.0f}"),
            ("forced", sa.forced_tokens, sb.forced_tokens, "{:.0f}"),
            ("loops broken", sa.loops_broken, sb.loops_broken, "{:.0f}"),
        ]
        return [(name, fmt.format(x), fmt.format(y), change(x, y)) for name, x, y, fmt in measures]

    def to_dict(self) -> dict[str, Any]:
        def side(s: CompareSide) -> dict[str, Any]:
            return {
                "policy": s.policy.to_dict(),
                "thinking": s.thinking,
                "answer": s.answer,
                "stats": s.stats.to_dict(),
            }

        return {
            "model": self.model,
            "quantization": self.quantization,
            "prompt": self.prompt,
            "seed": self.seed,
            "a": side(self.a),
            "b": side(self.b),
            "answers": self.answers(),
            "answer_diff": self.answer_diff(),
            "identical_answers": self.answers() == IDENTICAL,
            "savings": {"a": self.savings("a"), "b": self.savings("b")},
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=2)

    def to_markdown(self) -> str:
        a, b = self.a.policy.name, self.b.policy.name
        lines = [
            "# LeanCoder comparison",
            "",
            f"- Model: {self.model}",
            f"- Quantization: {self.quantization}",
            f"- Seed: {self.seed}",
            f"- Policy A: {_policy_line(self.a.policy)}",
            f"- Policy B: {_policy_line(self.b.policy)}",
            "",
            f"Prompt: {self.prompt}",
            "",
            f"| measure | {a} | {b} | change |",
            "|---|---|---|---|",
        ]
        lines += [f"| {m} | {x} | {y} | {c} |" for m, x, y, c in self.rows()]
        lines += ["", f"- A ({a}) {self.savings('a')}.", f"- B ({b}) {self.savings('b')}."]
        for side in (self.a, self.b):
            lines += ["", f"## {side.policy.name}", "", "<details><summary>Thinking</summary>", ""]
            lines += [side.thinking or "(none)", "", "</details>", "", side.answer or "(no answer)"]
        lines += ["", "## Answer diff", "", "```diff", *self.diff_summary(), "```", ""]
        return "\n".join(lines)


def _policy_line(policy: ThinkingPolicy) -> str:
    """A policy's name and every setting, so the export can be rerun as it was."""
    settings = ", ".join(f"{k}={v}" for k, v in policy.to_dict().items() if k != "name")
    return f"{policy.name} ({settings})"


def model_quantization(info: ModelInfo) -> str:
    """The quantization label from the GGUF header's file type, else from the file name."""
    file_type = None
    try:
        if info.path.is_file():
            raw = read_header(info.path).metadata.get("general.file_type")
            file_type = raw if isinstance(raw, int) else None
    except (LeanCoderError, OSError):
        file_type = None
    return quantization(info.path.name, file_type) or "unknown"


def run_comparison(
    engine: ChatEngine,
    messages: Sequence[Message],
    policy_a: ThinkingPolicy,
    policy_b: ThinkingPolicy,
    sampling: SamplingParams | None = None,
    *,
    force_thinking: bool = False,
    cancel: CancelToken | None = None,
    on_event: Callable[[str, GenerationEvent], None] | None = None,
) -> Comparison:
    """Run A then B; `on_event("a"|"b", event)` streams both for a live view."""
    sampling = sampling or SamplingParams(seed=DEFAULT_SEED)
    if sampling.seed is None:
        sampling = dataclasses.replace(sampling, seed=DEFAULT_SEED)
    prompt = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
    sides = {"a": CompareSide(policy_a), "b": CompareSide(policy_b)}
    for key, side in sides.items():
        if cancel is not None and cancel.is_set():
            break
        engine.reset_cache()
        thinking: list[str] = []
        answer: list[str] = []
        for event in engine.generate(
            messages, sampling, cancel, policy=side.policy, force_thinking=force_thinking
        ):
            if on_event is not None:
                on_event(key, event)
            if event.kind == "text":
                (thinking if event.channel is Channel.THINKING else answer).append(event.text)
            elif event.kind == "done":
                side.stats = event.stats
        side.thinking, side.answer = "".join(thinking), "".join(answer)
    assert sampling.seed is not None
    result = Comparison(prompt, sampling.seed, sides["a"], sides["b"])
    if engine.info is not None:
        result.model, result.quantization = engine.info.name, model_quantization(engine.info)
    return result
