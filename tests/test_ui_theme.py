"""Light and dark themes: the palette and code blocks readable (WCAG contrast), the system's colour
scheme followed, the View menu's choice saved and restored, the bundled icons and their licence,
and dialogs fitted to their screen and centred on the window."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pygments.styles import get_style_by_name
from pygments.token import Error, Whitespace
from PySide6.QtCore import QRect, QSize, Qt
from PySide6.QtGui import QAction, QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication, QWidget
from pytestqt.qtbot import QtBot

from app.core.storage.paths import resources_dir
from app.core.storage.settings import Settings
from app.ui import theme
from app.ui.dialog_geometry import SCREEN_MARGIN, fit_and_centre, fitted_rect
from app.ui.markdown_html import markdown_to_html
from app.ui.theme import DARK, LIGHT, MIN_TEXT_CONTRAST, ThemeManager, contrast_ratio
from app.ui.window_theme import ACTION_ICONS, BUTTON_ICONS, CODE_ICONS
from tests.ui_support import WindowFactory


@pytest.fixture
def light_afterwards(qapp: QApplication) -> Iterator[None]:
    """Tests that switch themes leave the app light, as every other test expects it."""
    yield
    ThemeManager("light").deleteLater()


@pytest.mark.parametrize("t", [LIGHT, DARK], ids=["light", "dark"])
def test_text_colours_are_readable_on_their_backgrounds(t: theme.Theme) -> None:
    for text in (t.text, t.muted):
        for background in (t.window, t.base, t.alternate_base, t.button):
            assert contrast_ratio(text, background) >= MIN_TEXT_CONTRAST, (text, background)
    assert contrast_ratio(t.highlighted_text, t.highlight) >= MIN_TEXT_CONTRAST
    assert contrast_ratio(t.link, t.base) >= MIN_TEXT_CONTRAST
    assert contrast_ratio(t.full, t.base) >= 3.0  # error colour on bars and short lines: 3:1


@pytest.mark.parametrize("t", [LIGHT, DARK], ids=["light", "dark"])
def test_every_code_token_colour_is_readable_on_the_code_background(t: theme.Theme) -> None:
    style = get_style_by_name(t.pygments_style)
    checked = 0
    for token, spec in style:
        if spec["color"] and token not in Whitespace and token not in Error:
            ratio = contrast_ratio(f"#{spec['color']}", t.code_background)
            assert ratio >= MIN_TEXT_CONTRAST, (t.pygments_style, token, ratio)
            checked += 1
    assert checked > 20
    default = style.styles.get(next(iter(style.styles)), "")  # plain text takes the palette's
    assert contrast_ratio(t.text, t.code_background) >= MIN_TEXT_CONTRAST, default


def test_code_blocks_follow_the_theme(light_afterwards: None) -> None:
    block = "```python\ndef f(x):\n    return x  # done\n```"
    ThemeManager("light")
    light = markdown_to_html(block)
    ThemeManager("dark")
    dark = markdown_to_html(block)
    assert LIGHT.code_background in light and DARK.code_background in dark
    assert light != dark.replace(DARK.code_background, LIGHT.code_background)  # token colours too


def test_the_palette_follows_the_choice(qapp: QApplication, light_afterwards: None) -> None:
    manager = ThemeManager("dark")
    assert theme.current() is DARK
    palette = qapp.palette()
    assert palette.color(QPalette.ColorRole.Window) == QColor(DARK.window)
    assert palette.color(QPalette.ColorRole.Text) == QColor(DARK.text)
    manager.set_choice("light")
    assert qapp.palette().color(QPalette.ColorRole.Window) == QColor(LIGHT.window)
    manager.set_choice("nonsense")  # a hand-edited settings file: follow the system
    assert manager.choice == "system"


def test_system_choice_follows_the_platforms_colour_scheme(light_afterwards: None) -> None:
    manager = ThemeManager("system")
    hints = QGuiApplication.styleHints()
    seen: list[theme.Theme] = []
    manager.changed.connect(seen.append)
    # The offscreen platform cannot change its scheme, so the test sends the platform's own
    # signal, as a desktop switching to dark does.
    hints.colorSchemeChanged.emit(Qt.ColorScheme.Dark)
    assert theme.current() is DARK and seen == [DARK]
    hints.colorSchemeChanged.emit(Qt.ColorScheme.Light)
    assert theme.current() is LIGHT
    manager.set_choice("dark")  # the user's choice wins over the system from now on
    hints.colorSchemeChanged.emit(Qt.ColorScheme.Light)
    assert theme.current() is DARK
    manager.deleteLater()


def test_fitted_rect_keeps_a_big_window_inside_a_small_screen() -> None:
    screen = QRect(0, 0, 1000, 700)
    # Compare asks for 1200x800: on a 1000-px screen it gets the screen less the margins.
    rect = fitted_rect(QSize(1200, 800), screen, QRect(0, 0, 1000, 700))
    assert screen.contains(rect)
    assert rect.size() == QSize(1000 - 2 * SCREEN_MARGIN, 700 - 2 * SCREEN_MARGIN)
    # A small dialog is centred on its window, and moved back inside when the window is at the edge.
    assert fitted_rect(QSize(400, 300), screen, QRect(100, 100, 600, 400)).center() == QRect(
        100, 100, 600, 400
    ).center()
    edge = fitted_rect(QSize(400, 300), screen, QRect(800, 500, 400, 300))
    assert screen.adjusted(SCREEN_MARGIN, SCREEN_MARGIN, -SCREEN_MARGIN, -SCREEN_MARGIN).contains(
        edge
    )


def test_fit_and_centre_on_a_real_window(qtbot: QtBot) -> None:
    parent = QWidget()
    qtbot.addWidget(parent)
    parent.resize(600, 400)
    parent.show()
    qtbot.waitExposed(parent)
    dialog = QWidget(parent, Qt.WindowType.Dialog)
    dialog.resize(3000, 2000)  # far past any screen
    rect = fit_and_centre(dialog, parent)
    available = parent.screen().availableGeometry()
    assert available.contains(rect) and dialog.size() == rect.size()
    assert rect.width() <= available.width() - 2 * SCREEN_MARGIN


def test_bundled_icons_render_in_both_themes_and_carry_their_licence(
    light_afterwards: None,
) -> None:
    folder = resources_dir() / "icons"
    licence = (folder / "LICENSE").read_text(encoding="utf-8")
    assert "ISC License" in licence and "Lucide" in licence
    names = {*ACTION_ICONS.values(), *CODE_ICONS.values(), *BUTTON_ICONS.values(), "sun", "moon"}
    for name in names:
        assert (folder / f"{name}.svg").is_file(), name
    for choice, t in (("light", LIGHT), ("dark", DARK)):
        ThemeManager(choice)
        for name in names:
            image = theme.icon(name).pixmap(24, 24).toImage()
            colours = {
                image.pixelColor(x, y).name()
                for x in range(24)
                for y in range(24)
                if image.pixelColor(x, y).alpha() == 255
            }
            assert t.text in colours, (choice, name)  # drawn in the theme's text colour


def test_the_view_menu_choice_is_saved_and_restored(
    qtbot: QtBot, make_window: WindowFactory, light_afterwards: None
) -> None:
    window = make_window(load=False)
    view = next(a.menu() for a in window.menuBar().actions() if a.text() == "&View")
    theme_menu = next(a.menu() for a in view.actions() if a.text() == "&Theme")
    dark = next(a for a in theme_menu.actions() if a.text() == "Dark")
    assert isinstance(dark, QAction)
    dark.trigger()
    assert theme.current() is DARK
    assert Settings.load(window.settings_path).theme == "dark"
    assert window.new_chat_action.icon().pixmap(16, 16).toImage().pixelColor(8, 8) is not None
    again = make_window(load=False)
    assert again.theme.choice == "dark" and theme.current() is DARK
    meters = next(a for a in view.actions() if a.text() == "&Meters")
    meters.trigger()
    assert not window.meters.isVisible()
