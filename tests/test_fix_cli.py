"""`leancoder fix` end to end on the bundled buggy projects, plain folders and git repositories.

The starter model runs the loop on its own (mechanics: it rarely writes an edit block, but the
loop must end within its budgets and leave the folder as it was). Apply and Undo are driven by a
scripted answer on the real model (tests/scripted_answers.py, named as such: the real model runs
on the real messages and its answer is swapped for the fix).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.cli.main import main
from app.core.fix_loop.commands import load_commands
from tests.fix_support import FIXED, PYTEST, copy_project, files_outside_git, task_of, worktrees
from tests.scripted_answers import ScriptedAnswers

STOP_REASONS = {"passed", "repeated_failure", "task_budget", "round_budget", "rounds",
                "no_edits", "model_failed"}  # fmt: skip


def fix(folder: Path, *extra: str) -> int:
    return main(["fix", "--folder", str(folder), "--model", "starter", "--ctx", "2048",
                 "--test", PYTEST, *extra, task_of(folder.name)])  # fmt: skip


@pytest.mark.model
@pytest.mark.timeout(900)  # the starter's own words: slow on a shared two-core machine
@pytest.mark.parametrize("git", [False, True], ids=["copy", "git"])
def test_the_starter_runs_the_loop_within_its_budgets_and_leaves_the_folder_alone(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str], git: bool
) -> None:
    folder = copy_project("word_count", tmp_path, git=git)
    before = files_outside_git(folder)
    code = fix(folder, "--rounds", "2", "--task-budget", "60", "--round-budget", "40",
               "--json")  # fmt: skip
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert code == (0 if report["passed"] else 1)
    assert report["stopped"] in STOP_REASONS, report["message"]
    assert report["scratch"] == ("git worktree" if git else "copy")
    assert report["baseline"]["passed"] is False
    assert set(report["baseline"]["failing"]) == {"test_text.py::test_extra_spaces",
                                                  "test_text.py::test_empty"}  # fmt: skip
    assert 1 <= len(report["rounds"]) <= 2
    assert [r["round"] for r in report["rounds"]] == list(range(1, len(report["rounds"]) + 1))
    for spent in report["rounds"]:
        assert spent["tokens"] == spent["thinking_tokens"] + spent["answer_tokens"]
        assert 0 < spent["tokens"] <= 40 + 2  # the gate closes the reply within a token or so
    assert report["tokens"] == sum(r["tokens"] for r in report["rounds"]) <= 60 + 2
    assert report["applied"] is None  # without --apply nothing is written
    assert "round 1 of 2" in captured.err and "baseline: tests failed" in captured.err
    assert files_outside_git(folder) == before
    if git:
        assert len(worktrees(folder)) == 1


@pytest.mark.model
@pytest.mark.timeout(900)
@pytest.mark.parametrize("git", [False, True], ids=["copy", "git"])
def test_apply_writes_the_fix_as_one_step_and_undo_restores_every_byte(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch, git: bool,
) -> None:  # fmt: skip
    folder = copy_project("greeting", tmp_path, git=git)
    before = files_outside_git(folder)
    script = ScriptedAnswers(monkeypatch, [FIXED["greeting"]])
    assert fix(folder) == 0
    printed = capsys.readouterr().out
    assert "round 1 of 3" in printed and "round 1: tests passed" in printed
    assert '+    return "Hello, " + name + "!"' in printed
    assert "Not applied" in printed and files_outside_git(folder) == before
    script.replies = [FIXED["greeting"]]
    assert fix(folder, "--apply", "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["stopped"] == "passed" and report["files"] == ["greet.py"]
    assert report["applied"]["change_set"] is not None
    assert (folder / "greet.py").read_text() == FIXED["greeting"].split("```python\n")[1][:-4]
    assert main(["undo", "--folder", str(folder)]) == 0
    assert files_outside_git(folder) == before


@pytest.mark.model
@pytest.mark.timeout(900)
def test_the_test_command_is_saved_for_the_folder_and_used_next_time(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    folder = copy_project("add_numbers", tmp_path)
    assert load_commands(folder).detected  # a Python project: pytest, guessed
    ScriptedAnswers(monkeypatch, [FIXED["add_numbers"], FIXED["add_numbers"]])
    assert fix(folder, "--rounds", "1") == 0
    assert load_commands(folder).test == PYTEST
    assert "saved" in capsys.readouterr().err
    assert main(["fix", "--folder", str(folder), "--model", "starter", "--ctx", "2048",
                 "--rounds", "1", "--json", "fix add"]) == 0  # fmt: skip
    assert json.loads(capsys.readouterr().out)["test_command"] == PYTEST


def test_a_folder_without_a_known_test_command_is_a_clear_error(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "notes.txt").write_text("nothing to test\n")
    assert main(["fix", "--folder", str(tmp_path), "--model", "starter", "fix it"]) == 2
    assert "No test command is known" in capsys.readouterr().err
