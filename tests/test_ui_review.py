"""The review pane offscreen: propose, accept one hunk, reject another, apply, undo, conflicts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from app.core.edits import HunkStatus, list_change_sets, propose
from app.ui.review_pane import ReviewPane

ORIGINAL = b"".join(b"line %d\r\n" % i for i in range(1, 21))  # CRLF, to check endings survive
REPLY = (
    "notes.txt\n<<<<<<< SEARCH\nline 2\n=======\nline two\n>>>>>>> REPLACE\n\n"
    "notes.txt\n<<<<<<< SEARCH\nline 18\n=======\nline eighteen\n>>>>>>> REPLACE\n\n"
    "missing.txt\n<<<<<<< SEARCH\nnothing\n=======\nsomething\n>>>>>>> REPLACE\n"
)


@pytest.fixture
def project(tmp_path: Path, data_dir: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "notes.txt").write_bytes(ORIGINAL)
    (folder / "main.py").write_bytes(b"def main():\n    return 1\n")
    return folder


@pytest.fixture
def pane(qtbot: QtBot) -> Iterator[ReviewPane]:
    widget = ReviewPane()
    qtbot.addWidget(widget)
    widget.resize(900, 700)
    widget.show()
    qtbot.waitExposed(widget)
    yield widget


def show(qtbot: QtBot, pane: ReviewPane, reply: str, folder: Path) -> None:
    """Propose `reply` in the pane and wait until its hunks are on screen."""
    pane.set_proposal(propose(folder, reply))
    qtbot.waitUntil(lambda: all(view.isVisible() for view in pane.hunk_views), timeout=5_000)


def click(qtbot: QtBot, button: object) -> None:
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)  # type: ignore[arg-type]


def test_accept_one_hunk_reject_another_apply_and_undo(
    qtbot: QtBot, pane: ReviewPane, project: Path
) -> None:
    show(qtbot, pane, REPLY, project)
    assert pane.file_list.count() == 1
    assert "1 refused" in pane.summary.text()
    assert "missing.txt" in pane.blocks_view.toPlainText()
    assert len(pane.hunk_views) == 2
    first, second = pane.hunk_views
    # The diff is highlighted HTML with the removed and added lines.
    assert "line two" in first.diff.toPlainText() and "line 2" in first.diff.toPlainText()
    assert not pane.apply_button.isEnabled()  # nothing accepted yet

    click(qtbot, first.accept_button)
    click(qtbot, second.reject_button)
    assert first.hunk_status is HunkStatus.ACCEPTED
    assert second.hunk_status is HunkStatus.REJECTED
    assert pane.apply_button.isEnabled()

    with qtbot.waitSignal(pane.applied, timeout=5_000) as applied:
        click(qtbot, pane.apply_button)
    change_set = applied.args[0]
    assert [c.id for c in list_change_sets(project)] == [change_set]
    expected = ORIGINAL.replace(b"line 2\r\n", b"line two\r\n")
    assert (project / "notes.txt").read_bytes() == expected
    assert not pane.apply_button.isEnabled()  # the proposal is spent
    assert not first.accept_button.isEnabled()

    assert pane.undo_button.isEnabled()
    with qtbot.waitSignal(pane.undone, timeout=5_000):
        click(qtbot, pane.undo_button)
    assert (project / "notes.txt").read_bytes() == ORIGINAL
    assert not pane.undo_button.isEnabled()


def test_edit_a_hunk_before_accepting(qtbot: QtBot, pane: ReviewPane, project: Path) -> None:
    show(qtbot, pane, REPLY, project)
    first, second = pane.hunk_views
    click(qtbot, second.edit_button)
    assert second.editor.isVisible()
    assert second.editor.toPlainText() == "line eighteen"
    second.editor.setPlainText("line XVIII\nline 18.5")
    click(qtbot, second.save_button)
    assert not second.editor.isVisible()
    assert "edited" in second.title.text()
    click(qtbot, second.accept_button)
    click(qtbot, first.reject_button)
    with qtbot.waitSignal(pane.applied, timeout=5_000):
        click(qtbot, pane.apply_button)
    expected = ORIGINAL.replace(b"line 18\r\n", b"line XVIII\r\nline 18.5\r\n")
    assert (project / "notes.txt").read_bytes() == expected


def test_conflict_is_shown_and_nothing_written(
    qtbot: QtBot, pane: ReviewPane, project: Path
) -> None:
    show(qtbot, pane, REPLY, project)
    click(qtbot, pane.accept_all_button)
    changed = ORIGINAL + b"added by the user\r\n"
    (project / "notes.txt").write_bytes(changed)
    with qtbot.waitSignal(pane.conflict, timeout=5_000) as conflict:
        click(qtbot, pane.apply_button)
    assert conflict.args[0] == ["notes.txt"]
    assert pane.bars.conflict_bar.isVisible()
    assert "notes.txt" in pane.bars.conflict_label.text()
    assert "added by the user" in pane.bars.conflict_view.toPlainText()
    assert (project / "notes.txt").read_bytes() == changed
    assert list_change_sets(project) == []
    assert pane.apply_button.isEnabled()  # the user may retry after resolving


def test_big_deletion_asks_first(qtbot: QtBot, pane: ReviewPane, project: Path) -> None:
    show(qtbot, pane, "DELETE FILE main.py\n", project)
    click(qtbot, pane.accept_all_button)
    click(qtbot, pane.apply_button)
    assert pane.bars.confirm_bar.isVisible()
    assert "main.py" in pane.bars.confirm_label.text()
    assert (project / "main.py").exists()
    with qtbot.waitSignal(pane.applied, timeout=5_000):
        click(qtbot, pane.bars.confirm_button)
    assert not (project / "main.py").exists()
    with qtbot.waitSignal(pane.undone, timeout=5_000):
        click(qtbot, pane.undo_button)
    assert (project / "main.py").read_bytes() == b"def main():\n    return 1\n"


def test_undo_conflict_is_reported(qtbot: QtBot, pane: ReviewPane, project: Path) -> None:
    show(qtbot, pane, REPLY, project)
    click(qtbot, pane.accept_all_button)
    with qtbot.waitSignal(pane.applied, timeout=5_000):
        click(qtbot, pane.apply_button)
    (project / "notes.txt").write_bytes(b"rewritten by the user\n")
    with qtbot.waitSignal(pane.conflict, timeout=5_000):
        click(qtbot, pane.undo_button)
    assert "nothing was undone" in pane.bars.conflict_label.text()
    assert (project / "notes.txt").read_bytes() == b"rewritten by the user\n"


def test_reject_all_then_nothing_to_apply(qtbot: QtBot, pane: ReviewPane, project: Path) -> None:
    show(qtbot, pane, REPLY, project)
    click(qtbot, pane.accept_all_button)
    assert pane.apply_button.isEnabled()
    click(qtbot, pane.reject_all_button)
    assert not pane.apply_button.isEnabled()
    assert all(v.hunk_status is HunkStatus.REJECTED for v in pane.hunk_views)
    pane.set_proposal(None)
    assert pane.file_list.count() == 0 and not pane.hunk_views
