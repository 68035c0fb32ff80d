"""The code folder in the main window with the real starter model: context in the request, edits
proposed, failures sent back (at most twice), review, apply, undo; no file ever corrupted."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from app.core.storage import chat_store
from app.ui.main_window import MainWindow
from tests.edit_corpus_support import snapshot
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
    make_window: WindowFactory, qtbot: QtBot, project: Path
) -> None:
    window = make_window(n_ctx=2048)
    _open(qtbot, window, project)
    window.code.panel.set_selected(["app.py"])
    message = window.code.system_message(2048, None)
    assert message is not None
    assert "def add(a, b):" in message["content"] and "README.md" in message["content"]
    assert "TOKEN=secret" not in message["content"]
    assert window.code.context is not None and window.code.context.included[0].path == "app.py"


def test_whatever_the_starter_replies_no_file_is_corrupted(
    make_window: WindowFactory, qtbot: QtBot, project: Path
) -> None:
    window = make_window(n_ctx=2048)
    _open(qtbot, window, project)
    window.code.panel.set_selected(["app.py"])
    window.code.edit_action.setChecked(True)
    before = snapshot(project)
    type_and_send(qtbot, window, "Rename add to plus in app.py.")
    # The model's reply, then up to two automatic follow-ups if its blocks did not apply.
    qtbot.waitUntil(lambda: not window.generating and window.code._builder is None, timeout=180_000)
    wait_reply_done(qtbot, window)
    assert snapshot(project) == before  # nothing is written before the user applies
    users = [m for m in stored(window) if m.role == "user"]
    assert 1 <= len(users) <= 3
    assert all(m.content.startswith("[LeanCoder] ") for m in users[1:])
    assert stored(window)[-1].status == chat_store.COMPLETE


def test_failed_blocks_go_back_twice_then_the_review_opens(
    make_window: WindowFactory, qtbot: QtBot, project: Path
) -> None:
    window = make_window(n_ctx=2048)
    _open(qtbot, window, project)
    window.code.edit_action.setChecked(True)
    window.code.start_request(follow_up=False)
    with qtbot.waitSignal(window.code.followUp) as first:
        window.code.reply_finished(FAILING_REPLY)
    assert "could not be applied" in first.args[0]
    assert "def add(a, b):" in first.args[0] or "def sub(a, b):" in first.args[0]  # closest lines
    with qtbot.waitSignal(window.code.followUp):
        window.code.reply_finished(FAILING_REPLY)
    with qtbot.assertNotEmitted(window.code.followUp):
        window.code.reply_finished(GOOD_REPLY)  # the third answer: no more retries
    review = window.code.review
    assert window.code.review_dock.isVisible()
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
    assert (project / "app.py").read_bytes() == APP_PY
