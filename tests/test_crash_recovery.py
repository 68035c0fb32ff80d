"""A hard crash mid-reply loses nothing that was already on screen.

The window runs in a child process. As soon as the live reply shows some text, the child prints
exactly what is displayed and kills itself with os._exit (no cleanup, no close event: what a crash
or a power-cut-free kill looks like). The next start must show at least that text, marked as
interrupted.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

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

    def crash_once_shown(widget):
        # widget.answer is the Markdown source of what the body now displays.
        if len(widget.answer) >= 40:
            print(json.dumps({"answer": widget.answer}), flush=True)
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


def test_text_shown_before_a_crash_survives(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {"LEANCODER_DATA_DIR": str(data), "QT_QPA_PLATFORM": "offscreen", "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=120, env=env
    )
    assert result.returncode == 3, result.stderr[-2000:]
    shown = json.loads(result.stdout.strip().splitlines()[-1])["answer"]
    assert len(shown) >= 40

    store = ChatStore(data / "chats.sqlite3")
    try:
        (chat,) = store.list_chats()
        user, reply = store.messages(chat.id)
        assert user.content.startswith("Tell me a long story")
        assert reply.status == chat_store.INTERRUPTED
        assert reply.content.startswith(shown), "text that was on screen was lost"
    finally:
        store.close()
