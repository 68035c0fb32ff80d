"""A hard crash mid-reply loses at most the last moments of it (SAVE_INTERVAL_S).

The window runs in a child process. The chat session saves the streaming reply on the model
thread on its own clock. Once the live reply has shown some text for a while, the child prints
what was displayed well over one save interval earlier and what is displayed now, and kills
itself with os._exit (no cleanup, no close event: what a crash looks like). The next start must
have at least the earlier text, marked as interrupted, and nothing that was not streamed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from app.core.storage import chat_store
from app.core.storage.chat_store import ChatStore

CHILD = textwrap.dedent(
    """
    import json, os, sys
    os.environ["QT_QPA_PLATFORM"] = "offscreen"
    from PySide6.QtWidgets import QApplication
    from PySide6.QtCore import QTimer
    app = QApplication(sys.argv)
    from app.ui.application import create_main_window
    window = create_main_window(model="starter")
    window.show()

    import time
    from app.core.session.chat import SAVE_INTERVAL_S
    shown = []  # (when, what the body displayed): widget.answer is its Markdown source

    def crash_once_shown(widget):
        now = time.monotonic()
        shown.append((now, widget.answer))
        earlier = [text for when, text in shown if now - when >= 3 * SAVE_INTERVAL_S]
        if earlier and len(earlier[-1]) >= 40:
            print(json.dumps({"earlier": earlier[-1], "now": widget.answer}), flush=True)
            os._exit(3)

    original = window.chat_view._render
    def render_then_check(widget):
        original(widget)
        crash_once_shown(widget)
    window.chat_view._render = render_then_check

    def send_when_loaded(info):
        window.prompt.setPlainText("Tell me a long story about a robot who learns to paint.")
        window.send()
    window.bridge.modelLoaded.connect(send_when_loaded)
    QTimer.singleShot(60000, lambda: os._exit(4))
    app.exec()
    """
)


@pytest.mark.model  # --model starter, without the starter_path fixture
def test_text_shown_before_a_crash_survives(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {"LEANCODER_DATA_DIR": str(data), "QT_QPA_PLATFORM": "offscreen", "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=120, env=env
    )
    assert result.returncode == 3, result.stderr[-2000:]
    shown = json.loads(result.stdout.strip().splitlines()[-1])
    assert len(shown["earlier"]) >= 40

    store = ChatStore(data / "chats.sqlite3")
    try:
        (chat,) = store.list_chats()
        user, reply = store.messages(chat.id)
        assert user.content.startswith("Tell me a long story")
        assert reply.status == chat_store.INTERRUPTED
        assert reply.content.startswith(shown["earlier"]), "text shown a while ago was lost"
        # The model thread may be ahead of the screen or just behind it: the same stream.
        assert reply.content.startswith(shown["now"]) or shown["now"].startswith(reply.content)
    finally:
        store.close()
