"""The review's message bars: a big deletion to confirm, read-only files to overwrite, a conflict.

Each bar is hidden until the review needs the user's answer, and names the files it is about;
the conflict bar also shows how each file on disk differs from the text the proposal was made
against, so the user can see what changed before deciding. Kept apart from the review pane
because none of it is about hunks.
"""

from __future__ import annotations

import difflib
import html

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from app.core.edits import Proposal
from app.core.edits.fsio import read_or_none
from app.ui.theme import message_bar_style

CONFLICT_DIFF_LINES = 40


class ReviewBars(QWidget):
    """The three bars, stacked; the pane connects their buttons."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.confirm_bar, self.confirm_label, confirm = self._bar(message_bar_style("warning"))
        self.confirm_button = QPushButton("Apply anyway", self.confirm_bar)
        self.cancel_confirm_button = QPushButton("Cancel", self.confirm_bar)
        confirm.addLayout(_right(self.confirm_button, self.cancel_confirm_button))
        warning = message_bar_style("warning")
        self.read_only_bar, self.read_only_label, read_only = self._bar(warning)
        self.overwrite_button = QPushButton("Overwrite read-only files", self.read_only_bar)
        self.cancel_overwrite_button = QPushButton("Cancel", self.read_only_bar)
        read_only.addLayout(_right(self.overwrite_button, self.cancel_overwrite_button))
        self.conflict_bar, self.conflict_label, conflict = self._bar(message_bar_style("danger"))
        self.conflict_view = QTextBrowser(self.conflict_bar)
        self.conflict_view.setMaximumHeight(200)
        self.dismiss_conflict_button = QPushButton("Dismiss", self.conflict_bar)
        conflict.addWidget(self.conflict_view)
        conflict.addWidget(self.dismiss_conflict_button, 0, Qt.AlignmentFlag.AlignRight)
        for bar in (self.confirm_bar, self.read_only_bar, self.conflict_bar):
            layout.addWidget(bar)
        self.cancel_confirm_button.clicked.connect(self.confirm_bar.hide)
        self.cancel_overwrite_button.clicked.connect(self.read_only_bar.hide)
        self.dismiss_conflict_button.clicked.connect(self.conflict_bar.hide)

    def _bar(self, style: str) -> tuple[QFrame, QLabel, QVBoxLayout]:
        """A message bar (hidden until needed): a frame, its label, and its layout."""
        bar = QFrame(self)
        bar.setStyleSheet(style)
        label = QLabel(bar)
        label.setWordWrap(True)
        layout = QVBoxLayout(bar)
        layout.addWidget(label)
        bar.hide()
        return bar, label, layout

    def hide_all(self) -> None:
        for bar in (self.confirm_bar, self.read_only_bar, self.conflict_bar):
            bar.hide()

    def ask_big_deletion(self, shares: str) -> None:
        self.confirm_label.setText(
            f"<b>Large deletion.</b> The accepted changes remove more than half of "
            f"{html.escape(shares)}. Apply anyway?"
        )
        self.confirm_bar.show()

    def ask_read_only(self, files: list[str]) -> None:
        names = html.escape(", ".join(files))
        self.read_only_label.setText(
            f"<b>Read-only.</b> {names} {'has' if len(files) == 1 else 'have'} no write "
            "permission, so nothing was written. Overwrite anyway? (The permissions stay as "
            "they are.)"
        )
        self.read_only_bar.show()

    def show_conflict(self, message: str, files: list[str], proposal: Proposal | None) -> None:
        self.conflict_label.setText(f"<b>Not written.</b> {html.escape(message)}")
        self.conflict_view.setHtml(conflict_details(files, proposal))
        self.conflict_bar.show()


def _right(*buttons: QPushButton) -> QHBoxLayout:
    row = QHBoxLayout()
    row.addStretch(1)
    for button in buttons:
        row.addWidget(button)
    return row


def conflict_details(files: list[str], proposal: Proposal | None) -> str:
    """For each file, how the disk differs from what the proposal was made against."""
    parts = []
    for path in files:
        change = None
        if proposal is not None:
            change = next((c for c in proposal.files if c.path == path), None)
        parts.append(f"<b>{html.escape(path)}</b>")
        if change is None:
            continue
        now = read_or_none(change.real_path)
        then = change.original
        if now is None or then is None:
            parts.append("<i>" + ("deleted since" if now is None else "created since")
                         + " the proposal</i>")  # fmt: skip
            continue
        diff = list(difflib.unified_diff(
            then.decode(change.encoding, "replace").splitlines(),
            now.decode(change.encoding, "replace").splitlines(),
            "proposed against", "on disk now", lineterm="", n=1,
        ))[:CONFLICT_DIFF_LINES]  # fmt: skip
        parts.append("<pre>" + html.escape("\n".join(diff) or "(same text)") + "</pre>")
    return "<br>".join(parts)
