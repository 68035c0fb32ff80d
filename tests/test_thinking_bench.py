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
    accuracy_per_1k_thinking,
    is_correct,
    load_tasks,
    ock_score,
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


@pytest.mark.parametrize(
    ("accuracy", "tokens", "published"),
    [(0.94, 6745, 88.84), (0.95, 9740, 88.20), (0.85, 1623, 83.50), (0.945, 13130, 86.11)],
)
def test_ock_score_matches_ockbench_published_scores(
    accuracy: float, tokens: int, published: float
) -> None:
    """Rows of OckBench's own leaderboard (OckBench/OckBench.github.io,
    static/data/top200_model_performance.csv at 79935a1): accuracy, average output tokens,
    OckScore as published, rounded to two places there."""
    assert round(ock_score(accuracy, tokens), 2) == published


def test_accuracy_per_1k_thinking() -> None:
    assert accuracy_per_1k_thinking(0.5, 250.0) == pytest.approx(200.0)
    assert accuracy_per_1k_thinking(0.5, 0.0) is None  # no thinking bought it


def test_run_summarize_and_csv(engine: Engine, tmp_path: Path) -> None:
    """Seed 9 on the starter (loaded with flash attention, as every load is; seed 4 was the one
    before, and no seed from 1 to 8 gets a task right now), measured: unpruned, it never
    closes its thinking (60 of 60 tokens on both tasks), so neither has an answer; capped at 8, the
    budget closes the thinking once per task (34 and 35 thinking tokens with the forced closing)
    and the first answer says 12 (correct), the second names no number (wrong, 14 expected)."""
    tasks = load_tasks(DEFAULT_TASKS)[:2]
    assert [(t.id, t.answer, t.check) for t in tasks] == [
        ("add-apples", "12", "number"), ("sub-cookies", "14", "number"),
    ]  # fmt: skip
    capped = ThinkingPolicy(name="Capped", budget=8)
    results = run_bench(
        engine, tasks, [UNPRUNED, capped], SamplingParams(max_tokens=60, seed=9),
        force_thinking=True,
    )  # fmt: skip
    apples = "7 + 5 = 12 Apples\nTom now has 12 Apples\n\nThe final answer is:"
    cookies = (
        "1. First, I need to consider the original amount of cookies that Ana already had.\n"
        "2. If we start"
    )
    # policy, task, correct, thinking tokens, answer tokens, budget hits, loops broken, answer
    assert [
        (r.policy, r.task, r.correct, r.thinking_tokens, r.answer_tokens, r.budget_hits,
         r.loops_broken, r.answer)
        for r in results
    ] == [
        ("Unpruned", "add-apples", False, 60, 0, 0, 0, ""),
        ("Unpruned", "sub-cookies", False, 60, 0, 0, 0, ""),
        ("Capped", "add-apples", True, 34, 26, 1, 0, apples),
        ("Capped", "sub-cookies", False, 35, 25, 1, 0, cookies),
    ]  # fmt: skip
    summaries = summarize(results)
    assert [
        (s.policy, s.tasks, s.accuracy, s.mean_thinking, s.median_thinking, s.loops_broken)
        for s in summaries
    ] == [("Unpruned", 2, 0.0, 60.0, 60.0, 0), ("Capped", 2, 0.5, 34.5, 34.5, 0)]
    assert summaries[1].seconds == pytest.approx(results[2].seconds + results[3].seconds)
    # Accuracy against tokens: points per 1,000 thinking tokens, and OckBench's OckScore on
    # all decoded tokens (thinking + answer, averaged over the policy's tasks).
    for summary in summaries:
        rows_of = [r for r in results if r.policy == summary.policy]
        mean_tokens = sum(r.thinking_tokens + r.answer_tokens for r in rows_of) / len(rows_of)
        assert summary.mean_tokens == pytest.approx(mean_tokens)
        assert summary.ock_score == pytest.approx(ock_score(summary.accuracy, mean_tokens))
        assert summary.accuracy_per_1k_thinking == pytest.approx(
            100 * summary.accuracy / (summary.mean_thinking / 1000)
        )
    write_csv(tmp_path / "r.csv", results)
    with (tmp_path / "r.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["policy", "task", "correct", "thinking_tokens", "answer_tokens",
                       "seconds", "loops_broken", "budget_hits", "answer"]  # fmt: skip
    assert [row[:5] + row[6:] for row in rows[1:]] == [
        ["Unpruned", "add-apples", "0", "60", "0", "0", "0", ""],
        ["Unpruned", "sub-cookies", "0", "60", "0", "0", "0", ""],
        ["Capped", "add-apples", "1", "34", "26", "0", "1", apples],
        ["Capped", "sub-cookies", "0", "35", "25", "0", "1", cookies],
    ]  # fmt: skip
    assert [float(row[5]) for row in rows[1:]] == [r.seconds for r in results]


@pytest.mark.model  # --model starter, without the starter_path fixture
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
    assert lines[0].rstrip().endswith("acc/1k thinking  OckScore")
    assert "ln(1 + mean tokens / 10,000)" in result.stdout
    assert lines[1].startswith("Unpruned") and lines[2].startswith("Aggressive")
    with (out / "results.csv").open(encoding="utf-8") as handle:
        assert len(list(csv.DictReader(handle))) == 4
    assert (out / "tokens_vs_accuracy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_bench_thinking_bad_policy() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "app", "bench-thinking", "--model", "starter",
         "--policies", "Unpruned,Nope"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2
    assert "Unknown thinking policy" in result.stderr
