"""The chat list on the left of the window: search, open, rename, delete with undo.

It works on the chat store directly (titles and deletes are the store's), and tells the window
only what it must act on: a chat to open, the open chat deleted, a deleted chat back. Every
action names the chat it acts on (the row right-clicked, not whichever row happens to be
selected), and the list stays usable while a reply streams: only the chat that is streaming
cannot be deleted, because its reply is still being written.

A delete is undone from a small bar under the list ("Deleted “…”. Undo"); the deleted rows are
kept in memory until the bar goes (UNDO_SECONDS) or the next delete, so an undo puts the chat back
exactly, ids and times included.

Signals:
    chatOpened(int)    the user opened this chat (a click, Enter, the menu)
    chatDeleted(int)   this chat was deleted (the window leaves it if it is open)
    chatRestored(int)  a deleted chat came back (undo)
    note(str)          a line for the status bar (why something was not done)
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QPoint, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.core.errors import LeanCoderError
from app.core.storage.chat_store import ChatStore, DeletedChat

UNDO_SECONDS = 15
SEARCH_DELAY_MS = 150  # typing a word runs one search, not one per key
CHAT_ID = Qt.ItemDataRole.UserRole


class ChatListPanel(QWidget):
    chatOpened = Signal(int)
    chatDeleted = Signal(int)
    chatRestored = Signal(int)
    note = Signal(str)

    def __init__(self, store: ChatStore, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.store = store
        self.current_id: int | None = None  # the chat open in the window
        # The chat whose reply is streaming, asked when needed: a new chat gets its id only
        # once the model thread has saved its first message.
        self.busy_chat: Callable[[], int | None] = lambda: None
        self._deleted: DeletedChat | None = None
        self._filling = False  # items are being (re)created: their changes are no renames
        self.search = QLineEdit(self)
        self.search.setPlaceholderText("Search chats")
        self.search.setClearButtonEnabled(True)
        self.search.setToolTip("Titles and messages containing this text (Ctrl+F)")
        self.list = QListWidget(self)
        self.list.setMinimumWidth(180)
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.setEditTriggers(QListWidget.EditTrigger.NoEditTriggers)  # F2 or the menu
        self.list.setStyleSheet("QListWidget::item { padding: 5px 4px; }")  # rows easy to hit
        self.list.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.empty_label = QLabel("", self)
        self.empty_label.setWordWrap(True)
        self.empty_label.setStyleSheet("color: palette(placeholder-text);")
        self.empty_label.hide()
        self.undo_bar = QFrame(self)
        self.undo_bar.setFrameShape(QFrame.Shape.StyledPanel)
        self.undo_label = QLabel("", self.undo_bar)
        self.undo_label.setWordWrap(True)
        self.undo_button = QPushButton("Undo", self.undo_bar)
        self.undo_button.setToolTip("Bring the deleted chat back")
        bar = QHBoxLayout(self.undo_bar)
        bar.setContentsMargins(6, 2, 6, 2)
        bar.addWidget(self.undo_label, 1)
        bar.addWidget(self.undo_button)
        self.undo_bar.hide()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 0, 4)
        layout.addWidget(self.search)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.empty_label)
        layout.addWidget(self.undo_bar)

        # Keys that act on the selected chat while the list has the focus; the Chat menu shows
        # these same actions, so the keys are listed there.
        self.rename_action = self._list_action("Rename chat", QKeySequence(Qt.Key.Key_F2))
        self.delete_action = self._list_action(
            "Delete chat", QKeySequence(QKeySequence.StandardKey.Delete)
        )
        self.rename_action.triggered.connect(lambda: self._on_selected(self.rename))
        self.delete_action.triggered.connect(lambda: self._on_selected(self.delete))
        self._undo_timer = QTimer(self)
        self._undo_timer.setSingleShot(True)
        self._undo_timer.timeout.connect(self._forget_deleted)
        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(SEARCH_DELAY_MS)
        self._search_timer.timeout.connect(self.refresh)
        self.search.textChanged.connect(lambda _t: self._search_timer.start())
        self.undo_button.clicked.connect(self.undo_delete)
        self.list.itemClicked.connect(self._on_item_opened)
        self.list.itemActivated.connect(self._on_item_opened)
        self.list.itemChanged.connect(self._on_item_renamed)
        self.list.customContextMenuRequested.connect(self._show_menu)

    def _list_action(self, text: str, keys: QKeySequence) -> QAction:
        action = QAction(text, self)
        action.setShortcut(keys)
        action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.list.addAction(action)
        return action

    # -- the rows ------------------------------------------------------------------------------

    def refresh(self) -> None:
        """List the chats matching the search, the open one (`current_id`) selected."""
        query = self.search.text()
        self._filling = True
        try:
            self.list.clear()
            for chat in self.store.search_chats(query):
                item = QListWidgetItem(chat.title)
                item.setData(CHAT_ID, chat.id)
                item.setToolTip(chat.title)
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEditable)
                self.list.addItem(item)
                if chat.id == self.current_id:
                    self.list.setCurrentItem(item)
        finally:
            self._filling = False
        if not self.list.count():
            self.empty_label.setText(
                f"No chat contains “{query.strip()}”." if query.strip() else "No chats yet."
            )
        self.empty_label.setVisible(self.list.count() == 0)

    def item_for(self, chat_id: int) -> QListWidgetItem | None:
        for row in range(self.list.count()):
            item = self.list.item(row)
            if item.data(CHAT_ID) == chat_id:
                return item
        return None

    def select(self, chat_id: int | None) -> None:
        self.current_id = chat_id
        item = self.item_for(chat_id) if chat_id is not None else None
        if item is None:
            self.list.clearSelection()
            self.list.setCurrentRow(-1)
        else:
            self.list.setCurrentItem(item)

    def _on_item_opened(self, item: QListWidgetItem) -> None:
        self.chatOpened.emit(int(item.data(CHAT_ID)))

    def _on_selected(self, act: object) -> None:
        item = self.list.currentItem()
        chat_id = int(item.data(CHAT_ID)) if item is not None else self.current_id
        if chat_id is not None and callable(act):
            act(chat_id)

    # -- the right-click menu ------------------------------------------------------------------

    def menu_at(self, pos: QPoint) -> QMenu | None:
        """The menu for the row at `pos` (list viewport coordinates): it acts on that chat."""
        item = self.list.itemAt(pos)
        if item is None:
            return None
        chat_id = int(item.data(CHAT_ID))
        menu = QMenu(self)
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        menu.addSection(_short(item.text()))  # which chat the menu acts on (not the open one)
        menu.addAction("Open").triggered.connect(lambda: self.chatOpened.emit(chat_id))
        rename = menu.addAction("Rename…")
        rename.setShortcut(self.rename_action.shortcut())
        rename.triggered.connect(lambda: self.rename(chat_id))
        delete = menu.addAction("Delete")
        delete.setShortcut(self.delete_action.shortcut())
        delete.setEnabled(chat_id != self.busy_chat())
        delete.triggered.connect(lambda: self.delete(chat_id))
        return menu

    def _show_menu(self, pos: QPoint) -> None:
        menu = self.menu_at(pos)
        if menu is not None:
            menu.popup(self.list.viewport().mapToGlobal(pos))

    # -- rename --------------------------------------------------------------------------------

    def rename(self, chat_id: int) -> None:
        """Edit the chat's title in place; Enter saves it, Esc keeps the old one."""
        item = self.item_for(chat_id)
        if item is not None:
            self.list.setCurrentItem(item)
            self.list.editItem(item)

    def _on_item_renamed(self, item: QListWidgetItem) -> None:
        if self._filling:
            return
        chat_id = int(item.data(CHAT_ID))
        old = self.store.chat_title(chat_id) or ""
        try:
            title = self.store.rename_chat(chat_id, item.text())
        except LeanCoderError:
            title = old  # an empty title: the old one stays
        if title != item.text():
            self._filling = True
            item.setText(title)
            self._filling = False
        item.setToolTip(title)

    # -- delete and undo -----------------------------------------------------------------------

    def delete(self, chat_id: int) -> bool:
        """Delete a chat (not the one streaming); the undo bar offers it back for a while."""
        if chat_id == self.busy_chat():
            self.note.emit("This chat's reply is still being written: stop it to delete the chat.")
            return False
        deleted = self.store.delete_chat(chat_id)
        if deleted is None:
            return False
        self._deleted = deleted
        self.undo_label.setText(f"Deleted “{_short(str(deleted.chat[1]))}”.")
        self.undo_bar.show()
        self._undo_timer.start(int(UNDO_SECONDS * 1000))
        self.refresh()
        self.chatDeleted.emit(chat_id)
        return True

    def undo_delete(self) -> int | None:
        deleted, self._deleted = self._deleted, None
        self._undo_timer.stop()
        self.undo_bar.hide()
        if deleted is None:
            return None
        chat_id = self.store.restore_chat(deleted)
        self.refresh()
        self.chatRestored.emit(chat_id)
        return chat_id

    @property
    def can_undo(self) -> bool:
        return self._deleted is not None

    def _forget_deleted(self) -> None:
        self._deleted = None
        self.undo_bar.hide()


def _short(title: str, length: int = 40) -> str:
    return title if len(title) <= length else title[: length - 1] + "…"
