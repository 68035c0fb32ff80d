"""The main window at 1280x800 in the light and the dark theme: after a real reply from the starter
model the meters show figures inside the window, and with a real proposal on the review page every
hunk's Accept / Reject / Edit lies inside the window. On both pages all visible text is readable:
each text's colour against the background it is drawn on has a WCAG contrast of at least 4.5:1
(AA for body text), checked for labels and buttons from their palettes (which carry style-sheet
colours) and for rich text fragment by fragment (inline colours, cell and block backgrounds).
Disabled controls are exempt, as WCAG allows."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, QRect, Qt
from PySide6.QtGui import QBrush, QColor, QTextCursor, QTextDocument
from PySide6.QtWidgets import QAbstractButton, QApplication, QLabel, QTextEdit, QWidget
from pytestqt.qtbot import QtBot

from app.core.edits import propose
from app.ui.main_window import MainWindow
from app.ui.theme import MIN_TEXT_CONTRAST, ThemeManager, contrast_ratio
from tests.ui_support import WindowFactory, type_and_send, wait_reply_done

ORIGINAL = "".join(f"value_{i} = {i}  # line {i}\n" for i in range(1, 41))
REPLY = (
    "calc.py\n<<<<<<< SEARCH\nvalue_3 = 3  # line 3\n=======\nvalue_3 = 30  # tripled\n"
    ">>>>>>> REPLACE\n\n"
    "calc.py\n<<<<<<< SEARCH\nvalue_30 = 30  # line 30\n=======\ndef thirty() -> int:\n"
    "    return 30\n>>>>>>> REPLACE\n\n"
    "notes.md\n<<<<<<< SEARCH\n=======\n# Notes\n\nA new file.\n>>>>>>> REPLACE\n"
)
CHAT_PROMPT = "Write a Python function that adds two numbers."


@pytest.fixture
def light_afterwards(qapp: QApplication) -> Iterator[None]:
    yield
    ThemeManager("light").deleteLater()


def _over(colour: QColor, background: QColor) -> QColor:
    """A translucent colour as drawn over its background (placeholder text is often 50%)."""
    a = colour.alphaF()
    return QColor.fromRgbF(
        colour.redF() * a + background.redF() * (1 - a),
        colour.greenF() * a + background.greenF() * (1 - a),
        colour.blueF() * a + background.blueF() * (1 - a),
    )


def _document_problems(doc: QTextDocument, text: QColor, base: QColor, where: str) -> list[str]:
    problems = []
    block = doc.begin()
    while block.isValid():
        block_bg = block.blockFormat().background()
        for it in block:  # PySide yields QTextBlock.iterator positions
            fragment = it.fragment()
            if not fragment.isValid() or not fragment.text().strip():
                continue
            fmt = fragment.charFormat()
            background = base
            cursor = QTextCursor(doc)
            cursor.setPosition(fragment.position())
            table = cursor.currentTable()
            if table is not None:
                cell_bg = table.cellAt(cursor).format().background()
                table_bg = table.format().background()
                for brush in (table_bg, cell_bg):
                    if brush.style() != Qt.BrushStyle.NoBrush:
                        background = brush.color()
            for brush in (block_bg, fmt.background()):
                if isinstance(brush, QBrush) and brush.style() != Qt.BrushStyle.NoBrush:
                    background = brush.color()
            brush = fmt.foreground()
            colour = brush.color() if brush.style() != Qt.BrushStyle.NoBrush else text
            ratio = contrast_ratio(_over(colour, background), background)
            if ratio < MIN_TEXT_CONTRAST:
                problems.append(
                    f"{where}: {fragment.text()[:30]!r} {colour.name()} on "
                    f"{background.name()} = {ratio:.2f}"
                )
        block = block.next()
    return problems


def unreadable_text(window: QWidget) -> list[str]:
    """Every visible, enabled text in `window` whose contrast is under the threshold."""
    problems: list[str] = []
    for widget in window.findChildren(QWidget):
        if not widget.isVisible() or not widget.isEnabled() or not widget.isVisibleTo(window):
            continue
        name = f"{type(widget).__name__}({widget.objectName() or ''})"
        palette = widget.palette()
        if isinstance(widget, QTextEdit):
            base = palette.color(widget.viewport().backgroundRole())
            text = palette.color(widget.viewport().foregroundRole())
            problems += _document_problems(widget.document(), text, base, name)
        elif isinstance(widget, QLabel | QAbstractButton) and widget.text().strip():
            background = palette.color(widget.backgroundRole())
            text = palette.color(widget.foregroundRole())
            if isinstance(widget, QLabel) and widget.textFormat() != Qt.TextFormat.PlainText:
                doc = QTextDocument()
                doc.setHtml(widget.text())
                problems += _document_problems(doc, text, background, name)
            else:
                ratio = contrast_ratio(_over(text, background), background)
                if ratio < MIN_TEXT_CONTRAST:
                    problems.append(f"{name}: {widget.text()[:30]!r} = {ratio:.2f}")
    return problems


def _inside(widget: QWidget, window: MainWindow) -> bool:
    top_left = widget.mapTo(window, QPoint(0, 0))
    return window.rect().contains(QRect(top_left, widget.size()))


@pytest.mark.parametrize("choice", ["light", "dark"])
def test_the_window_at_1280x800_keeps_review_buttons_inside_and_text_readable(
    qtbot: QtBot,
    make_window: WindowFactory,
    tmp_path: Path,
    choice: str,
    light_afterwards: None,
) -> None:
    window = make_window()
    window.theme.set_choice(choice)
    window.resize(1280, 800)
    qtbot.waitUntil(lambda: window.size().width() == 1280, timeout=2_000)

    assert not unreadable_text(window), unreadable_text(window)  # the welcome page
    type_and_send(qtbot, window, CHAT_PROMPT)
    live = window.chat_view.messages[-1]
    # Enough of the reply for a code block (the starter writes one), then Stop: the test is
    # about what is drawn, not how long the model goes on.
    qtbot.waitUntil(
        lambda: "def " in live.answer or len(live.answer) > 400 or not window.generating,
        timeout=60_000,
    )
    window.stop()
    wait_reply_done(qtbot, window)
    for card in window.meters.cards:
        assert card.isVisible() and _inside(card, window), type(card).__name__
    assert window.context_meter.usage is not None and window.speed_meter.value.text()
    window.memory_meter.refresh()
    for card in window.meters.cards:  # each caption whole at 1280 px: nothing elided
        caption = card.caption
        assert caption.text() == caption.full_text, (type(card).__name__, caption.text())
    problems = unreadable_text(window)
    assert not problems, problems  # the chat with a reply, its code blocks and the meters

    project = tmp_path / "project"
    project.mkdir()
    (project / "calc.py").write_text(ORIGINAL)
    with qtbot.waitSignal(window.code.panel.scanFinished, timeout=10_000):
        assert window.code.open_folder(project)
    window.code.show_proposal(propose(project, REPLY))
    review = window.code.review
    assert window.code.reviewing and review.file_list.count() == 2
    seen = 0
    for row in range(review.file_list.count()):  # each file's hunks: calc.py 2, notes.md 1
        review.file_list.setCurrentRow(row)
        qtbot.waitUntil(lambda: all(v.isVisible() for v in review.hunk_views), timeout=5_000)
        for view in review.hunk_views:
            review.hunk_area.ensureWidgetVisible(view)
            qtbot.waitUntil(lambda v=view: _inside(v.accept_button, window), timeout=2_000)
            for button in (view.accept_button, view.reject_button, view.edit_button):
                assert button.isVisible() and _inside(button, window), (choice, button.text())
            problems = unreadable_text(window)
            assert not problems, problems  # the review page, this hunk's diff on screen
            seen += 1
    assert seen == 3
