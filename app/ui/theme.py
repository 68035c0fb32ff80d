"""Light and dark themes: one palette, one style sheet and one pygments style per theme.

Why built this way: Qt's own palette follows the desktop only on some platforms and styles, so the
app sets the Fusion style and an explicit QPalette from a small table of colours here; every
widget that draws colour itself (the meters, code blocks, icons) reads `current()` rather than
hard-coding a light colour. "system" follows QStyleHints.colorScheme() and its change signal;
"light" / "dark" are the user's choice from the View menu, saved in the settings.

Code blocks use a pygments style per theme chosen so that every token colour has at least a
4.5:1 contrast (WCAG AA for body text) against the block's background: `xcode` on #f6f8fa and
`github-dark` on #161b22 (checked by tests/test_ui_theme.py for every token of both styles).

Toolbar icons are Lucide SVGs under resources/icons (ISC licence, see the LICENSE file there),
recoloured for the theme by replacing their `currentColor` before rendering.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal

from pygments.formatters import HtmlFormatter
from PySide6.QtCore import QByteArray, QObject, QRectF, Qt, Signal
from PySide6.QtGui import (
    QAction,
    QActionGroup,
    QColor,
    QGuiApplication,
    QIcon,
    QPainter,
    QPalette,
    QPixmap,
)
from PySide6.QtSvg import QSvgRenderer
from PySide6.QtWidgets import QApplication, QMenu, QWidget

from app.core.storage.paths import resources_dir

ThemeChoice = Literal["system", "light", "dark"]
CHOICES: tuple[ThemeChoice, ...] = ("system", "light", "dark")
MIN_TEXT_CONTRAST = 4.5  # WCAG 2.x AA for normal text


@dataclass(frozen=True, slots=True)
class Theme:
    name: Literal["light", "dark"]
    window: str
    base: str  # text areas, lists
    alternate_base: str
    text: str
    muted: str  # secondary text (footers, captions): still >= 4.5:1 on window and base
    button: str
    border: str
    highlight: str
    highlighted_text: str
    link: str
    code_background: str
    pygments_style: str
    ok: str  # meters: within budget
    warn: str  # meters: past 80%
    full: str  # meters: at the budget / window nearly full
    track: str  # a meter's empty part
    # Context parts, in ContextUsage.parts() order: system, files, history, message, template,
    # thinking, answer.
    parts: tuple[str, ...]
    # Text in a status colour (>= 4.5:1 on base and window), and the message bars' backgrounds.
    success_text: str
    warning_text: str
    danger_text: str
    warning_background: str
    danger_background: str
    # Diffs: line backgrounds (the code style's tokens stay >= 4.5:1 on them), numbers, signs.
    diff_added: str
    diff_removed: str
    diff_number: str
    diff_context: str


LIGHT = Theme(
    name="light",
    window="#f6f7f9",
    base="#ffffff",
    alternate_base="#f2f4f7",
    text="#1f2328",
    muted="#59636e",
    button="#ffffff",
    border="#d0d7de",
    highlight="#0969da",
    highlighted_text="#ffffff",
    link="#0969da",
    code_background="#f6f8fa",
    pygments_style="xcode",
    ok="#2da44e",
    warn="#d29922",
    full="#cf222e",
    track="#e4e7eb",
    parts=("#8250df", "#0969da", "#57606a", "#1f883d", "#afb8c1", "#bf8700", "#1b7c83"),
    success_text="#1a7f37",
    warning_text="#8a5c00",
    danger_text="#c21f2b",
    warning_background="#fff8c5",
    danger_background="#ffeef0",
    diff_added="#e6ffec",
    diff_removed="#ffeef0",
    diff_number="#636c76",
    diff_context="#57606a",
)
DARK = Theme(
    name="dark",
    window="#1e2024",
    base="#25282d",
    alternate_base="#2b2f35",
    text="#e6e8eb",
    muted="#a4abb4",
    button="#2f343a",
    border="#444a52",
    highlight="#2f6fd0",
    highlighted_text="#ffffff",
    link="#6cb6ff",
    code_background="#161b22",
    pygments_style="github-dark",
    ok="#3fb950",
    warn="#d29922",
    full="#f85149",
    track="#3a3f46",
    parts=("#a371f7", "#4493f8", "#8b949e", "#3fb950", "#545d68", "#d29922", "#39c5cf"),
    success_text="#3fb950",
    warning_text="#d29922",
    danger_text="#ff7b72",
    warning_background="#3a3016",
    danger_background="#3d1f22",
    diff_added="#12261e",
    diff_removed="#25171c",
    diff_number="#8b949e",
    diff_context="#a4abb4",
)
THEMES = {"light": LIGHT, "dark": DARK}

_current: list[Theme] = [LIGHT]
_fusion_set: list[bool] = []


def current() -> Theme:
    """The theme in force (light until `apply_theme` runs)."""
    return _current[0]


def message_bar_style(kind: Literal["warning", "danger"]) -> str:
    """A QFrame style sheet for a warning or error bar in the current theme."""
    t = current()
    background = t.warning_background if kind == "warning" else t.danger_background
    border = t.warn if kind == "warning" else t.full
    return f"QFrame {{ background: {background}; border: 1px solid {border}; border-radius: 4px; }}"


def system_prefers_dark() -> bool:
    hints = QGuiApplication.styleHints()
    return hints is not None and hints.colorScheme() == Qt.ColorScheme.Dark


def resolve(choice: str, system_scheme: Qt.ColorScheme | None = None) -> Theme:
    """The theme a settings value means; anything unknown follows the system (the scheme the
    platform last announced, else what the style hints say now)."""
    if choice in THEMES:
        return THEMES[choice]
    if system_scheme is not None and system_scheme != Qt.ColorScheme.Unknown:
        return DARK if system_scheme == Qt.ColorScheme.Dark else LIGHT
    return DARK if system_prefers_dark() else LIGHT


def palette_for(theme: Theme) -> QPalette:
    p = QPalette()
    role = QPalette.ColorRole
    for r, colour in (
        (role.Window, theme.window),
        (role.WindowText, theme.text),
        (role.Base, theme.base),
        (role.AlternateBase, theme.alternate_base),
        (role.Text, theme.text),
        (role.Button, theme.button),
        (role.ButtonText, theme.text),
        (role.ToolTipBase, theme.base),
        (role.ToolTipText, theme.text),
        (role.PlaceholderText, theme.muted),
        (role.Highlight, theme.highlight),
        (role.HighlightedText, theme.highlighted_text),
        (role.Link, theme.link),
        (role.Mid, theme.border),
        (role.Midlight, theme.alternate_base),
        (role.BrightText, theme.highlighted_text),
    ):
        p.setColor(r, QColor(colour))
    disabled = QColor(theme.muted)
    for r in (role.WindowText, role.Text, role.ButtonText):
        p.setColor(QPalette.ColorGroup.Disabled, r, disabled)
    return p


def style_sheet(theme: Theme) -> str:
    """Spacing and type the whole app shares; colours come from the palette where Qt allows."""
    return (
        f"QToolTip {{ color: {theme.text}; background: {theme.base}; "
        f"border: 1px solid {theme.border}; padding: 4px; }}\n"
        "QToolBar { spacing: 6px; padding: 2px 6px; }\n"
        "QStatusBar QLabel { padding: 0 4px; }\n"
        f"QSplitter::handle {{ background: {theme.border}; }}\n"
        "QSplitter::handle:horizontal { width: 1px; }\n"
        "QPushButton { padding: 4px 12px; }\n"
    )


class ThemeManager(QObject):
    """Applies a theme choice to the application and re-applies it when the system's colour
    scheme changes while the choice is "system". `changed(Theme)` tells widgets to repaint."""

    changed = Signal(object)

    def __init__(self, choice: str = "system", parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.choice: str = choice if choice in CHOICES else "system"
        self.system_scheme: Qt.ColorScheme | None = None  # as last announced by the platform
        hints = QGuiApplication.styleHints()
        if hints is not None:
            hints.colorSchemeChanged.connect(self._on_system_changed)
        self.apply()

    def set_choice(self, choice: str) -> None:
        self.choice = choice if choice in CHOICES else "system"
        self.apply()

    def apply(self) -> Theme:
        theme = resolve(self.choice, self.system_scheme)
        app = QApplication.instance()
        if isinstance(app, QApplication):
            if not _fusion_set:  # once: setStyle repolishes every widget
                app.setStyle("Fusion")  # the one style that draws the palette on every platform
                _fusion_set.append(True)
            app.setPalette(palette_for(theme))
            app.setStyleSheet(style_sheet(theme))
        _current[0] = theme
        self.changed.emit(theme)
        return theme

    def _on_system_changed(self, scheme: Qt.ColorScheme) -> None:
        self.system_scheme = scheme
        if self.choice == "system":
            self.apply()


def theme_menu(manager: ThemeManager, parent: QWidget, on_chosen: object = None) -> QMenu:
    """View > Theme: System / Light / Dark as radio items; `on_chosen(choice)` saves it."""
    menu = QMenu("&Theme", parent)
    group = QActionGroup(menu)
    labels = {"system": "Follow the system", "light": "Light", "dark": "Dark"}
    for choice in CHOICES:
        action = QAction(labels[choice], menu)
        action.setCheckable(True)
        action.setChecked(choice == manager.choice)
        action.setData(choice)
        group.addAction(action)
        menu.addAction(action)

    def chosen(action: QAction) -> None:
        manager.set_choice(str(action.data()))
        if callable(on_chosen):
            on_chosen(manager.choice)

    group.triggered.connect(chosen)
    return menu


# -- code blocks -------------------------------------------------------------------------------


@functools.cache
def _formatter(style: str) -> HtmlFormatter:  # type: ignore[type-arg]
    return HtmlFormatter(noclasses=True, nowrap=True, style=style)


def code_formatter() -> HtmlFormatter:  # type: ignore[type-arg]
    """The pygments formatter for code blocks in the current theme (inline styles: Qt's rich
    text has no stylesheet cascade for pygments classes)."""
    return _formatter(current().pygments_style)


# -- icons ---------------------------------------------------------------------------------------

ICON_SIZES = (16, 24, 32, 48)


def icon_path(name: str) -> str:
    return str(resources_dir() / "icons" / f"{name}.svg")


@functools.cache
def _icon(name: str, colour: str, disabled: str) -> QIcon:
    with open(icon_path(name), encoding="utf-8") as f:
        svg = f.read()
    icon = QIcon()
    for mode, tint in ((QIcon.Mode.Normal, colour), (QIcon.Mode.Disabled, disabled)):
        renderer = QSvgRenderer(QByteArray(svg.replace("currentColor", tint).encode()))
        for size in ICON_SIZES:
            pixmap = QPixmap(size, size)
            pixmap.fill(Qt.GlobalColor.transparent)
            painter = QPainter(pixmap)
            renderer.render(painter, QRectF(0, 0, size, size))
            painter.end()
            icon.addPixmap(pixmap, mode)
    return icon


def icon(name: str) -> QIcon:
    """A bundled toolbar icon drawn in the current theme's text colour."""
    theme = current()
    return _icon(name, theme.text, theme.muted)


# -- contrast ------------------------------------------------------------------------------------


def relative_luminance(colour: QColor) -> float:
    """WCAG 2.x relative luminance of an sRGB colour."""

    def channel(c: float) -> float:
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    return (
        0.2126 * channel(colour.redF())
        + 0.7152 * channel(colour.greenF())
        + 0.0722 * channel(colour.blueF())
    )


def contrast_ratio(a: QColor | str, b: QColor | str) -> float:
    """WCAG contrast ratio (1 to 21) of two colours."""
    la, lb = (relative_luminance(QColor(c)) for c in (a, b))
    hi, lo = max(la, lb), min(la, lb)
    return (hi + 0.05) / (lo + 0.05)
