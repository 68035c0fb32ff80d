"""The fix loop's control flow, with scripted model replies (tests/session_support.py
ScriptedReplies: the real starter loaded, its replies scripted, one token per line) and the real
test runner on the bundled buggy projects (tests/fix_projects)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.core.edits import ConflictError, apply_proposal, undo_last
from app.core.fix_loop.loop import FixEvent, FixSettings, run_fix
from app.core.fix_loop.report import FixReport
from app.core.llm.engine import LoadOptions
from tests.fix_support import (
    FIXED,
    PYTEST,
    WRONG,
    WRONG_AGAIN,
    copy_project,
    files_outside_git,
    folder_choice,
    task_of,
    worktrees,
)
from tests.session_support import ScriptedReplies

LONG_REPLY = "".join(f"thinking about line {n}\n" for n in range(200))


@pytest.fixture
def scripted(starter_path: Path) -> Iterator[ScriptedReplies]:
    engine = ScriptedReplies([])
    engine.load(starter_path, LoadOptions(n_ctx=4096))
    yield engine
    engine.unload()


def run(engine: ScriptedReplies, folder: Path, settings: FixSettings,
        cancel_on: str | None = None) -> tuple[FixReport, list[FixEvent]]:  # fmt: skip
    cancel = threading.Event()
    events = []
    loop = run_fix(engine, folder_choice(folder), task_of("add_numbers"), settings, cancel=cancel)
    for event in loop:
        events.append(event)
        if cancel_on is not None and (event.kind == cancel_on or (
                event.session is not None and event.session.kind == cancel_on)):  # fmt: skip
            cancel.set()
    assert events[-1].kind == "done" and events[-1].report is not None
    return events[-1].report, events


@pytest.mark.parametrize("git", [False, True], ids=["copy", "git"])
def test_stops_when_the_tests_pass_and_apply_then_undo_restore_every_byte(
    scripted: ScriptedReplies, tmp_path: Path, data_dir: Path, git: bool
) -> None:
    folder = copy_project("add_numbers", tmp_path, git=git)
    before = files_outside_git(folder)
    scripted.replies = [FIXED["add_numbers"], "never asked"]
    report, events = run(scripted, folder, FixSettings(PYTEST))
    assert report.stopped == "passed" and report.scratch_kind == ("git worktree" if git else "copy")
    assert report.baseline is not None and not report.baseline.passed
    assert report.baseline.failing == ("test_calc.py::test_add", "test_calc.py::test_add_negative")
    assert len(report.rounds) == 1 and report.rounds[0].tests is not None
    assert report.rounds[0].tests.passed and report.rounds[0].files == ["calc.py"]
    assert report.rounds[0].tokens == FIXED["add_numbers"].count("\n")
    assert scripted.replies == ["never asked"]
    assert [e.kind for e in events if e.kind != "session" and e.kind != "tokens"] == [
        "baseline", "round_start", "applied", "tests", "done"]  # fmt: skip
    # The failing output went to the model, with the scratch copy's paths made relative.
    first_prompt = scripted.prompts[0][-1]["content"]
    assert "test_calc.py::test_add" in first_prompt and "leancoder-fix-" not in first_prompt
    assert files_outside_git(folder) == before  # nothing touched the folder
    if git:
        assert len(worktrees(folder)) == 1  # the scratch worktree is gone again
    proposal = report.proposal
    assert proposal is not None and [c.path for c in proposal.files] == ["calc.py"]
    assert "+    return a + b" in report.diff()
    data = report.to_dict()
    assert data["stopped"] == "passed" and data["passed"] is True
    assert [r["round"] for r in data["rounds"]] == [1] and data["diff"] == report.diff()
    proposal.accept_all()
    result = apply_proposal(proposal)
    assert result.modified == ["calc.py"]
    assert (folder / "calc.py").read_text() == "def add(a, b):\n    return a + b\n"
    undo_last(folder)
    assert files_outside_git(folder) == before


def test_the_same_failure_twice_stops_the_loop(
    scripted: ScriptedReplies, tmp_path: Path, data_dir: Path
) -> None:
    folder = copy_project("add_numbers", tmp_path)
    scripted.replies = [WRONG, WRONG_AGAIN, "never asked"]
    report, _events = run(scripted, folder, FixSettings(PYTEST, rounds=3))
    assert report.stopped == "repeated_failure"
    assert len(report.rounds) == 2 and scripted.replies == ["never asked"]
    assert all(r.tests is not None and not r.tests.passed for r in report.rounds)
    # The second request carried the failure of the first round back to the model.
    assert "still fail" in scripted.prompts[1][-1]["content"]
    assert report.proposal is not None and "b * a" in report.diff()


def test_a_different_failure_goes_on_until_the_last_round(
    scripted: ScriptedReplies, tmp_path: Path, data_dir: Path
) -> None:
    folder = copy_project("add_numbers", tmp_path)
    off_by_one = "calc.py\n```python\ndef add(a, b):\n    return a + b + 1\n```\n"
    scripted.replies = [WRONG, off_by_one]
    report, _events = run(scripted, folder, FixSettings(PYTEST, rounds=2))
    assert report.stopped == "rounds" and len(report.rounds) == 2
    final = report.final
    assert final is not None and not final.passed


def test_the_task_budget_cuts_a_reply_and_ends_the_loop(
    scripted: ScriptedReplies, tmp_path: Path, data_dir: Path
) -> None:
    folder = copy_project("add_numbers", tmp_path)
    before = files_outside_git(folder)
    scripted.replies = [WRONG, LONG_REPLY, "never asked"]
    wrong_tokens = WRONG.count("\n")
    report, events = run(scripted, folder, FixSettings(PYTEST, task_budget=40, round_budget=100))
    assert report.stopped == "task_budget"
    assert [r.tokens for r in report.rounds] == [wrong_tokens, 40 - wrong_tokens]
    assert report.tokens == 40  # exactly the budget: the gate closes the reply at its token
    assert max(e.task_tokens for e in events) == 40
    assert report.rounds[1].tests is None  # the cut reply is never applied
    assert files_outside_git(folder) == before


def test_the_round_budget_cuts_a_reply_and_ends_the_loop(
    scripted: ScriptedReplies, tmp_path: Path, data_dir: Path
) -> None:
    folder = copy_project("add_numbers", tmp_path)
    scripted.replies = [LONG_REPLY, "never asked"]
    report, _events = run(scripted, folder, FixSettings(PYTEST, task_budget=1000, round_budget=25))
    assert report.stopped == "round_budget"
    assert [r.tokens for r in report.rounds] == [25]
    assert report.proposal is None and report.baseline is not None


def test_stop_between_rounds_and_in_the_middle_of_a_reply(
    scripted: ScriptedReplies, tmp_path: Path, data_dir: Path
) -> None:
    folder = copy_project("add_numbers", tmp_path)
    scripted.replies = [WRONG, "never asked"]
    report, _events = run(scripted, folder, FixSettings(PYTEST), cancel_on="tests")
    assert report.stopped == "stopped" and len(report.rounds) == 1
    assert report.proposal is not None  # what round 1 did is still there to review
    scripted.replies = [LONG_REPLY]
    report, _events = run(scripted, folder, FixSettings(PYTEST), cancel_on="text")
    assert report.stopped == "stopped" and report.rounds[0].tokens <= 2
    assert report.rounds[0].tests is None


def test_a_test_command_that_does_not_exist_stops_before_the_model_is_asked(
    scripted: ScriptedReplies, tmp_path: Path, data_dir: Path
) -> None:
    folder = copy_project("add_numbers", tmp_path)
    scripted.replies = ["never asked"]
    report, _events = run(scripted, folder, FixSettings("no-such-test-tool-here --all"))
    assert report.stopped == "test_command" and not report.rounds
    assert "no-such-test-tool-here was not found" in report.message
    assert scripted.replies == ["never asked"]


def test_a_test_command_that_hangs_is_timed_out_each_round(
    scripted: ScriptedReplies, tmp_path: Path, data_dir: Path
) -> None:
    folder = copy_project("add_numbers", tmp_path)
    (folder / "hang.py").write_text("import time\ntime.sleep(120)\n")
    scripted.replies = [WRONG, WRONG_AGAIN]
    settings = FixSettings(f"{PYTEST.split()[0]} hang.py", test_timeout_s=1.0, rounds=2)
    report, _events = run(scripted, folder, settings)
    assert report.baseline is not None and report.baseline.summary.startswith("timed out")
    assert report.stopped == "repeated_failure"  # a timeout twice is the same failure twice
    assert all(r.tests is not None and r.tests.summary.startswith("timed out")
               for r in report.rounds)  # fmt: skip
    assert "timed out" in scripted.prompts[0][-1]["content"]


def test_a_change_made_meanwhile_is_refused_on_apply(
    scripted: ScriptedReplies, tmp_path: Path, data_dir: Path
) -> None:
    folder = copy_project("add_numbers", tmp_path)
    scripted.replies = [FIXED["add_numbers"]]
    report, _events = run(scripted, folder, FixSettings(PYTEST))
    assert report.proposal is not None
    (folder / "calc.py").write_text("def add(a, b):\n    return a - b  # mine\n")
    report.proposal.accept_all()
    with pytest.raises(ConflictError):
        apply_proposal(report.proposal)
    assert (folder / "calc.py").read_text().endswith("# mine\n")


def test_bad_settings_are_refused_with_a_sentence(
    scripted: ScriptedReplies, tmp_path: Path
) -> None:
    folder = copy_project("add_numbers", tmp_path)
    for settings, words in [
        (FixSettings(""), "test command is empty"),
        (FixSettings("pytest 'unbalanced"), "cannot be read"),
        (FixSettings(PYTEST, rounds=0), "between 1 and"),
        (FixSettings(PYTEST, task_budget=0), "at least 1 token"),
    ]:
        with pytest.raises(Exception, match=words):
            list(run_fix(scripted, folder_choice(folder), "fix it", settings))


def test_a_failing_lint_command_keeps_the_loop_going_and_its_output_goes_back(
    scripted: ScriptedReplies, tmp_path: Path, data_dir: Path
) -> None:
    folder = copy_project("add_numbers", tmp_path)
    (folder / "lint.py").write_text(
        "import sys\nif 'TODO' in open('calc.py').read():\n"
        "    sys.exit('calc.py:2: a TODO is left in the code')\n"
    )
    with_todo = "calc.py\n```python\ndef add(a, b):\n    return a + b  # TODO\n```\n"
    scripted.replies = [with_todo, FIXED["add_numbers"]]
    lint = f"{PYTEST.split()[0]} lint.py"
    report, _events = run(scripted, folder, FixSettings(PYTEST, lint_command=lint))
    first = report.rounds[0].tests
    assert first is not None and first.summary == "passed" and first.lint.startswith("failed")
    assert not first.passed  # the tests pass, the lint does not: not done yet
    assert "a TODO is left in the code" in scripted.prompts[1][-1]["content"]
    assert report.stopped == "passed" and len(report.rounds) == 2
