"""What the chat says when Propose edits was on and the reply held no edit blocks.

Without it the window said nothing (no review, no explanation), and the user could not tell a
reply with no edits from one still on its way. The notice says so in the conversation, and its
button asks again with the edit format restated: the same instructions the session's system
prompt carried (app.core.edits.prompt), chosen the same way, since a small model that ignored
them once often follows them when they are repeated next to the request.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QWidget

from app.core.edits import choose_edit_format, edit_system_prompt
from app.core.session.chat import FEEDBACK_PREFIX
from app.core.workspace.context import WorkspaceContext

NOTICE_TEXT = (
    "<b>No edits in this reply.</b> It holds no edit blocks, so there is nothing to review or "
    "apply."
)


def retry_message(model_params: int | None, file_sizes: Iterable[int]) -> str:
    """The follow-up the retry sends: why, then the edit format in full."""
    instructions = edit_system_prompt(choose_edit_format(model_params, file_sizes))
    return (
        f"{FEEDBACK_PREFIX}Your reply had no edit blocks, so nothing could be applied. "
        "Make the change I asked for again, written in this format:\n\n" + instructions
    )


def folder_file_sizes(folder: Path | None, context: WorkspaceContext | None) -> list[int]:
    """The byte sizes of the files the last request sent in full (what the format was chosen on);
    a file gone since counts as empty."""
    if folder is None or context is None:
        return []
    sizes = []
    for item in context.included:
        try:
            sizes.append((folder / item.path).stat().st_size)
        except OSError:
            sizes.append(0)
    return sizes


class NoEditsNotice(QFrame):
    """A line in the chat with a one-click retry; `retryRequested` fires once, then it is spent."""

    retryRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("noEditsNotice")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.label = QLabel(NOTICE_TEXT, self)
        self.label.setWordWrap(True)
        self.retry_button = QPushButton("Ask again with the edit format", self)
        self.retry_button.setToolTip(
            "Send a follow-up that restates how edits must be written (SEARCH/REPLACE blocks or "
            "whole files)"
        )
        layout = QHBoxLayout(self)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.retry_button)
        self.retry_button.clicked.connect(self._retry)

    def _retry(self) -> None:
        self.retry_button.setEnabled(False)
        self.retryRequested.emit()
