"""bench-thinking: task loading and checking, a real run, CSV and PNG output."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from app.core.errors import LeanCoderError
from app.core.evals.thinking_bench import (
    DEFAULT_TASKS,
    Task,
    is_correct,
    load_tasks,
    run_bench,
    summarize,
    write_csv,
)
from app.core.llm.engine import Engine, SamplingParams
from app.core.thinking.policy import UNPRUNED, ThinkingPolicy


def test_default_task_set_is_valid() -> None:
    tasks = load_tasks(DEFAULT_TASKS)
    assert len(tasks) >= 20
    assert len({t.id for t in tasks}) == len(tasks)
    assert {t.check for t in tasks} <= {"number", "word", "contains"}
    # Every expected answer passes its own checker, phrased as a model would.
    for task in tasks:
        assert is_correct(task, f"So the answer is {task.answer}."), task


@pytest.mark.parametrize(
    ("task", "answer", "ok"),
    [
        (Task("a", "q", "12", "number"), "7 + 5 = 12", True),
        (Task("a", "q", "12", "number"), "12 apples minus 5 is 7", False),  # the last number counts
        (Task("a", "q", "1200", "number"), "It is 1,200.", True),
        (Task("a", "q", "12", "number"), "twelve", False),
        (Task("w", "q", "def", "word"), "Use `def` to define it.", True),
        (Task("w", "q", "def", "word"), "undefined", False),
        (Task("c", "q", "===", "contains"), "Use === here", True),
    ],
)
def test_checkers(task: Task, answer: str, ok: bool) -> None:
    assert is_correct(task, answer) is ok


def test_bad_task_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x", "prompt": "p"}\n')
    with pytest.raises(LeanCoderError, match="line 1 is not a task"):
        load_tasks(bad)
    bad.write_text('{"id": "x", "prompt": "p", "answer": "1", "check": "vibes"}\n')
    with pytest.raises(LeanCoderError, match="unknown check"):
        load_tasks(bad)
    bad.write_text("\n")
    with pytest.raises(LeanCoderError, match="no tasks"):
        load_tasks(bad)
    with pytest.raises(LeanCoderError, match="Cannot read"):
        load_tasks(tmp_path / "missing.jsonl")


def test_run_summarize_and_csv(engine: Engine, tmp_path: Path) -> None:
    tasks = load_tasks(DEFAULT_TASKS)[:2]
    capped = ThinkingPolicy(name="Capped", budget=8)
    results = run_bench(
        engine, tasks, [UNPRUNED, capped], SamplingParams(max_tokens=60, seed=4),
        force_thinking=True,
    )  # fmt: skip
    assert [(r.policy, r.task) for r in results] == [
        ("Unpruned", tasks[0].id), ("Unpruned", tasks[1].id),
        ("Capped", tasks[0].id), ("Capped", tasks[1].id),
    ]  # fmt: skip
    for r in results:
        assert r.correct is is_correct(next(t for t in tasks if t.id == r.task), r.answer)
    capped_rows = [r for r in results if r.policy == "Capped"]
    assert all(r.budget_hits == 1 for r in capped_rows if r.thinking_tokens > 8)
    summaries = summarize(results)
    assert [s.policy for s in summaries] == ["Unpruned", "Capped"]
    unpruned = summaries[0]
    assert unpruned.mean_thinking == sum(r.thinking_tokens for r in results[:2]) / 2
    assert unpruned.accuracy == sum(r.correct for r in results[:2]) / 2
    write_csv(tmp_path / "r.csv", results)
    rows = list(csv.DictReader((tmp_path / "r.csv").open()))
    assert len(rows) == 4 and rows[2]["policy"] == "Capped"


def test_cli_bench_thinking_writes_csv_and_png(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "app", "bench-thinking", "--model", "starter", "--limit", "2",
         "--max-tokens", "40", "--policies", "Unpruned,Aggressive", "--force-thinking",
         "--out", str(out)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:2] == ["policy", "accuracy"]
    assert lines[1].startswith("Unpruned") and lines[2].startswith("Aggressive")
    assert len(list(csv.DictReader((out / "results.csv").open()))) == 4
    assert (out / "tokens_vs_accuracy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_bench_thinking_bad_policy() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "app", "bench-thinking", "--model", "starter",
         "--policies", "Unpruned,Nope"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2
    assert "Unknown thinking policy" in result.stderr
