"""What the window does to a conversation besides sending: regenerate a reply, edit a message and
send it again, and move to another chat while a reply streams.

Regenerating and editing both rewrite history the same way: the chosen user message and every
turn after it are deleted from the store, the chat is reopened from what is left, and the (same
or edited) text is sent as a new turn. The model therefore sees exactly the history the user sees,
and the store never holds two branches that the list could not show.

Moving to another chat while a reply streams detaches the reply from the view (LiveReply.detach):
the model goes on, the session saves the reply on its own clock, and if the user comes back to
that chat the saved part is shown, then the whole reply once it ends.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)

from app.core.session.chat import FEEDBACK_PREFIX, ChatSession, Turn

if TYPE_CHECKING:
    from app.ui.main_window import MainWindow


class EditMessageDialog(QDialog):
    """A user message in an editor; "Send again" replaces it and everything after it."""

    def __init__(self, text: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Edit and send again")
        self.editor = QPlainTextEdit(self)
        self.editor.setPlainText(text)
        self.editor.setMinimumSize(520, 180)
        note = QLabel("This message and every reply after it are replaced.", self)
        note.setStyleSheet("color: palette(placeholder-text);")
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        self.send_button = buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.send_button.setText("Send again")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        self.editor.textChanged.connect(
            lambda: self.send_button.setEnabled(bool(self.text().strip()))
        )
        layout = QVBoxLayout(self)
        layout.addWidget(self.editor, 1)
        layout.addWidget(note)
        layout.addWidget(buttons)

    def text(self) -> str:
        return self.editor.toPlainText()


class ChatActions(QObject):
    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self._window = window
        self.streaming: ChatSession | None = None  # a streaming session no longer shown
        self.dialog: EditMessageDialog | None = None
        window.live.replyFinished.connect(lambda _stats: self._on_reply_ended())
        window.live.replyFailed.connect(lambda _text: self._on_reply_ended())

    # -- which message ---------------------------------------------------------------------------

    def last_user_turn(self) -> Turn | None:
        """The last message the user typed (not the app's own feedback), once it is stored."""
        for turn in reversed(self._window.session.turns):
            if turn.role == "user" and not turn.content.startswith(FEEDBACK_PREFIX):
                return turn if turn.message_id is not None else None
        return None

    @property
    def can_rewrite(self) -> bool:
        w = self._window
        idle = not w.generating and not w.models.loading and w.model_info is not None
        return idle and self.last_user_turn() is not None

    # -- regenerate, edit and send again -----------------------------------------------------------

    def regenerate(self) -> bool:
        """Ask for the last reply again: the same message, sent anew."""
        turn = self.last_user_turn()
        if turn is None or not self.can_rewrite or turn.message_id is None:
            return False
        return self.resend(turn.message_id, turn.content)

    def edit_last(self) -> EditMessageDialog | None:
        """Open the last message in an editor; "Send again" replaces it and its reply."""
        turn = self.last_user_turn()
        if turn is None or turn.message_id is None or not self.can_rewrite:
            return None
        message_id = turn.message_id
        dialog = EditMessageDialog(turn.content, self._window)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.accepted.connect(lambda: self.resend(message_id, dialog.text()))
        dialog.destroyed.connect(self._forget_dialog)
        dialog.open()
        self.dialog = dialog
        return dialog

    def _forget_dialog(self) -> None:
        self.dialog = None

    def resend(self, message_id: int, text: str) -> bool:
        """Delete message `message_id` and what followed it, then send `text` in its place."""
        w = self._window
        text = text.strip()
        chat_id = w.chat_id
        if not text or chat_id is None or w.generating or w.model_info is None:
            return False
        w.store.delete_messages_from(chat_id, message_id)
        w.open_chat(chat_id)
        w.send_text(text)
        return True

    # -- chats while a reply streams -----------------------------------------------------------

    @property
    def streaming_chat(self) -> int | None:
        """The chat whose reply is streaming (shown or not); None when none is."""
        w = self._window
        if not w.generating:
            return None
        return (self.streaming or w.session).chat_id

    def leave_current(self) -> None:
        """The window is about to show another chat: a streaming reply goes on, unseen."""
        w = self._window
        if w.generating and not w.live.detached:
            self.streaming = w.session
            w.live.detach()

    def _on_reply_ended(self) -> None:
        w, streaming = self._window, self.streaming
        if w.generating:
            return  # an edit round ended; the request goes on
        self.streaming = None
        detached = w.live.detached
        w.live.detached = False
        chat_id = streaming.chat_id if streaming is not None else None
        if detached and chat_id is not None and chat_id == w.chat_id:
            w.open_chat(chat_id)  # back in the chat that streamed unseen: all of it now
        w.refresh_chat_list()
