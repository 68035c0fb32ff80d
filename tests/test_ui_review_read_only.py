"""The review pane asks before overwriting a read-only file, and recovers an interrupted apply."""

from __future__ import annotations

import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from app.core.edits import propose
from app.core.edits.journal import ACTIVE
from app.core.edits.manifest import folder_store
from app.ui.review_pane import ReviewPane

REPLY = "locked.py\n<<<<<<< SEARCH\nx = 1\n=======\nx = 2\n>>>>>>> REPLACE\n"


@pytest.fixture
def pane(qtbot: QtBot) -> Iterator[ReviewPane]:
    widget = ReviewPane()
    qtbot.addWidget(widget)
    widget.resize(900, 700)
    widget.show()
    qtbot.waitExposed(widget)
    yield widget


def click(qtbot: QtBot, button: object) -> None:
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)  # type: ignore[arg-type]


def test_apply_asks_before_overwriting_a_read_only_file(
    qtbot: QtBot, pane: ReviewPane, tmp_path: Path, data_dir: Path
) -> None:
    folder = tmp_path / "project"
    folder.mkdir()
    locked = folder / "locked.py"
    locked.write_text("x = 1\n")
    locked.chmod(0o444)
    pane.set_proposal(propose(folder, REPLY))
    qtbot.waitUntil(lambda: all(view.isVisible() for view in pane.hunk_views), timeout=5_000)
    click(qtbot, pane.accept_all_button)
    applied: list[str] = []
    pane.applied.connect(applied.append)
    click(qtbot, pane.apply_button)
    qtbot.waitUntil(pane.bars.read_only_bar.isVisible, timeout=5_000)
    assert "locked.py" in pane.bars.read_only_label.text()
    assert locked.read_text() == "x = 1\n" and not applied  # asked, nothing written
    click(qtbot, pane.bars.cancel_overwrite_button)
    assert not pane.bars.read_only_bar.isVisible() and locked.read_text() == "x = 1\n"
    click(qtbot, pane.apply_button)
    qtbot.waitUntil(pane.bars.read_only_bar.isVisible, timeout=5_000)
    click(qtbot, pane.bars.overwrite_button)
    qtbot.waitUntil(lambda: bool(applied), timeout=5_000)
    assert locked.read_text() == "x = 2\n"
    assert stat.S_IMODE(locked.stat().st_mode) == 0o444
    assert not pane.bars.read_only_bar.isVisible()


KILLED_APPLY = """
import os, signal, sys
from pathlib import Path
from app.core.edits.journal import begin_change_set
from app.core.edits.transaction import WriteStep
folder = Path(sys.argv[1])
step = WriteStep(folder / "a.txt", "a.txt", b"old\\n", b"new\\n", 0o644, 0o644)
begin_change_set(folder, [step], None)  # the journal, as an apply saves it
(folder / "a.txt").write_bytes(b"new\\n")  # the first write ...
os.kill(os.getpid(), signal.SIGKILL)  # ... and the process dies
"""


def test_opening_a_folder_puts_back_an_interrupted_apply(
    qtbot: QtBot, pane: ReviewPane, tmp_path: Path, data_dir: Path
) -> None:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "a.txt").write_text("old\n")
    done = subprocess.run([sys.executable, "-c", KILLED_APPLY, str(folder)], timeout=60,
                          check=False)  # fmt: skip
    assert done.returncode == -signal.SIGKILL
    assert (folder / "a.txt").read_text() == "new\n"
    (record,) = [p for p in folder_store(folder).iterdir() if (p / ACTIVE).exists()]
    pane.set_folder(folder)
    assert (folder / "a.txt").read_text() == "old\n"
    assert "interrupted" in pane.status.text()
    assert not record.exists()
