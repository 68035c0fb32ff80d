"""Stop in the window interrupts a chat template that is still rendering (issue #10 item 3).

The model is the starter with a template whose every step is a slow (but size-bounded) C call,
so the render would run into the 2 s limit; Stop must end it well before that, as a stopped
reply, not an error.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from app.core.llm.engine import ReplyStats
from tests.gguf_rewrite import StringRewriter
from tests.test_template_limits import HOSTILE
from tests.ui_support import LOAD_TIMEOUT_MS, WindowFactory, type_and_send


@pytest.mark.model
def test_stop_cancels_a_long_render(
    qtbot: QtBot, make_window: WindowFactory, starter_path: Path, tmp_path: Path
) -> None:
    slow = StringRewriter(starter_path).write(
        tmp_path / "slow-template.gguf", "tokenizer.chat_template", HOSTILE["slow_c_lines"]
    )
    window = make_window(load=False)
    with qtbot.waitSignal(window.bridge.modelLoaded, timeout=LOAD_TIMEOUT_MS):
        window.load_model(str(slow))
    qtbot.waitUntil(lambda: window.send_button.isEnabled(), timeout=5_000)

    finished: list[ReplyStats] = []
    window.replyFinished.connect(finished.append)
    with qtbot.assertNotEmitted(window.replyFailed):
        type_and_send(qtbot, window, "hello")
        qtbot.wait(400)  # the render is under way on the model worker
        assert window.generating
        clicked = time.monotonic()
        qtbot.mouseClick(window.stop_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: not window.generating, timeout=10_000)
        stopped_after = time.monotonic() - clicked
    assert finished and finished[-1].finish_reason == "cancelled"
    assert stopped_after < 1.0, f"Stop took {stopped_after:.2f} s"
    assert window.error_box is None or not window.error_box.isVisible()

