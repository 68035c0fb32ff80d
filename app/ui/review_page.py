"""The review as a full-width page that takes the chat's place while the user reviews edits.

A dock beside the chat squeezed both (the chat to about 140 px, the hunks' buttons off-screen), so
the centre of the window is a stack: the chat, or this page. The page has a way back to the chat
(the proposal stays, and "Review edits" returns to it), a side-by-side switch, and keys for
reviewing without the mouse; each key is named in its action's text and tooltip, and the actions
are offered for a menu. The keys act only while the page has the focus, so typing in a hunk's
editor types, and the window's own shortcuts elsewhere are untouched.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from app.core.edits import HunkStatus
from app.ui.review_pane import ReviewPane


class ReviewPage(QWidget):
    """A title bar (Back to chat, Side by side) over the review pane, with review keys.

    Signals:
        backRequested(): the user wants the chat back.
    """

    backRequested = Signal()

    def __init__(self, review: ReviewPane, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.review = review
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.title = QLabel("<b>Review proposed edits</b>: nothing is written until Apply", self)
        self.side_by_side = QCheckBox("Side by side", self)
        self.side_by_side.setToolTip("Old lines on the left, new lines on the right")
        self.back_button = QPushButton("Back to chat", self)
        self.keys_hint = QLabel(
            "J / K next / previous hunk · A accept · R reject · Ctrl+Enter apply · Alt+Left back",
            self,
        )
        self.keys_hint.setStyleSheet("color: palette(placeholder-text);")  # the theme's muted
        self.keys_hint.setWordWrap(True)
        top = QHBoxLayout()
        top.addWidget(self.title, 1)
        top.addWidget(self.side_by_side)
        top.addWidget(self.back_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.keys_hint)
        layout.addWidget(review, 1)

        self.next_action = self._action("Next hunk", ["J", "Alt+Down"], lambda: review.move_hunk(1))
        self.previous_action = self._action(
            "Previous hunk", ["K", "Alt+Up"], lambda: review.move_hunk(-1)
        )
        self.accept_action = self._action(
            "Accept hunk", ["A"], lambda: review.decide_current(HunkStatus.ACCEPTED)
        )
        self.reject_action = self._action(
            "Reject hunk", ["R"], lambda: review.decide_current(HunkStatus.REJECTED)
        )
        self.apply_action = self._action(
            "Apply accepted hunks", ["Ctrl+Return", "Ctrl+Enter"], review.apply
        )
        self.back_action = self._action("Back to chat", ["Alt+Left"], self.backRequested.emit)
        self.back_button.setToolTip("Return to the chat; the proposal stays here (Alt+Left)")
        self.back_button.clicked.connect(self.backRequested.emit)
        self.side_by_side.toggled.connect(review.set_side_by_side)

    def _action(self, text: str, keys: list[str], slot: Callable[[], object]) -> QAction:
        action = QAction(text, self)
        action.setShortcuts([QKeySequence(key) for key in keys])
        # Only while the focus is on the page: the chat's keys and a hunk editor's typing win.
        action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        action.setToolTip(f"{text} ({' or '.join(keys)})")
        action.triggered.connect(slot)
        self.addAction(action)
        return action

    @property
    def actions_for_menu(self) -> list[QAction]:
        return [self.next_action, self.previous_action, self.accept_action, self.reject_action,
                self.apply_action, self.back_action]  # fmt: skip


class CentreStack(QStackedWidget):
    """The window's centre: the chat, or the review page in its place."""

    def __init__(self, chat: QWidget, review_page: ReviewPage, parent: QWidget | None = None):
        super().__init__(parent)
        self.chat = chat
        self.review_page = review_page
        self.addWidget(chat)
        self.addWidget(review_page)
        review_page.backRequested.connect(self.show_chat)

    @property
    def reviewing(self) -> bool:
        return self.currentWidget() is self.review_page

    def show_review(self) -> None:
        self.setCurrentWidget(self.review_page)
        self.review_page.setFocus()

    def show_chat(self) -> None:
        self.setCurrentWidget(self.chat)
