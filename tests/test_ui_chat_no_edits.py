"""Propose edits with a reply that holds no edit blocks: the chat says so and offers a retry that
restates the edit format. The real starter model runs in the real window; its answers are
scripted (tests/scripted_answers.py), since it almost never writes an edit block by itself."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from app.core.edits.prompt import WHOLE_FILE_PROMPT
from app.core.session.chat import FEEDBACK_PREFIX
from app.ui.no_edits_notice import NoEditsNotice
from tests.scripted_answers import ScriptedAnswers
from tests.ui_support import WindowFactory, stored, type_and_send, wait_reply_done

APP_PY = b"def add(a, b):\n    return a + b\n"
PROSE_REPLY = "You could swap the operands in add so that it returns b + a."
GOOD_REPLY = "app.py\n```python\ndef add(a, b):\n    return b + a\n```\n"


@pytest.mark.model
def test_no_edit_blocks_says_so_and_the_retry_restates_the_format(
    make_window: WindowFactory, qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "app.py").write_bytes(APP_PY)
    window = make_window(n_ctx=2048)
    with qtbot.waitSignal(window.code.panel.scanFinished, timeout=10_000):
        assert window.code.open_folder(folder)
    window.code.panel.set_selected(["app.py"])
    window.code.edit_action.setChecked(True)
    script = ScriptedAnswers(monkeypatch, [PROSE_REPLY, GOOD_REPLY])

    type_and_send(qtbot, window, "Swap the operands in app.py.")
    qtbot.waitUntil(lambda: bool(window.chat_view.notices), timeout=120_000)
    wait_reply_done(qtbot, window)
    notice = window.chat_view.notices[-1]
    assert isinstance(notice, NoEditsNotice)
    assert "No edits in this reply" in notice.label.text()
    qtbot.waitUntil(notice.isVisible, timeout=5_000)  # a layout shows a new child on its next turn
    assert notice.retry_button.isEnabled()
    assert not window.code.reviewing  # nothing to review

    qtbot.mouseClick(notice.retry_button, Qt.MouseButton.LeftButton)
    assert not notice.retry_button.isEnabled()  # one click, one retry
    qtbot.waitUntil(lambda: window.code.reviewing, timeout=120_000)
    wait_reply_done(qtbot, window)
    retry = [m for m in stored(window) if m.role == "user"][-1].content
    assert retry.startswith(FEEDBACK_PREFIX) and "no edit blocks" in retry
    # A tiny file is asked for whole (app.core.edits.prompt): the retry restates that format.
    assert WHOLE_FILE_PROMPT in retry
    assert script.asked == 2 and script.prompts[1][-1]["content"] == retry
    assert len(window.code.review.hunk_views) == 1
    assert (folder / "app.py").read_bytes() == APP_PY  # nothing written before Apply
