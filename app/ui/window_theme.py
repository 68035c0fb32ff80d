"""The main window's look: its View menu (theme, meters), themed toolbar icons, and what a theme
switch repaints.

Why a module of its own: the window file is shared by everyone working on the window; this keeps
the look to one call there (`install_look`). The theme choice is saved in the settings
(`Settings.theme`: "system", "light" or "dark").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractButton, QMenu, QToolBar

from app.ui import theme
from app.ui.theme import ThemeManager, theme_menu

if TYPE_CHECKING:
    from PySide6.QtGui import QAction

    from app.ui.main_window import MainWindow

# Which bundled icon each of the window's actions and buttons shows (resources/icons).
ACTION_ICONS = {
    "new_chat_action": "message-square-plus",
    "compare_action": "columns-2",
    "edit_policy_action": "sliders-horizontal",
}
CODE_ICONS = {
    "open_action": "folder-open",
    "edit_action": "file-pen-line",
    "undo_action": "undo-2",
    "fix_action": "wrench",
}
BUTTON_ICONS = {
    "send_button": "send",
    "stop_button": "circle-stop",
    "stop_thinking_button": "brain",
}


def install_look(window: MainWindow) -> ThemeManager:
    """Apply the saved theme, add View > Theme and View > Meters, and draw the icons."""
    manager = ThemeManager(getattr(window.settings, "theme", "system"), window)

    def chosen(choice: str) -> None:
        if hasattr(window.settings, "theme"):
            window.settings.theme = choice
            window.save_settings()

    view = QMenu("&View", window)
    menu_bar = window.menuBar()
    help_menu = next((a for a in menu_bar.actions() if a.text().replace("&", "") == "Help"), None)
    if help_menu is not None:
        menu_bar.insertMenu(help_menu, view)
    else:
        menu_bar.addMenu(view)
    view.addMenu(theme_menu(manager, window, chosen))
    meters_bar = getattr(window.meters, "toolbar", None)
    if isinstance(meters_bar, QToolBar):
        toggle = meters_bar.toggleViewAction()
        toggle.setText("&Meters")
        view.addAction(toggle)
    for toolbar in window.findChildren(QToolBar):
        if toolbar is not meters_bar:
            toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
    manager.changed.connect(lambda _t: _on_theme_changed(window))
    _on_theme_changed(window)
    return manager


def _icon_targets(window: MainWindow) -> list[tuple[QAction | QAbstractButton, str]]:
    targets: list[tuple[QAction | QAbstractButton, str]] = []
    for owner, table in ((window, ACTION_ICONS), (window.code, CODE_ICONS), (window, BUTTON_ICONS)):
        for attribute, name in table.items():
            target = getattr(owner, attribute, None)
            if target is not None:
                targets.append((target, name))
    return targets


def _on_theme_changed(window: MainWindow) -> None:
    for target, name in _icon_targets(window):
        target.setIcon(theme.icon(name))
    window.meters.repaint_theme()
    window.code.review.repaint_theme()
    if window.compare_window is not None:
        window.compare_window.repaint_theme()
    # Code blocks carry the theme's colours inline: the open chat is drawn again in the new ones.
    # The same conversation, so the meters keep their figures (open_chat would clear them).
    if not window.generating and window.chat_id is not None:
        window.chat_view.show_stored(window.store.messages(window.chat_id))
