"""The window's menus and keyboard: File and Chat menus, every shortcut, the context size control.

Menus hold the actions the toolbar and buttons also use, so a shortcut is shown next to its
command in the menu and works wherever the window has focus. Keys:

    Ctrl+N  New chat              Ctrl+O  Open folder           Ctrl+Q  Quit
    Enter   Send                  Esc     Stop the reply        Shift+Esc  Stop thinking
    Ctrl+R  Regenerate the reply  Ctrl+E  Edit and send again   Ctrl+Shift+C  Compare
    Ctrl+F  Search chats          F2      Rename chat           Delete  Delete chat (list)

The context size (Models > Context size) is the one the window loads models with; choosing one
marks it as the user's (`Settings.n_ctx_chosen`) and reloads the model when one is loaded, since
the context is fixed at load. `recommend`, `fit` and the CLI read the same setting.

The File menu goes first and Chat second, whatever other parts of the window added before.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QMenu

from app.core.storage.settings import DEFAULT_CONTEXT
from app.ui.chat_actions import ChatActions

if TYPE_CHECKING:
    from app.ui.main_window import MainWindow

CONTEXT_CHOICES = (4096, 8192, DEFAULT_CONTEXT, 32768, 65536, 131072)


class WindowShell(QObject):
    """File, Chat and the context menu, the shortcuts, and what each action may do now."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self._window = window
        self.chat_actions = ChatActions(window)
        bar = window.menuBar()
        first = bar.actions()[0] if bar.actions() else None
        self.file_menu = QMenu("&File", window)
        self.chat_menu = QMenu("&Chat", window)
        for new in (self.file_menu, self.chat_menu):
            bar.insertMenu(first, new) if first is not None else bar.addMenu(new)

        window.new_chat_action.setShortcut(QKeySequence.StandardKey.New)
        window.code.open_action.setShortcut(QKeySequence.StandardKey.Open)
        self.quit_action = self._action("&Quit", "Ctrl+Q", window.close)
        self.quit_action.setMenuRole(QAction.MenuRole.QuitRole)
        self.file_menu.addAction(window.new_chat_action)
        self.file_menu.addAction(window.code.open_action)
        self.file_menu.addSeparator()
        self.file_menu.addAction(self.quit_action)

        self.stop_action = self._action("Stop the reply", Qt.Key.Key_Escape, window.stop)
        self.stop_thinking_action = self._action(
            "Stop thinking", QKeySequence(Qt.Modifier.SHIFT | Qt.Key.Key_Escape),
            window.bridge.stop_thinking,
        )  # fmt: skip
        self.stop_thinking_action.setToolTip("Close the thinking now and let the model answer")
        self.regenerate_action = self._action(
            "Regenerate the reply", "Ctrl+R", self.chat_actions.regenerate
        )
        self.edit_last_action = self._action(
            "Edit and send again…", "Ctrl+E", self.chat_actions.edit_last
        )
        window.compare_action.setShortcut(QKeySequence("Ctrl+Shift+C"))
        self.search_action = self._action("Search chats", QKeySequence.StandardKey.Find, None)
        self.search_action.triggered.connect(self._focus_search)
        chats = window.chats
        for action in (self.stop_action, self.stop_thinking_action):
            self.chat_menu.addAction(action)
        self.chat_menu.addSeparator()
        for action in (self.regenerate_action, self.edit_last_action, window.compare_action):
            self.chat_menu.addAction(action)
        self.chat_menu.addSeparator()
        for action in (self.search_action, chats.rename_action, chats.delete_action):
            self.chat_menu.addAction(action)
        _show_shortcut_in_tooltip(window.stop_button, self.stop_action)
        _show_shortcut_in_tooltip(window.stop_thinking_button, self.stop_thinking_action)
        self.context_menu = self._context_menu()
        chats.busy_chat = lambda: self.chat_actions.streaming_chat
        self.update_actions()

    def _action(self, text: str, keys: object, slot: object) -> QAction:
        action = QAction(text, self._window)
        if isinstance(keys, QKeySequence.StandardKey):
            action.setShortcut(QKeySequence(keys))
        elif keys is not None:
            action.setShortcut(QKeySequence(keys))  # type: ignore[call-overload]
        self._window.addAction(action)  # works while the menu bar is hidden, too
        if callable(slot):
            action.triggered.connect(lambda _checked=False: slot())
        return action

    def _focus_search(self) -> None:
        search = self._window.chats.search
        search.setFocus(Qt.FocusReason.ShortcutFocusReason)
        search.selectAll()

    # -- the context size ----------------------------------------------------------------------

    def _context_menu(self) -> QMenu:
        w = self._window
        menu = QMenu("Context size", w)
        menu.setToolTipsVisible(True)
        group = QActionGroup(menu)
        chosen = w.settings.n_ctx
        choices = sorted({*CONTEXT_CHOICES, chosen} - {0})
        for n_ctx in choices:
            label = f"{n_ctx:,} tokens" + (" (default)" if n_ctx == DEFAULT_CONTEXT else "")
            self._context_choice(menu, group, label, n_ctx, chosen)
        self._context_choice(menu, group, "The model's trained context", 0, chosen)
        models = _menu_titled(w, "Models")
        if models is not None:
            models.addSeparator()
            models.addMenu(menu)
        return menu

    def _context_choice(
        self, menu: QMenu, group: QActionGroup, label: str, n_ctx: int, chosen: int
    ) -> None:
        action = menu.addAction(label)
        action.setCheckable(True)
        action.setChecked(n_ctx == chosen)
        action.setData(n_ctx)
        action.setToolTip(
            "The tokens a model can hold: the prompt, the code folder, the conversation and the "
            "reply. More costs memory; the fit plan lowers it where memory is short."
        )
        group.addAction(action)
        action.triggered.connect(lambda _checked=False: self.set_context(n_ctx))

    def set_context(self, n_ctx: int) -> None:
        """The user's context size: saved, and the loaded model reloaded with it."""
        w = self._window
        w.settings.n_ctx, w.settings.n_ctx_chosen = n_ctx, True
        w.model_menu.wanted_ctx = n_ctx or DEFAULT_CONTEXT
        w.save_settings()
        for action in self.context_menu.actions():
            action.setChecked(action.data() == n_ctx)
        spec = w.settings.last_model
        if w.model_info is not None and spec and not w.generating and not w.models.loading:
            w.load_model(spec)
        else:
            w.statusBar().showMessage("The context size applies when a model is next loaded.", 8000)

    # -- what may run now --------------------------------------------------------------------------

    def update_actions(self) -> None:
        """Enable each action as its button is (the window calls this with update_controls)."""
        w = self._window
        self.stop_action.setEnabled(w.stop_button.isEnabled())
        self.stop_thinking_action.setEnabled(w.stop_thinking_button.isEnabled())
        can_rewrite = self.chat_actions.can_rewrite
        self.regenerate_action.setEnabled(can_rewrite)
        self.edit_last_action.setEnabled(can_rewrite)


def _menu_titled(window: MainWindow, title: str) -> QMenu | None:
    for action in window.menuBar().actions():
        menu = action.menu()
        if isinstance(menu, QMenu) and action.text().replace("&", "") == title:
            return menu
    return None


def _show_shortcut_in_tooltip(button: object, action: QAction) -> None:
    from PySide6.QtWidgets import QAbstractButton

    if isinstance(button, QAbstractButton):
        keys = action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
        tip = button.toolTip() or action.text()
        button.setToolTip(f"{tip} ({keys})")
