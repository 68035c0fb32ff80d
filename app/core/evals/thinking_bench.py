"""Measure thinking policies on a task set with checkable answers: accuracy against tokens.

Each task has a prompt, an expected answer and a checker (`number`: the last number in the answer
equals the expected one; `word`: the expected word appears as a whole word; `contains`: the
expected text appears). Every policy runs every task with the same seed, so a policy's effect is
the only difference between rows.

Each policy's summary also weighs accuracy against tokens: accuracy points per 1,000 thinking
tokens (what a unit of thinking bought), and OckBench's OckScore (`ock_score`), which charges
all decoded tokens on a log scale so policies can be ranked by one number.
"""

from __future__ import annotations

import csv
import json
import math
import re
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from app.core.errors import LeanCoderError
from app.core.llm.engine import SamplingParams
from app.core.llm.engine_types import ChatEngine
from app.core.storage.paths import resources_dir
from app.core.thinking.parser import Channel
from app.core.thinking.policy import ThinkingPolicy

DEFAULT_TASKS = resources_dir() / "thinking_tasks.jsonl"
CHECKS = ("number", "word", "contains")
_NUMBER = re.compile(r"-?\d+(?:[.,]\d+)?")


@dataclass(frozen=True, slots=True)
class Task:
    id: str
    prompt: str
    answer: str
    check: str = "contains"


@dataclass(frozen=True, slots=True)
class TaskResult:
    policy: str
    task: str
    correct: bool
    thinking_tokens: int
    answer_tokens: int
    seconds: float
    loops_broken: int
    budget_hits: int
    answer: str


@dataclass(frozen=True, slots=True)
class PolicySummary:
    policy: str
    tasks: int
    accuracy: float
    mean_thinking: float
    median_thinking: float
    seconds: float
    loops_broken: int
    mean_tokens: float = 0.0  # thinking + answer, per task (OckBench's "average output tokens")
    accuracy_per_1k_thinking: float | None = None  # points per 1,000 mean thinking tokens
    ock_score: float = 0.0


# OckBench's reference length: a reply of this many tokens costs 10 x ln 2 = 6.9 points.
OCK_REFERENCE_TOKENS = 10_000


def ock_score(accuracy: float, mean_tokens: float) -> float:
    """OckBench's OckScore: accuracy in points minus 10 x ln(1 + mean tokens / 10,000).

    The natural logarithm and the +1 are OckBench's own: its leaderboard states "OckScore =
    Accuracy - 10 x ln(AvgTokens / 10,000 + 1)" (ockbench.github.io, section 2 Leaderboard;
    repository OckBench/OckBench.github.io, commit 79935a1, index.html and
    static/data/top200_model_performance.csv), and its published rows agree: 94.0 % at 6,745
    tokens scores 88.84, which log10 (91.76) or no +1 (97.94) would not give. The +1 keeps a
    reply under 10,000 tokens from scoring above its accuracy. `accuracy` is a fraction (0..1).
    """
    return 100.0 * accuracy - 10.0 * math.log(1.0 + max(0.0, mean_tokens) / OCK_REFERENCE_TOKENS)


def accuracy_per_1k_thinking(accuracy: float, mean_thinking: float) -> float | None:
    """Accuracy points per 1,000 thinking tokens; None when the policy did not think at all
    (no thinking bought the accuracy, and dividing by zero would say infinitely well)."""
    if mean_thinking <= 0:
        return None
    return 100.0 * accuracy / (mean_thinking / 1000.0)


def load_tasks(path: Path) -> list[Task]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise LeanCoderError(f"Cannot read the task file {path}: {exc.strerror or exc}") from exc
    tasks: list[Task] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            task = Task(str(raw["id"]), str(raw["prompt"]), str(raw["answer"]),
                        str(raw.get("check", "contains")))  # fmt: skip
        except (ValueError, KeyError, TypeError) as exc:
            raise LeanCoderError(
                f"{path.name} line {number} is not a task: expected JSON with id, prompt and "
                f"answer ({exc})."
            ) from exc
        if task.check not in CHECKS:
            raise LeanCoderError(
                f"{path.name} line {number}: unknown check {task.check!r} ({', '.join(CHECKS)})."
            )
        tasks.append(task)
    if not tasks:
        raise LeanCoderError(f"{path.name} holds no tasks.")
    return tasks


def is_correct(task: Task, answer: str) -> bool:
    if task.check == "number":
        numbers = _NUMBER.findall(answer.replace(",", ""))
        if not numbers:
            return False
        try:
            return abs(float(numbers[-1]) - float(task.answer)) < 1e-6
        except ValueError:
            return False
    if task.check == "word":
        return re.search(rf"(?<!\w){re.escape(task.answer)}(?!\w)", answer) is not None
    return task.answer in answer


def run_bench(
    engine: ChatEngine,
    tasks: Sequence[Task],
    policies: Sequence[ThinkingPolicy],
    sampling: SamplingParams,
    *,
    force_thinking: bool = False,
    on_result: Callable[[TaskResult], None] | None = None,
) -> list[TaskResult]:
    results: list[TaskResult] = []
    for policy in policies:
        for task in tasks:
            engine.reset_cache()
            answer: list[str] = []
            stats = None
            for event in engine.generate(
                [{"role": "user", "content": task.prompt}],
                sampling,
                policy=policy,
                force_thinking=force_thinking,
            ):
                if event.kind == "text" and event.channel is Channel.ANSWER:
                    answer.append(event.text)
                elif event.kind == "done":
                    stats = event.stats
            assert stats is not None
            text = "".join(answer).strip()
            result = TaskResult(
                policy=policy.name,
                task=task.id,
                correct=is_correct(task, text),
                thinking_tokens=stats.thinking_tokens,
                answer_tokens=stats.answer_tokens,
                seconds=round(stats.total_seconds, 3),
                loops_broken=stats.loops_broken,
                budget_hits=stats.budget_hits,
                answer=text,
            )
            results.append(result)
            if on_result is not None:
                on_result(result)
    return results


def summarize(results: Sequence[TaskResult]) -> list[PolicySummary]:
    summaries: list[PolicySummary] = []
    for policy in dict.fromkeys(r.policy for r in results):
        rows = [r for r in results if r.policy == policy]
        thinking = [r.thinking_tokens for r in rows]
        accuracy = sum(r.correct for r in rows) / len(rows)
        mean_thinking = statistics.fmean(thinking)
        mean_tokens = statistics.fmean(r.thinking_tokens + r.answer_tokens for r in rows)
        summaries.append(
            PolicySummary(
                policy=policy,
                tasks=len(rows),
                accuracy=accuracy,
                mean_thinking=mean_thinking,
                median_thinking=statistics.median(thinking),
                seconds=sum(r.seconds for r in rows),
                loops_broken=sum(r.loops_broken for r in rows),
                mean_tokens=mean_tokens,
                accuracy_per_1k_thinking=accuracy_per_1k_thinking(accuracy, mean_thinking),
                ock_score=ock_score(accuracy, mean_tokens),
            )
        )
    return summaries


def write_csv(path: Path, results: Sequence[TaskResult]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["policy", "task", "correct", "thinking_tokens", "answer_tokens", "seconds",
             "loops_broken", "budget_hits", "answer"]
        )  # fmt: skip
        for r in results:
            writer.writerow(
                [r.policy, r.task, int(r.correct), r.thinking_tokens, r.answer_tokens, r.seconds,
                 r.loops_broken, r.budget_hits, r.answer]
            )  # fmt: skip
