"""How far fast mode (thinking cut out of the KV cache in place) moves the model, and what it saves.

For each two-turn conversation, turn 1 runs with thinking forced open and a thinking budget (so a
thinking block is followed by an answer); the KV cache after turn 1 is saved. Turn 2's prompt
(the chat template drops turn 1's thinking) is then prepared three ways from that same cache:

- fresh: cache cleared, the whole pruned history prefilled (the reference);
- exact: the engine's default, cached prefix up to where the thinking began, the rest prefilled;
- fast:  the thinking span removed from the cache and the answer shifted down
  (app.core.llm.kv_shift).

The reference's greedy continuation (N tokens) is teacher-forced through all three, and each step's
next-token distribution is compared with the reference: top-1 agreement and KL(fresh || mode) in
nats. Exact against fresh is the numerical noise floor. Prefill tokens and time (cache preparation
plus evaluation of the rest of the prompt, best of --repeats) are compared between exact and fast.
Turn 1 is retried with the next seed when it gives no thinking followed by an answer (the starter
model often stops inside its thinking), until --conversations conversations are compared.

    .venv/bin/python bench/kv_fast_mode.py [--model PATH|starter] [--conversations 30] [--tokens 16]
        [--ctx 2048] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import llama_cpp
import numpy as np
import numpy.typing as npt

from app.core.llm.engine import Engine, LoadOptions, ReplyStats, SamplingParams
from app.core.llm.kv_shift import CacheMode
from app.core.models.starter import resolve_model
from app.core.thinking.parser import Channel
from app.core.thinking.policy import ThinkingPolicy

QUESTIONS = [
    "Is 17 a prime number? Think step by step.",
    "What is 12 times 7? Show your reasoning.",
    "A train travels 60 km in 1.5 hours. What is its average speed?",
    "Write a Python function that reverses a string.",
    "How many legs do three spiders and two cats have together?",
    "What does the Python expression len('hello') return, and why?",
    "If I have 5 apples and eat 2, then buy 4 more, how many do I have?",
    "Explain what a linked list is in two sentences.",
    "What is the sum of the numbers from 1 to 10?",
    "Write a Python function that checks whether a number is even.",
]
FOLLOW_UPS = [
    "Why?",
    "Can you explain that more simply?",
    "Are you sure? Check it again.",
    "Now give me a second example.",
    "Summarise your answer in one sentence.",
]
BUDGETS = (16, 32, 64)
Logits = npt.NDArray[np.float64]


@dataclass
class ModeRun:
    prefill_tokens: int
    prefill_s: float
    log_probs: list[Logits]


@dataclass
class Totals:
    steps: int = 0
    agree: int = 0
    first_agree: int = 0
    kls: list[float] = field(default_factory=list)
    first_kls: list[float] = field(default_factory=list)
    prefill_tokens: list[int] = field(default_factory=list)
    prefill_s: list[float] = field(default_factory=list)


def log_softmax(llm: Any) -> Logits:
    raw = llama_cpp.llama_get_logits_ith(llm._ctx.ctx, -1)
    logits = np.ctypeslib.as_array(raw, shape=(llm.n_vocab(),)).astype(np.float64)
    logits -= logits.max()
    out: Logits = logits - np.log(np.exp(logits).sum())
    return out


def run_mode(
    engine: Engine,
    llm: Any,
    prompt: list[int],
    mode: CacheMode | None,
    follow: list[int],
    after_turn1: Any,
    repeats: int,
) -> ModeRun:
    """Prepare the cache for `prompt` (None: from scratch), then teacher-force `follow`.

    The preparation runs `repeats` times from the same saved cache; the fastest time counts
    (the machine is shared: the minimum is the least disturbed run).
    """
    engine.cache_mode = mode or "exact"
    times: list[float] = []
    pending: list[int] = []
    for _ in range(repeats):
        if mode is None:
            engine.reset_cache()
        else:
            llm.load_state(after_turn1)
        start = time.perf_counter()
        pending = engine._prepare_cache(llm, prompt, ReplyStats())
        llm.eval(pending)
        times.append(time.perf_counter() - start)
    prefill_s = min(times)
    log_probs = [log_softmax(llm)]
    for token in follow:
        llm.eval([token])
        log_probs.append(log_softmax(llm))
    return ModeRun(len(pending), prefill_s, log_probs)


def greedy_continuation(engine: Engine, llm: Any, prompt: list[int], n: int) -> list[int]:
    engine.reset_cache()
    engine.cache_mode = "exact"
    llm.eval(engine._prepare_cache(llm, prompt, ReplyStats()))
    tokens: list[int] = []
    vocab = llm._model.vocab
    for _ in range(n):
        token = int(np.argmax(log_softmax(llm)))
        if llama_cpp.llama_vocab_is_eog(vocab, token):
            break
        tokens.append(token)
        llm.eval([token])
    return tokens


def compare(reference: ModeRun, other: ModeRun, totals: Totals) -> None:
    for i, (ref, got) in enumerate(zip(reference.log_probs, other.log_probs, strict=True)):
        kl = float(np.sum(np.exp(ref) * (ref - got)))
        same = int(np.argmax(ref)) == int(np.argmax(got))
        totals.steps += 1
        totals.agree += same
        totals.kls.append(max(0.0, kl))
        if i == 0:
            totals.first_agree += same
            totals.first_kls.append(max(0.0, kl))
    totals.prefill_tokens.append(other.prefill_tokens)
    totals.prefill_s.append(other.prefill_s)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="starter")
    parser.add_argument("--conversations", type=int, default=30)
    parser.add_argument("--tokens", type=int, default=16, help="continuation tokens compared")
    parser.add_argument("--ctx", type=int, default=2048)
    parser.add_argument("--threads", type=int, default=None, help="llama.cpp threads")
    parser.add_argument("--repeats", type=int, default=3, help="timed preparations per mode")
    args = parser.parse_args()

    engine = Engine()
    engine.load(resolve_model(args.model), LoadOptions(n_ctx=args.ctx, n_threads=args.threads))
    llm = engine._llm
    assert llm is not None
    exact, fast, fresh = Totals(), Totals(), Totals()
    removed: list[int] = []
    fallbacks: list[str] = []
    skipped = 0
    for c in range(args.conversations * 4):
        if len(removed) + len(fallbacks) >= args.conversations:
            break
        question = [{"role": "user", "content": QUESTIONS[c % len(QUESTIONS)]}]
        budget = BUDGETS[(c // len(QUESTIONS)) % len(BUDGETS)]
        engine.cache_mode = "exact"
        engine.reset_cache()
        events = list(
            engine.generate(
                question,
                SamplingParams(max_tokens=budget + 100, seed=100 + c),
                policy=ThinkingPolicy(name="cap", budget=budget),
                force_thinking=True,
            )
        )
        answer = "".join(
            e.text for e in events if e.kind == "text" and e.channel is Channel.ANSWER
        ).strip()
        if not answer or not events[-1].stats.thinking_tokens:
            skipped += 1
            continue
        after_turn1 = llm.save_state()
        turn2 = [
            *question,
            {"role": "assistant", "content": answer},
            {"role": "user", "content": FOLLOW_UPS[c % len(FOLLOW_UPS)]},
        ]
        prompt = engine.tokenize_prompt(engine.render_prompt(turn2))
        follow = greedy_continuation(engine, llm, prompt, args.tokens)
        runs = {
            mode: run_mode(engine, llm, prompt, mode, follow, after_turn1, args.repeats)
            for mode in (None, "exact", "fast")
        }
        reference, exact_run, fast_run = runs[None], runs["exact"], runs["fast"]
        outcome = engine.last_cache_outcome
        assert outcome is not None
        if outcome.mode != "fast":
            fallbacks.append(outcome.reason)
            continue
        removed.append(outcome.removed)
        compare(reference, reference, fresh)
        compare(reference, exact_run, exact)
        compare(reference, fast_run, fast)
    engine.unload()
    report(args, exact, fast, fresh, removed, fallbacks, skipped)
    return 0


def report(
    args: argparse.Namespace,
    exact: Totals,
    fast: Totals,
    fresh: Totals,
    removed: list[int],
    fallbacks: list[str],
    skipped: int,
) -> None:
    n = len(removed)
    print(
        f"model: {args.model}  compared: {n}  fell back: {len(fallbacks)}  "
        f"skipped (turn 1 gave no thinking+answer): {skipped}  "
        f"continuation: {args.tokens} tokens  timing: best of {args.repeats}"
    )
    if not n:
        print("nothing to compare:", "; ".join(sorted(set(fallbacks))))
        return
    print(f"thinking span removed from the cache: mean {statistics.mean(removed):.1f} tokens")
    print()
    print(f"{'against a fresh prefill':34}{'exact':>10}{'fast':>10}")
    rows = [
        ("top-1 agreement, all steps", exact.agree / exact.steps, fast.agree / fast.steps, ".3f"),
        ("top-1 agreement, first token", exact.first_agree / n, fast.first_agree / n, ".3f"),
        (
            "KL nats, mean over all steps",
            statistics.mean(exact.kls),
            statistics.mean(fast.kls),
            ".4f",
        ),
        ("KL nats, max over all steps", max(exact.kls), max(fast.kls), ".4f"),
        (
            "KL nats, first token mean",
            statistics.mean(exact.first_kls),
            statistics.mean(fast.first_kls),
            ".4f",
        ),
        (
            "KL nats, first token median",
            statistics.median(exact.first_kls),
            statistics.median(fast.first_kls),
            ".4f",
        ),
    ]
    for label, a, b, fmt in rows:
        print(f"{label:34}{a:>10{fmt}}{b:>10{fmt}}")
    print()
    print(f"{'turn-2 prefill':34}{'fresh':>10}{'exact':>10}{'fast':>10}{'fast/exact':>12}")
    tok = [statistics.mean(t.prefill_tokens) for t in (fresh, exact, fast)]
    sec = [statistics.median(t.prefill_s) * 1000 for t in (fresh, exact, fast)]
    total = [sum(t.prefill_s) for t in (fresh, exact, fast)]
    for label, values, ratio in (
        ("tokens evaluated (mean)", tok, tok[2] / tok[1]),
        ("time ms (median)", sec, sec[2] / sec[1]),
        ("time s (total)", total, total[2] / total[1]),
    ):
        print(f"{label:34}{values[0]:10.1f}{values[1]:10.1f}{values[2]:10.1f}{ratio:12.3f}")
    saved = [e - f for e, f in zip(exact.prefill_tokens, fast.prefill_tokens, strict=True)]
    saved_s = [e - f for e, f in zip(exact.prefill_s, fast.prefill_s, strict=True)]
    print(
        f"fast saves {statistics.mean(saved):.1f} prefill tokens per turn "
        f"({sum(saved) / sum(exact.prefill_tokens):.0%} of exact mode's), "
        f"median {statistics.median(saved_s) * 1000:.1f} ms"
    )
    if fallbacks:
        print("fallback reasons:", "; ".join(sorted(set(fallbacks))))


if __name__ == "__main__":
    sys.exit(main())
