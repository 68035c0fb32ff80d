"""The Models menu in the main window: import (file or drop) loads with the fitted plan, bad files
say why, the chooser opens from the menu."""

from __future__ import annotations

import shutil
from pathlib import Path

from PySide6.QtCore import QMimeData, QPoint, Qt, QUrl
from PySide6.QtGui import QDropEvent
from pytestqt.qtbot import QtBot

from tests.tiny_moe import write_tiny_moe
from tests.ui_support import LOAD_TIMEOUT_MS, WindowFactory


def _drop(window_widget: object, path: Path) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    event = QDropEvent(
        QPoint(10, 10),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    window_widget.dropEvent(event)  # type: ignore[attr-defined]


def test_dropping_a_moe_gguf_loads_it_with_a_plan(
    make_window: WindowFactory, qtbot: QtBot, tmp_path: Path, starter_path: Path
) -> None:
    window = make_window(load=False)
    moe = write_tiny_moe(tmp_path / "dropped-moe.gguf", starter_path)
    with qtbot.waitSignal(window.bridge.modelLoaded, timeout=LOAD_TIMEOUT_MS) as loaded:
        _drop(window, moe)
    info = loaded.args[0]
    assert info.architecture == "qwen3moe"
    # the fit plan ran: its one-line reason is among the load notes
    assert any("Runs on the CPU" in note for note in info.notes)
    qtbot.waitUntil(lambda: str(moe) in window.settings.recent_models, timeout=5_000)


def test_importing_a_broken_file_shows_a_clear_message(
    make_window: WindowFactory, qtbot: QtBot, tmp_path: Path, starter_path: Path
) -> None:
    window = make_window()
    broken = tmp_path / "half.gguf"
    with starter_path.open("rb") as src, broken.open("wb") as dst:
        shutil.copyfileobj(src, dst, 1024 * 1024)
        dst.truncate(1024 * 1024)
    window.model_menu.import_file(broken)
    box = window.error_box
    assert box is not None and "truncated" in box.text().lower()
    assert window.model_info is not None  # the loaded model is untouched


def test_the_chooser_opens_from_the_menu(make_window: WindowFactory, qtbot: QtBot) -> None:
    window = make_window(load=False)
    window.model_menu.choose_action.trigger()
    wizard = window.model_menu.wizard
    assert wizard is not None and wizard.isVisible()
    qtbot.waitUntil(lambda: wizard.ranked.topLevelItemCount() > 0, timeout=20_000)
    with qtbot.waitSignal(window.bridge.modelLoaded, timeout=LOAD_TIMEOUT_MS):
        wizard.starter_button.click()
    qtbot.waitUntil(lambda: window.model_menu.wizard is None, timeout=5_000)
