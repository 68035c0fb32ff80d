"""What the window does to a conversation besides sending: regenerate a reply, edit a message and
send it again, and move to another chat while a reply streams.

Regenerating and editing both rewrite history the same way: the chosen user message and every
turn after it are deleted from the store, the chat is reopened from what is left, and the (same
or edited) text is sent as a new turn. The model therefore sees exactly the history the user sees,
and the store never holds two branches that the list could not show.

Each message's right-click menu (the text view's own Copy / Select All, then these) acts on that
message: Edit and send again on a message the user wrote, Regenerate on a reply, Copy message.
A message on screen is matched to its stored turn by position, and only while nothing streams.

Moving to another chat while a reply streams detaches the reply from the view (LiveReply.detach):
the model goes on, the session saves the reply on its own clock, and if the user comes back to
that chat the saved part is shown, then the whole reply once it ends.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QObject, QPoint, Qt, QTimer
from PySide6.QtGui import QContextMenuEvent, QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QMenu,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)

from app.core.session.chat import FEEDBACK_PREFIX, ChatSession, Turn
from app.ui.chat_view import MessageWidget

if TYPE_CHECKING:
    from app.ui.main_window import MainWindow

_HOOKED = "leancoderMessageMenu"  # a message widget whose right-click menu is ours


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
        container = window.chat_view.widget()
        if container is not None:
            container.installEventFilter(self)

    # -- each message's menu -------------------------------------------------------------------

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ChildAdded:
            QTimer.singleShot(0, self._hook_messages)  # once the message widget is built
        elif event.type() == QEvent.Type.ContextMenu and isinstance(event, QContextMenuEvent):
            message = self._message_of(watched)
            if message is not None:
                menu = self.message_menu(message, event.pos() if watched is message.body else None)
                menu.popup(event.globalPos())
                return True
        return False

    def _hook_messages(self) -> None:
        for message in self._window.chat_view.messages:
            if not message.property(_HOOKED):
                message.setProperty(_HOOKED, True)
                message.installEventFilter(self)
                message.body.installEventFilter(self)

    def _message_of(self, watched: QObject) -> MessageWidget | None:
        for message in self._window.chat_view.messages:
            if watched is message or watched is message.body:
                return message
        return None

    def turn_of(self, message: MessageWidget) -> Turn | None:
        """The stored turn shown by `message`, while nothing streams (matched by position)."""
        w = self._window
        shown, turns = w.chat_view.messages, w.session.turns
        if w.generating or len(shown) != len(turns) or message not in shown:
            return None
        turn = turns[shown.index(message)]
        return turn if turn.role == message.role and turn.message_id is not None else None

    def message_menu(self, message: MessageWidget, body_pos: QPoint | None = None) -> QMenu:
        """The right-click menu of one message: the text's own entries, then what the message
        allows (Edit and send again for the user's, Regenerate for a reply, Copy message)."""
        if body_pos is not None:
            menu = message.body.createStandardContextMenu(body_pos)
            menu.setParent(self._window, menu.windowFlags())
            menu.addSeparator()
        else:
            menu = QMenu(self._window)
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        turn = self.turn_of(message)
        idle = self.can_rewrite
        if message.role == "user":
            edit = menu.addAction("Edit and send again…")
            feedback = turn is not None and turn.content.startswith(FEEDBACK_PREFIX)
            edit.setEnabled(idle and turn is not None and not feedback)
            edit.triggered.connect(lambda: self.edit_turn(turn) if turn is not None else None)
        else:
            regenerate = menu.addAction("Regenerate this reply")
            asked = self._question_before(turn)
            regenerate.setEnabled(idle and asked is not None)
            regenerate.triggered.connect(
                lambda: self.resend(asked.message_id, asked.content)
                if asked is not None and asked.message_id is not None else None
            )  # fmt: skip
        copy = menu.addAction("Copy message")
        copy.triggered.connect(lambda: _copy_text(message.answer))
        return menu

    def _question_before(self, reply: Turn | None) -> Turn | None:
        """The message a reply answered (the user's, or the app's edit feedback)."""
        turns = self._window.session.turns
        if reply is None or reply not in turns:
            return None
        for turn in reversed(turns[: turns.index(reply)]):
            if turn.role == "user":
                return turn if turn.message_id is not None else None
        return None

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
        return self.edit_turn(turn) if turn is not None else None

    def edit_turn(self, turn: Turn) -> EditMessageDialog | None:
        """Open a user message in an editor; "Send again" replaces it and all that followed."""
        if turn.message_id is None or not self.can_rewrite:
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


def _copy_text(text: str) -> None:
    clipboard = QGuiApplication.clipboard()
    if clipboard is not None:
        clipboard.setText(text)
