"""The code folder in the main window with the real starter model: context in the request, edits
proposed, failures sent back (at most twice), review, apply, undo. The starter writes no edit
blocks, so its answers are scripted (tests/scripted_answers.py) while it runs for real."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from app.core.storage import chat_store
from app.ui.main_window import MainWindow
from tests.edit_corpus_support import snapshot
from tests.scripted_answers import ScriptedAnswers
from tests.ui_support import WindowFactory, stored, type_and_send, wait_reply_done

APP_PY = b"def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a - b\n"
GOOD_REPLY = (
    "app.py\n<<<<<<< SEARCH\n    return a + b\n=======\n    return b + a\n>>>>>>> REPLACE\n\n"
    "app.py\n<<<<<<< SEARCH\n    return a - b\n=======\n    return -(b - a)\n>>>>>>> REPLACE\n"
)
FAILING_REPLY = (
    "app.py\n<<<<<<< SEARCH\ndef mul(a, b):\n    return a * b\n=======\ndef mul(a, b):\n"
    "    return b * a\n>>>>>>> REPLACE\n"
)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "app.py").write_bytes(APP_PY)
    (folder / ".env").write_text("TOKEN=secret\n")
    (folder / "README.md").write_text("# Demo\n")
    return folder


def _open(qtbot: QtBot, window: MainWindow, folder: Path) -> None:
    with qtbot.waitSignal(window.code.panel.scanFinished, timeout=10_000):
        assert window.code.open_folder(folder)
    assert window.code.folder_dock.isVisible()
    assert window.code.edit_action.isEnabled()


def test_the_folder_reaches_the_model_and_secrets_do_not(
    make_window: WindowFactory, qtbot: QtBot, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    window = make_window(n_ctx=2048)
    _open(qtbot, window, project)
    window.code.panel.set_selected(["app.py"])
    script = ScriptedAnswers(monkeypatch, ["It adds and subtracts."])
    type_and_send(qtbot, window, "What does app.py do?")
    wait_reply_done(qtbot, window)
    (prompt,) = script.prompts  # exactly what the model was sent
    system = prompt[0]
    assert system["role"] == "system"
    assert "def add(a, b):" in system["content"] and "README.md" in system["content"]
    assert "TOKEN=secret" not in system["content"]
    assert "asks for a change to their files" not in system["content"]  # no edit instructions
    assert prompt[-1] == {"role": "user", "content": "What does app.py do?"}
    assert window.code.context is not None and window.code.context.included[0].path == "app.py"
    assert stored(window)[-1].content == "It adds and subtracts."


def test_failed_blocks_go_back_twice_then_the_review_opens(
    make_window: WindowFactory, qtbot: QtBot, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The window's own loop, on scripted answers (tests/scripted_answers.py: the real model runs,
    its words are swapped): two replies whose block fails go back as follow-ups; the third still
    has one that fails, and there the retries stop (a fourth reply is never asked for)."""
    window = make_window(n_ctx=2048)
    _open(qtbot, window, project)
    window.code.panel.set_selected(["app.py"])
    window.code.edit_action.setChecked(True)
    script = ScriptedAnswers(
        monkeypatch, [FAILING_REPLY, FAILING_REPLY, GOOD_REPLY + "\n" + FAILING_REPLY, GOOD_REPLY]
    )
    before = snapshot(project)
    type_and_send(qtbot, window, "Swap the operands in app.py.")
    qtbot.waitUntil(lambda: window.code.reviewing, timeout=120_000)
    wait_reply_done(qtbot, window)
    assert script.asked == 3 and script.replies == [GOOD_REPLY]
    assert snapshot(project) == before  # nothing is written before the user applies
    users = [m for m in stored(window) if m.role == "user"]
    assert [m.content.startswith("[LeanCoder] ") for m in users] == [False, True, True]
    assert all("could not be applied" in m.content for m in users[1:])
    assert [m.status for m in stored(window) if m.role == "assistant"] == [chat_store.COMPLETE] * 3

    review = window.code.review
    assert review.proposal is not None and len(review.hunk_views) == 2
    first_hunk, second_hunk = review.hunk_views
    qtbot.mouseClick(first_hunk.accept_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(second_hunk.reject_button, Qt.MouseButton.LeftButton)
    with qtbot.waitSignal(review.applied):
        qtbot.mouseClick(review.apply_button, Qt.MouseButton.LeftButton)
    assert (project / "app.py").read_bytes() == APP_PY.replace(b"a + b", b"b + a")
    assert window.code.undo_action.isEnabled()
    with qtbot.waitSignal(review.undone):
        window.code.undo_action.trigger()
    assert snapshot(project) == before
