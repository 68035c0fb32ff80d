"""Measure thinking policies on a task set with checkable answers: accuracy against tokens.

Each task has a prompt, an expected answer and a checker (`number`: the last number in the answer
equals the expected one; `word`: the expected word appears as a whole word; `contains`: the
expected text appears). Every policy runs every task with the same seed, so a policy's effect is
the only difference between rows.
"""

from __future__ import annotations

import csv
import json
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
        summaries.append(
            PolicySummary(
                policy=policy,
                tasks=len(rows),
                accuracy=sum(r.correct for r in rows) / len(rows),
                mean_thinking=statistics.fmean(thinking),
                median_thinking=statistics.median(thinking),
                seconds=sum(r.seconds for r in rows),
                loops_broken=sum(r.loops_broken for r in rows),
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
