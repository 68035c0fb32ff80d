"""The review page in the real main window (offscreen, 1280x800): it takes the chat's place,
keeps every hunk's buttons on screen however wide the diff, mutes rejected hunks, shows a side by
side diff, and reviews from the keyboard. Proposals come from real files through the edit core."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, QRect, Qt
from PySide6.QtGui import QTextCursor, QTextTable
from PySide6.QtWidgets import QWidget
from pytestqt.qtbot import QtBot

from app.core.edits import HunkStatus, propose
from app.ui import theme
from app.ui.hunk_view import HunkView
from app.ui.main_window import MainWindow
from tests.ui_support import WindowFactory

WIDE = "x = '" + "wide " * 120 + "'"  # a 600-character line: the diff is far wider than the window
ORIGINAL = "".join(f"line {i}\n" for i in range(1, 31)) + WIDE + "\n"
REPLY = (
    "notes.py\n<<<<<<< SEARCH\nline 2\n=======\nline two\n>>>>>>> REPLACE\n\n"
    "notes.py\n<<<<<<< SEARCH\nline 20\n=======\nline twenty\n>>>>>>> REPLACE\n\n"
    f"notes.py\n<<<<<<< SEARCH\n{WIDE}\n=======\n{WIDE} + 'more'\n>>>>>>> REPLACE\n\n"
    "other.py\n<<<<<<< SEARCH\n=======\nprint('new file')\n>>>>>>> REPLACE\n"
)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "notes.py").write_text(ORIGINAL)
    return folder


@pytest.fixture
def window(make_window: WindowFactory, qtbot: QtBot, project: Path) -> MainWindow:
    window = make_window(load=False)
    window.resize(1280, 800)
    with qtbot.waitSignal(window.code.panel.scanFinished, timeout=10_000):
        assert window.code.open_folder(project)
    window.code.show_proposal(propose(project, REPLY))
    views = window.code.review.hunk_views
    qtbot.waitUntil(lambda: all(v.isVisible() for v in views), timeout=5_000)
    return window


def _inside(widget: QWidget, window: MainWindow) -> bool:
    top_left = widget.mapTo(window, QPoint(0, 0))
    return window.rect().contains(QRect(top_left, widget.size()))


def test_the_review_replaces_the_chat_and_gives_it_back(qtbot: QtBot, window: MainWindow) -> None:
    code = window.code
    assert code.reviewing and code.review_page.isVisible()
    assert not window.chat_view.isVisible()  # the chat made room: no squeezed columns
    assert code.review_page.width() > 900
    qtbot.mouseClick(code.review_page.back_button, Qt.MouseButton.LeftButton)
    assert not code.reviewing and window.chat_view.isVisible()
    assert code.review.proposal is not None  # going back keeps the proposal
    code.review_action.trigger()  # Code > Review edits returns to it
    assert code.reviewing and code.review_page.isVisible()


def test_every_hunks_buttons_are_on_screen_beside_a_wide_diff(
    qtbot: QtBot, window: MainWindow
) -> None:
    review = window.code.review
    assert len(review.hunk_views) == 3
    for view in review.hunk_views:
        review.hunk_area.ensureWidgetVisible(view)
        qtbot.waitUntil(lambda v=view: _inside(v.accept_button, window), timeout=2_000)
        for button in (view.accept_button, view.reject_button, view.edit_button):
            assert button.isVisible() and _inside(button, window), button.text()
    wide = review.hunk_views[2]
    assert wide.diff.document().idealWidth() > window.width()  # the diff itself is wider
    assert wide.diff.horizontalScrollBar().maximum() > 0  # and scrolls inside its own view


def test_a_rejected_hunk_is_muted_and_struck_through(qtbot: QtBot, window: MainWindow) -> None:
    first = window.code.review.hunk_views[0]
    qtbot.mouseClick(first.accept_button, Qt.MouseButton.LeftButton)
    added = theme.current().diff_added
    assert added in first.highlighter.hunk_html(first.change.hunks[0])
    accepted_html = first.diff.toHtml()
    assert "line-through" not in accepted_html
    qtbot.mouseClick(first.reject_button, Qt.MouseButton.LeftButton)
    rejected_html = first.diff.toHtml()
    assert "line-through" in rejected_html
    assert added.lower() not in rejected_html.lower()  # no green for lines not written
    assert "line two" in first.diff.toPlainText()  # still readable


def _row_texts(view: HunkView) -> list[list[str]]:
    frame = view.diff.document().rootFrame()
    table = next(f for f in frame.childFrames() if isinstance(f, QTextTable))
    rows = []
    for r in range(table.rows()):
        cells = []
        for c in range(table.columns()):
            cursor = table.cellAt(r, c).firstCursorPosition()
            cursor.movePosition(
                QTextCursor.MoveOperation.EndOfBlock, QTextCursor.MoveMode.KeepAnchor
            )
            cells.append(cursor.selectedText().replace("\xa0", " ").strip())
        rows.append(cells)
    return rows


def test_side_by_side_puts_old_and_new_lines_in_one_row(qtbot: QtBot, window: MainWindow) -> None:
    page = window.code.review_page
    first = window.code.review.hunk_views[0]
    assert ["2", "line 2", "", ""] not in _row_texts(first)
    page.side_by_side.setChecked(True)
    assert ["2", "line 2", "2", "line two"] in _row_texts(first)
    # A file shown later (the new file) opens side by side too.
    window.code.review.file_list.setCurrentRow(1)
    assert all(view.side_by_side for view in window.code.review.hunk_views)
    page.side_by_side.setChecked(False)
    assert not any(view.side_by_side for view in window.code.review.hunk_views)


def test_keyboard_review_accept_reject_move_and_apply(
    qtbot: QtBot, window: MainWindow, project: Path
) -> None:
    code = window.code
    page, review = code.review_page, code.review
    window.activateWindow()
    page.setFocus()
    qtbot.waitUntil(page.hasFocus, timeout=2_000)
    assert review.current_hunk == 0 and review.hunk_views[0].current
    qtbot.keyClick(page, Qt.Key.Key_A)  # accept hunk 1, move to hunk 2
    qtbot.keyClick(page, Qt.Key.Key_R)  # reject hunk 2, move to hunk 3
    assert [v.hunk_status for v in review.hunk_views[:2]] == [
        HunkStatus.ACCEPTED,
        HunkStatus.REJECTED,
    ]
    assert review.current_hunk == 2
    qtbot.keyClick(page, Qt.Key.Key_K)
    assert review.current_hunk == 1
    qtbot.keyClick(page, Qt.Key.Key_J)
    qtbot.keyClick(page, Qt.Key.Key_J)  # past the last hunk: on to the next file
    assert review.current_change() is not None and review.current_change().path == "other.py"
    qtbot.keyClick(page, Qt.Key.Key_K)  # and back to the last hunk of the first file
    assert review.current_change().path == "notes.py" and review.current_hunk == 2
    with qtbot.waitSignal(review.applied, timeout=5_000):
        qtbot.keyClick(page, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert (project / "notes.py").read_text() == ORIGINAL.replace("line 2\n", "line two\n", 1)
    assert not (project / "other.py").exists()  # never accepted
    qtbot.keyClick(page, Qt.Key.Key_Left, Qt.KeyboardModifier.AltModifier)
    assert not code.reviewing


def test_review_keys_are_named_in_the_menu_and_tooltips(window: MainWindow) -> None:
    menu_actions = {a.text(): a for a in window.menuBar().actions()}
    code_menu = menu_actions["&Code"].menu()
    listed = {a.text(): a.shortcut().toString() for a in code_menu.actions()}
    assert listed["Accept hunk"] == "A" and listed["Reject hunk"] == "R"
    assert listed["Next hunk"] == "J" and listed["Previous hunk"] == "K"
    assert listed["Apply accepted hunks"] == "Ctrl+Return"
    view = window.code.review.hunk_views[0]
    assert "(A " in view.accept_button.toolTip() and "(R " in view.reject_button.toolTip()
    assert "Ctrl+Enter" in window.code.review.apply_button.toolTip()


def test_a_theme_switch_redraws_the_hunks_in_the_new_colours(
    qtbot: QtBot, window: MainWindow
) -> None:
    review = window.code.review
    review.set_current_hunk(1)
    assert theme.LIGHT.diff_added in review.hunk_views[0].diff.toHtml()
    try:
        window.theme.set_choice("dark")
        html = review.hunk_views[0].diff.toHtml()
        assert theme.DARK.diff_added in html and theme.LIGHT.diff_added not in html
        assert review.current_hunk == 1  # the user stays on the hunk they were on
    finally:
        window.theme.set_choice("light")
    assert theme.LIGHT.diff_added in review.hunk_views[0].diff.toHtml()
