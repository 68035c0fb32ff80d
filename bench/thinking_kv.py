"""How far thinking KV compaction moves the model, per importance rule and cap, and what it saves.

For each question the model thinks with thinking forced open and a budget (so a forced close and
an answer follow), temperature 0, no cap: the reference reply. Its prompt and thinking are then
prefilled with logits at every position (the reference distributions, and the per-token entropy
the "entropy" rule reads) and the cache is saved. For each rule and cap (a share of the thinking,
at least the minimum cap), that cache is compacted by the engine's own compactor
(app.core.llm.thinking_kv, the same selection and KV edit it makes mid-reply, here once at the end
of the thinking) and the reference answer is teacher-forced through it in one batch: each answer
position's next-token distribution against the uncompacted one (top-1 agreement, KL(full ||
compacted) in nats; "many continuations": every answer position of every question). Then the
answer is decoded greedily (same seed) from the compacted and from the full cache: agreement is
the share of answer tokens equal before the first difference. Peak KV bytes: the most cells held
(prompt + thinking held + answer) x the model's bytes per cell. Decode speed: the greedy answer's
tokens per second from each cache, and the time of the compaction edit itself.

    .venv/bin/python bench/thinking_kv.py [--model PATH|starter] [--questions 10] [--budget 128]
        [--answer 16] [--ctx 1024] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from app.core.gguf.header import read_header
from app.core.llm.backend import LlamaBackend
from app.core.llm.engine import Engine, LoadOptions, SamplingParams
from app.core.llm.engine_types import ReplyStats
from app.core.llm.load_checks import kv_cache_bytes
from app.core.llm.thinking_kv import ThinkingCompactor
from app.core.models.starter import resolve_model
from app.core.thinking.importance import IMPORTANCE_RULES, ImportanceRuleName, entropy_of
from app.core.thinking.policy import MIN_THINKING_KV_CAP, ThinkingPolicy

QUESTIONS = [
    "Is 17 a prime number? Think step by step.",
    "A train travels 60 km in 1.5 hours. What is its average speed?",
    "If I have 5 apples and eat 2, then buy 4 more, how many do I have?",
    "What is 12 times 7? Show your reasoning.",
    "How many legs do three spiders and two cats have together?",
    "What does the Python expression len('hello') return, and why?",
    "Write a Python function that reverses a string.",
    "Is 91 divisible by 7? Explain.",
    "What is the sum of the first ten positive integers?",
    "Sort the numbers 5, 2, 9, 1 in ascending order and explain how.",
]
SHARES = (0.25, 0.5)
NO_MARKS = "none (sinks + window)"  # the control: StreamingLLM's choice, no importance rule


@dataclass
class Cell:
    kl: list[float] = field(default_factory=list)
    top1: list[float] = field(default_factory=list)
    agree: list[float] = field(default_factory=list)
    peak_cells: list[int] = field(default_factory=list)
    tok_s: list[float] = field(default_factory=list)
    edit_s: list[float] = field(default_factory=list)


def compactor(
    backend: LlamaBackend, prompt_len: int, cap: int, rule: str, stats: ReplyStats
) -> ThinkingCompactor:
    """The engine's compactor; the no-marks control runs the structural one with marks cleared."""
    chosen: ImportanceRuleName = "entropy" if rule == "entropy" else "structural"
    return ThinkingCompactor(backend, prompt_len, cap, chosen, stats)


def log_softmax(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    v = x.astype(np.float64)
    v = v - v.max(axis=-1, keepdims=True)
    out: npt.NDArray[np.float64] = v - np.log(np.exp(v).sum(axis=-1, keepdims=True))
    return out


def batch_logits(backend: LlamaBackend, tokens: list[int]) -> npt.NDArray[np.float32]:
    """Evaluate `tokens` after the cache in batches; logits at every position (rows)."""
    rows = []
    for i in range(0, len(tokens), backend.n_batch):
        chunk = tokens[i : i + backend.n_batch]
        backend.evaluate_all(chunk)
        rows += [np.array(backend.logits(j), copy=True) for j in range(len(chunk))]
    return np.stack(rows)


def greedy(backend: LlamaBackend, first: int, n: int) -> tuple[list[int], float]:
    """n greedy tokens after evaluating `first`; (tokens, tokens per second)."""
    out, token = [], first
    start = time.perf_counter()
    for _ in range(n):
        backend.evaluate([token])
        logits = backend.logits(-1)
        assert logits is not None
        token = int(np.argmax(logits))
        out.append(token)
        if backend.is_eog(token):
            break
    return out, len(out) / max(1e-9, time.perf_counter() - start)


def agreement(a: list[int], b: list[int]) -> float:
    n = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    return n / max(1, len(a))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--model", default="starter")
    ap.add_argument("--questions", type=int, default=10)
    ap.add_argument("--budget", type=int, default=128, help="thinking tokens before the close")
    ap.add_argument("--answer", type=int, default=16, help="answer tokens compared")
    ap.add_argument("--ctx", type=int, default=1024)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)
    path = resolve_model(args.model)
    engine = Engine()
    engine.load(path, LoadOptions(n_ctx=args.ctx, n_threads=args.threads))
    backend = engine._require()
    cell_bytes = kv_cache_bytes(read_header(path), 1)
    policy = ThinkingPolicy(name="ref", budget=args.budget, thinking_kv_cap=1_000_000)
    cells: dict[tuple[str, float], Cell] = {}
    ref_speed: list[float] = []
    ref_peak: list[int] = []
    for question in QUESTIONS[: args.questions]:
        messages = [{"role": "user", "content": question}]
        engine.reset_cache()
        # A cap the context never lets it reach: no compaction, but the compactor's record gives
        # the reply's token ids and which are thinking.
        sampling = SamplingParams(max_tokens=args.budget + 60, seed=1, temperature=0.0)
        events = list(engine.generate(messages, sampling, policy=policy, force_thinking=True))
        comp = engine.last_compactor
        stats: ReplyStats = events[-1].stats
        assert comp is not None and stats.kv_compactions == 0
        close = next((i for i, t in enumerate(comp.thinking) if not t), None)
        if close is None or close < 2 * MIN_THINKING_KV_CAP or len(comp.tokens) - close < 4:
            print(f"skip (no thinking followed by an answer): {question}", file=sys.stderr)
            continue
        prompt = backend.token_ids()[: comp.prompt_len].tolist()
        thinking, answer = comp.tokens[:close], comp.tokens[close : close + args.answer]
        ref_speed.append(stats.decode_tokens_per_s)
        # Reference: prompt, thinking and answer prefilled with logits at every position.
        backend.clear()
        backend.evaluate(prompt[:-1])
        rows = batch_logits(backend, [prompt[-1], *thinking])  # row i predicts thinking[i]
        entropies = [entropy_of(r) for r in rows[:-1]]
        saved = backend.save_state()
        full_rows = log_softmax(batch_logits(backend, answer[:-1]))
        full_rows = np.concatenate([log_softmax(rows[-1:]), full_rows])
        backend.load_state(saved)
        full_answer, full_tok_s = greedy(backend, answer[0], args.answer)
        ref_peak.append(len(prompt) + len(thinking) + 1 + len(full_answer))
        pieces = [backend.pieces(t).decode("utf-8", "ignore") for t in thinking]
        for rule in (*IMPORTANCE_RULES, NO_MARKS):
            for share in SHARES:
                cap = max(MIN_THINKING_KV_CAP, int(len(thinking) * share))
                backend.load_state(saved)
                st = ReplyStats()
                comp2 = compactor(backend, len(prompt), cap, rule, st)
                for i, (token, text) in enumerate(zip(thinking, pieces, strict=True)):
                    comp2.note(token, True, text, entropies[i])
                if rule == NO_MARKS:
                    comp2.marks.marked.clear()
                t0 = time.perf_counter()
                comp2.compact(0)
                edit = time.perf_counter() - t0
                # The last thinking logits are what the first answer token is sampled from; the
                # compacted cache must recompute them: evaluate the answer with the last
                # thinking token re-fed would double it, so compare from answer[0] on.
                rows_c = log_softmax(batch_logits(backend, answer[:-1]))
                ref = full_rows[1:]
                kl = (np.exp(ref) * (ref - rows_c)).sum(axis=-1)
                top1 = (ref.argmax(axis=-1) == rows_c.argmax(axis=-1)).mean()
                backend.load_state(saved)
                comp3 = compactor(backend, len(prompt), cap, rule, ReplyStats())
                for i, (token, text) in enumerate(zip(thinking, pieces, strict=True)):
                    comp3.note(token, True, text, entropies[i])
                if rule == NO_MARKS:
                    comp3.marks.marked.clear()
                comp3.compact(0)
                held = backend.n_tokens
                out, tok_s = greedy(backend, answer[0], args.answer)
                c = cells.setdefault((rule, share), Cell())
                c.kl += kl.tolist()
                c.top1.append(float(top1))
                c.agree.append(agreement(full_answer, out))
                c.peak_cells.append(held + 1 + len(out))
                c.tok_s.append(tok_s / max(1e-9, full_tok_s))
                c.edit_s.append(edit)
                print(
                    f"{question[:30]!r} {rule} cap {cap}/{len(thinking)}: evicted "
                    f"{st.thinking_evicted_tokens}, KL {kl.mean():.3f}, top-1 {top1:.2f}, "
                    f"answer agreement {c.agree[-1]:.2f}",
                    file=sys.stderr,
                )
    if not cells:
        print("no question gave thinking followed by an answer", file=sys.stderr)
        return 1
    print(f"model {path.name}, ctx {args.ctx}, threads {backend.n_threads()}, "
          f"{len(ref_peak)} questions, thinking budget {args.budget}, {args.answer} answer tokens")
    print(f"uncompacted: peak KV {statistics.mean(ref_peak) * cell_bytes / 1024:.0f} KiB, "
          f"decode {statistics.mean(ref_speed):.1f} tok/s (engine reply)")
    print("| rule | cap (share of thinking) | next-token KL (nats, mean / p90) | top-1 agreement "
          "| answer agreement (greedy, prefix) | peak KV vs uncompacted | answer decode speed vs "
          "uncompacted | compaction edit |")
    print("|---|---|---|---|---|---|---|---|")
    for (name, share), c in cells.items():
        peak = statistics.mean(c.peak_cells) / statistics.mean(ref_peak)
        print(
            f"| {name} | {share:.0%} | {statistics.mean(c.kl):.3f} / "
            f"{float(np.percentile(c.kl, 90)):.3f} | {statistics.mean(c.top1):.2f} | "
            f"{statistics.mean(c.agree):.2f} | {peak:.2f}x | {statistics.mean(c.tok_s):.2f}x | "
            f"{statistics.mean(c.edit_s) * 1000:.1f} ms |"
        )
    engine.unload()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
