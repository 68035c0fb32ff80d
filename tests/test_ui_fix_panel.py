"""The window's "Fix until tests pass" panel with the real starter loaded and scripted answers
(tests/scripted_answers.py, named as such: the real model runs on the real messages and its
answer is swapped for the scripted one), the real test runner on a bundled buggy project, and
the real review pane: the meter, the rounds, the result in review, Apply then Undo."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from app.core.fix_loop.commands import load_commands
from tests.fix_support import FIXED, PYTEST, WRONG, copy_project, files_outside_git, task_of
from tests.scripted_answers import ScriptedAnswers
from tests.ui_support import WindowFactory


def open_project(qtbot: QtBot, make_window: WindowFactory, folder: Path):  # type: ignore[no-untyped-def]
    window = make_window(n_ctx=2048)
    with qtbot.waitSignal(window.code.panel.scanFinished, timeout=10_000):
        assert window.code.open_folder(folder)
    assert window.code.fix_action.isEnabled()
    window.code.fix_action.trigger()
    assert window.code.fix_dock.isVisible()
    return window


@pytest.mark.timeout(900)
def test_the_panel_runs_the_rounds_shows_the_spend_and_opens_the_result_for_review(
    qtbot: QtBot, make_window: WindowFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = copy_project("add_numbers", tmp_path)
    before = files_outside_git(folder)
    window = open_project(qtbot, make_window, folder)
    panel = window.code.fix
    assert panel.test_edit.text() in ("pytest -q", "python3 -m pytest -q")  # detected
    panel.test_edit.setText(PYTEST)
    panel.task_edit.setPlainText(task_of("add_numbers"))
    script = ScriptedAnswers(monkeypatch, [WRONG, FIXED["add_numbers"]])
    with qtbot.waitSignal(panel.finished, timeout=600_000) as done:
        panel.start_button.click()
        assert panel.stop_button.isEnabled() and not panel.start_button.isEnabled()
    report = done.args[0]
    assert report.stopped == "passed" and len(report.rounds) == 2 and script.asked == 2
    rows = [panel.rounds_list.item(n).text() for n in range(panel.rounds_list.count())]
    assert rows[0].startswith("Before: tests failed") and "2 failing" in rows[0]
    assert rows[1].startswith("Round 1: ") and "thinking" in rows[1] and "failed" in rows[1]
    assert rows[2].startswith("Round 2: ") and rows[2].endswith("tests passed")
    assert panel.meter.maximum() == panel.task_budget_box.value()
    assert panel.meter.value() == report.tokens > 0
    assert "Tests before: failed" in panel.result_label.text()
    assert "After: passed" in panel.result_label.text()
    assert panel.start_button.isEnabled() and not panel.stop_button.isEnabled()
    assert load_commands(folder).test == PYTEST  # saved for the folder
    # The combined result is in the review pane; the folder is untouched until Apply.
    review = window.code.review
    assert window.code.reviewing and review.proposal is report.proposal
    assert files_outside_git(folder) == before
    review.accept_all()
    assert review.apply()
    assert (folder / "calc.py").read_text() == "def add(a, b):\n    return a + b\n"
    assert review.undo()
    assert files_outside_git(folder) == before


@pytest.mark.timeout(300)
def test_stop_ends_a_running_test_command_and_asks_the_model_nothing(
    qtbot: QtBot, make_window: WindowFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = copy_project("greeting", tmp_path)
    window = open_project(qtbot, make_window, folder)
    panel = window.code.fix
    panel.test_edit.setText(f'{sys.executable} -c "import time; time.sleep(120)"')
    panel.task_edit.setPlainText(task_of("greeting"))
    script = ScriptedAnswers(monkeypatch, ["never asked"])
    with qtbot.waitSignal(panel.finished, timeout=60_000) as done:
        assert panel.start()
        qtbot.wait(500)
        panel.stop_button.click()
    report = done.args[0]
    assert report.stopped == "stopped" and script.asked == 0 and report.proposal is None
    assert "Stopped by you" in panel.result_label.text()
    assert not window.code.reviewing
