"""DEER-style early exit against plain thinking on the bundled thinking tasks.

Every task runs with thinking forced open, once without early exit and once per threshold, with the
same seed and sampler, the KV cache cleared before each run. Prints per policy: accuracy, mean
thinking tokens, how many runs exited early, and the probes' cost (trial tokens evaluated and
rolled back, and their share of the run time); then the ratios against the run without early
exit. On the starter model this measures the mechanics and the overhead only: it is no reasoner,
so "accuracy at fewer thinking tokens" needs a real reasoning model (pass --model PATH).

    .venv/bin/python bench/early_exit.py [--model PATH|starter] [--thresholds 0.95,0.8,0.5]
        [--min-tokens 16] [--interval 16] [--probe-tokens 12] [--max-tokens 256] [--limit N]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from app.core.evals.thinking_bench import DEFAULT_TASKS, Task, is_correct, load_tasks
from app.core.llm.engine import Engine, LoadOptions, ReplyStats, SamplingParams
from app.core.models.starter import resolve_model
from app.core.thinking.parser import Channel
from app.core.thinking.policy import ThinkingPolicy

SEED = 1234


@dataclass
class Row:
    correct: bool
    stats: ReplyStats
    seconds: float


def run_task(engine: Engine, task: Task, policy: ThinkingPolicy, sampling: SamplingParams) -> Row:
    engine.reset_cache()
    answer: list[str] = []
    stats = ReplyStats()
    start = time.perf_counter()
    for event in engine.generate(
        [{"role": "user", "content": task.prompt}], sampling, policy=policy, force_thinking=True
    ):
        if event.kind == "text" and event.channel is Channel.ANSWER:
            answer.append(event.text)
        elif event.kind == "done":
            stats = event.stats
    return Row(is_correct(task, "".join(answer).strip()), stats, time.perf_counter() - start)


def summary(name: str, rows: list[Row]) -> dict[str, float | str]:
    seconds = sum(r.seconds for r in rows)
    return {
        "policy": name,
        "accuracy": sum(r.correct for r in rows) / len(rows),
        "thinking": statistics.fmean(r.stats.thinking_tokens for r in rows),
        "answer": statistics.fmean(r.stats.answer_tokens for r in rows),
        "exits": sum(r.stats.early_exits for r in rows),
        "probes": statistics.fmean(r.stats.early_exit_probes for r in rows),
        "probe_tokens": statistics.fmean(r.stats.early_exit_probe_tokens for r in rows),
        "probe_share": sum(r.stats.early_exit_probe_seconds for r in rows) / seconds,
        "seconds": seconds,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="starter")
    parser.add_argument("--tasks", default=str(DEFAULT_TASKS))
    parser.add_argument("--thresholds", default="0.95,0.8,0.5")
    parser.add_argument("--min-tokens", type=int, default=16)
    parser.add_argument("--interval", type=int, default=16)
    parser.add_argument("--probe-tokens", type=int, default=12)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--limit", type=int, default=0, help="run only the first N tasks")
    args = parser.parse_args()

    tasks = load_tasks(Path(args.tasks))
    if args.limit:
        tasks = tasks[: args.limit]
    base = ThinkingPolicy(name="no early exit")
    policies = [base] + [
        dataclasses.replace(
            base,
            name=f"early exit > {threshold}",
            early_exit=True,
            early_exit_threshold=float(threshold),
            early_exit_min_tokens=args.min_tokens,
            early_exit_interval=args.interval,
            early_exit_probe_tokens=args.probe_tokens,
        )
        for threshold in args.thresholds.split(",")
    ]
    # Reasoning models' recommended sampling (design notes, section 3), one fixed seed.
    sampling = SamplingParams(temperature=0.6, top_p=0.95, max_tokens=args.max_tokens, seed=SEED)
    engine = Engine()
    engine.load(resolve_model(args.model), LoadOptions(n_ctx=2048))
    run_task(engine, tasks[0], base, dataclasses.replace(sampling, max_tokens=16))  # warm-up
    results: list[dict[str, float | str]] = []
    for policy in policies:
        rows = [run_task(engine, task, policy, sampling) for task in tasks]
        results.append(summary(policy.name, rows))
    engine.unload()

    print(
        f"model: {args.model}  tasks: {len(tasks)}  seed: {SEED}  min tokens: {args.min_tokens}"
        f"  interval: {args.interval}  probe tokens: {args.probe_tokens}"
    )
    header = ("policy", "acc", "think", "answer", "exits", "probes", "probe tok", "probe %", "s")
    print(f"{header[0]:20}" + "".join(f"{h:>10}" for h in header[1:]))
    for r in results:
        print(
            f"{r['policy']!s:20}{r['accuracy']:10.2f}{r['thinking']:10.1f}{r['answer']:10.1f}"
            f"{r['exits']:10}{r['probes']:10.2f}{r['probe_tokens']:10.1f}"
            f"{100 * float(r['probe_share']):10.1f}{r['seconds']:10.1f}"
        )
    ref = results[0]
    print("\nagainst no early exit (ratios; accuracy also as a difference in points)")
    print(f"{'policy':20}{'thinking':>10}{'accuracy':>10}{'acc diff':>10}{'time':>10}")
    for r in results[1:]:
        thinking = float(r["thinking"]) / float(ref["thinking"]) if ref["thinking"] else 0.0
        accuracy = (
            f"{float(r['accuracy']) / float(ref['accuracy']):10.3f}" if ref["accuracy"] else "n/a"
        )
        points = 100 * (float(r["accuracy"]) - float(ref["accuracy"]))
        seconds = float(r["seconds"]) / float(ref["seconds"])
        print(f"{r['policy']!s:20}{thinking:10.3f}{accuracy:>10}{points:+10.1f}{seconds:10.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
