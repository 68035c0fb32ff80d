"""One hunk of a proposed edit: its highlighted diff, Accept / Reject, and an editor for it.

The buttons sit in the hunk's header row, right after its title, so they stay on screen however
wide the diff is (the diff scrolls sideways inside its own view, never the page).
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFontDatabase, QResizeEvent
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from app.core.edits import ChangeKind, FileChange, HunkStatus
from app.core.edits.textfile import strip_ending
from app.ui import theme
from app.ui.diff_highlight import FileHighlighter

# The status word and the theme's text colour it is drawn in (app.ui.theme.Theme fields).
STATUS_STYLE = {
    HunkStatus.PENDING: ("not decided", "warning_text"),
    HunkStatus.ACCEPTED: ("accepted", "success_text"),
    HunkStatus.REJECTED: ("rejected", "danger_text"),
}


class DiffBrowser(QTextBrowser):
    """A read-only diff that is exactly as tall as its text (the pane scrolls, not each hunk)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setOpenLinks(False)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setLineWrapMode(QTextBrowser.LineWrapMode.NoWrap)
        self.setFrameShape(QFrame.Shape.NoFrame)

    def set_diff(self, html: str, wrap: bool = False) -> None:
        mode = QTextBrowser.LineWrapMode.WidgetWidth if wrap else QTextBrowser.LineWrapMode.NoWrap
        self.setLineWrapMode(mode)
        self.setHtml(html)
        self._fit()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._fit()

    def _fit(self) -> None:
        document = self.document()
        if self.lineWrapMode() is QTextBrowser.LineWrapMode.WidgetWidth:
            document.setTextWidth(max(1, self.viewport().width()))
        bar = self.horizontalScrollBar().sizeHint().height()
        self.setFixedHeight(int(document.size().height()) + 2 * self.frameWidth() + bar + 2)


class HunkView(QFrame):
    """Accept, reject or edit one hunk; `changed` fires after any of them.

    Editing shows the hunk's proposed lines in a text editor; Save replaces them with the user's
    text (the file's line endings are kept), Revert goes back to the model's text.
    """

    changed = Signal()
    focused = Signal(object)  # this hunk's buttons were used: it becomes the current hunk

    def __init__(
        self,
        change: FileChange,
        index: int,
        highlighter: FileHighlighter,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.change = change
        self.index = index
        self.highlighter = highlighter
        self.side_by_side = False
        self.current = False
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.title = QLabel(self)
        self.status = QLabel(self)
        self.accept_button = QPushButton("Accept", self)
        self.accept_button.setToolTip("Write this hunk on Apply (A accepts the current hunk)")
        self.reject_button = QPushButton("Reject", self)
        self.reject_button.setToolTip("Leave these lines as they are (R rejects the current hunk)")
        self.edit_button = QPushButton("Edit…", self)
        self.edit_button.setToolTip("Change the proposed lines before accepting them")
        self.revert_button = QPushButton("Revert edit", self)
        self.diff = DiffBrowser(self)
        self.editor = QPlainTextEdit(self)
        self.editor.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.editor.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.save_button = QPushButton("Save text", self)
        self.cancel_button = QPushButton("Cancel", self)

        header = QHBoxLayout()
        header.addWidget(self.title)
        for button in (self.accept_button, self.reject_button, self.edit_button,
                       self.revert_button):  # fmt: skip
            header.addWidget(button)
            button.clicked.connect(lambda: self.focused.emit(self))
        header.addWidget(self.status)
        header.addStretch(1)
        edit_row = QHBoxLayout()
        edit_row.addStretch(1)
        edit_row.addWidget(self.save_button)
        edit_row.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.addLayout(header)
        layout.addWidget(self.diff)
        layout.addWidget(self.editor)
        layout.addLayout(edit_row)

        self.accept_button.clicked.connect(lambda: self.set_status(HunkStatus.ACCEPTED))
        self.reject_button.clicked.connect(lambda: self.set_status(HunkStatus.REJECTED))
        self.edit_button.clicked.connect(self.start_editing)
        self.revert_button.clicked.connect(self._revert)
        self.save_button.clicked.connect(self.save_edit)
        self.cancel_button.clicked.connect(self.stop_editing)
        self.edit_button.setEnabled(change.kind is not ChangeKind.DELETE)
        self.stop_editing()
        self.refresh()

    @property
    def hunk_status(self) -> HunkStatus:
        return self.change.hunks[self.index].status

    def set_locked(self, locked: bool) -> None:
        """After an apply the proposal is spent: the buttons no longer act on it."""
        editable = self.change.kind is not ChangeKind.DELETE
        for button in (self.accept_button, self.reject_button, self.revert_button,
                       self.save_button):  # fmt: skip
            button.setEnabled(not locked)
        self.edit_button.setEnabled(not locked and editable)

    def refresh(self) -> None:
        hunk = self.change.hunks[self.index]
        old = hunk.old_end - hunk.old_start
        self.title.setText(
            f"<b>Hunk {self.index + 1}</b> of {len(self.change.hunks)}: lines "
            f"{hunk.old_start + 1}–{max(hunk.old_start + 1, hunk.old_end)}, "
            f"−{old} +{len(hunk.new_lines)}" + (" <i>(edited)</i>" if hunk.edited else "")
        )
        text, colour_name = STATUS_STYLE[hunk.status]
        color = getattr(theme.current(), colour_name)
        self.status.setText(f'<span style="color:{color}; font-weight:bold;">{text}</span>')
        self.revert_button.setVisible(hunk.edited)
        self.diff.set_diff(
            self.highlighter.hunk_html(
                hunk,
                side_by_side=self.side_by_side,
                rejected=hunk.status is HunkStatus.REJECTED,
            ),
            wrap=self.side_by_side,
        )

    def set_side_by_side(self, on: bool) -> None:
        if on != self.side_by_side:
            self.side_by_side = on
            self.refresh()

    def set_current(self, current: bool) -> None:
        """The hunk the review keys act on is outlined."""
        self.current = current
        self.setStyleSheet(
            f"HunkView {{ border: 2px solid {theme.current().highlight}; border-radius: 4px; }}"
            if current
            else ""
        )

    def set_status(self, status: HunkStatus) -> None:
        self.change.set_status(self.index, status)
        self.refresh()
        self.changed.emit()

    def start_editing(self) -> None:
        hunk = self.change.hunks[self.index]
        self.editor.setPlainText("\n".join(strip_ending(line) for line in hunk.new_lines))
        for widget in (self.editor, self.save_button, self.cancel_button):
            widget.setVisible(True)
        self.editor.setFocus()

    def stop_editing(self) -> None:
        for widget in (self.editor, self.save_button, self.cancel_button):
            widget.setVisible(False)

    def save_edit(self) -> None:
        text = self.editor.toPlainText()
        self.change.set_hunk_text(self.index, text + "\n" if text else "")
        self.stop_editing()
        self.refresh()
        self.changed.emit()

    def _revert(self) -> None:
        self.change.reset_hunk(self.index)
        self.refresh()
        self.changed.emit()
