"""The window after a restart (issue #12 item 10): size, docks, the code folder with its ticked
files, Propose edits and the measured memory speed come back; and settings files from before the
context control move from the old 4,096 default to the new one (item 13).

Each restart is a real one as far as the app goes: the first window closes (saving), its store
closes, and a second window is created from the same data folder's settings file.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from app.core.storage import paths
from app.core.storage.settings import DEFAULT_CONTEXT, OLD_DEFAULT_CONTEXT, Settings
from app.ui.hardware_panel import HardwarePanel
from app.ui.measured_bandwidth import measured_bandwidth
from tests.ui_support import WindowFactory


def make_project(root: Path) -> Path:
    root.mkdir()
    (root / "main.py").write_text("def main():\n    return 1\n")
    (root / "util.py").write_text("def helper():\n    return 2\n")
    (root / "README.md").write_text("# project\n")
    return root


def test_size_docks_folder_ticks_and_propose_edits_come_back(
    qtbot: QtBot, make_window: WindowFactory, tmp_path: Path
) -> None:
    project = make_project(tmp_path / "project")
    first = make_window(load=False)
    first.resize(790, 560)  # within the offscreen screen (800x600): Qt keeps windows on it
    assert first.code.open_folder(project)
    panel = first.code.panel
    qtbot.waitUntil(lambda: not panel.is_scanning() and len(panel.files()) == 3, timeout=10_000)
    panel.set_selected(["util.py"])
    first.code.edit_action.setChecked(True)
    assert first.code.folder_dock.isVisible()
    first.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, first.code.folder_dock)  # moved
    saved = json.loads(paths.settings_path().read_text())  # saved as they changed
    assert saved["code_folder"] == str(project.resolve())
    assert saved["ticked_files"] == ["util.py"] and saved["propose_edits"] is True
    assert first.height() == 560
    first.close()
    first.store.close()

    second = make_window(load=False)
    assert second is not first
    # The height the user left (the default is 760); the offscreen screen is 800 px wide, narrower
    # than this window, so Qt fits the restored width to it (a real screen keeps it).
    assert second.height() == 560
    assert second.dockWidgetArea(second.code.folder_dock) == Qt.DockWidgetArea.RightDockWidgetArea
    assert second.code.folder == project.resolve()
    panel = second.code.panel
    qtbot.waitUntil(lambda: not panel.is_scanning() and len(panel.files()) == 3, timeout=10_000)
    assert panel.selected_files() == ["util.py"]
    assert second.code.edit_action.isEnabled() and second.code.edit_action.isChecked()
    assert second.code.folder_dock.isVisible()
    choice = second.code.folder_choice()
    assert choice is not None and choice.selected == ("util.py",)


def test_a_folder_gone_since_is_not_reopened(
    qtbot: QtBot, make_window: WindowFactory, tmp_path: Path
) -> None:
    project = make_project(tmp_path / "gone")
    first = make_window(load=False)
    assert first.code.open_folder(project)
    qtbot.waitUntil(lambda: not first.code.panel.is_scanning(), timeout=10_000)
    first.code.edit_action.setChecked(True)
    first.close()
    first.store.close()
    for child in project.iterdir():
        child.unlink()
    project.rmdir()

    second = make_window(load=False)
    assert second.code.folder is None
    assert not second.code.folder_dock.isVisible()
    assert not second.code.edit_action.isChecked() and not second.code.edit_action.isEnabled()


def test_the_measured_memory_speed_comes_back(qtbot: QtBot, make_window: WindowFactory) -> None:
    first = make_window(load=False)
    measured_panel = HardwarePanel(first)
    with qtbot.waitSignal(measured_panel.detected, timeout=30_000):
        measured_panel.refresh(measure_bandwidth=True)  # the real half-second benchmark
    assert measured_panel.info is not None
    measured = measured_panel.info.memory_bandwidth_bytes_per_s
    assert measured is not None and measured > 1e8
    assert json.loads(paths.settings_path().read_text())["memory_bandwidth_bytes_per_s"] == measured
    first.close()
    first.store.close()
    measured_bandwidth().seed(None)  # what a new process starts with

    second = make_window(load=False)
    assert second.settings.memory_bandwidth_bytes_per_s == measured
    panel = HardwarePanel(second)
    with qtbot.waitSignal(panel.detected, timeout=30_000):
        panel.refresh()  # detection without the benchmark
    assert panel.info is not None
    assert panel.info.memory_bandwidth_bytes_per_s == measured
    rows = dict(panel.row_texts())
    assert rows["Bandwidth"] == f"{measured / 1e9:.1f} GB/s (estimate)"


@pytest.mark.parametrize(
    ("saved", "n_ctx"),
    [
        ({"n_ctx": OLD_DEFAULT_CONTEXT}, DEFAULT_CONTEXT),  # the old default, never chosen
        ({"n_ctx": OLD_DEFAULT_CONTEXT, "n_ctx_chosen": True}, OLD_DEFAULT_CONTEXT),
        ({"n_ctx": 8192}, 8192),
        ({}, DEFAULT_CONTEXT),
        ({"n_ctx": "4096"}, DEFAULT_CONTEXT),  # a hand-edited string is not a number
    ],
)
def test_the_old_default_context_moves_to_the_new_one(
    tmp_path: Path, saved: dict[str, object], n_ctx: int
) -> None:
    path = tmp_path / "settings.json"
    path.write_text(json.dumps(saved))
    assert Settings.load(path).n_ctx == n_ctx


def test_restored_state_takes_only_well_typed_values(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text(
        json.dumps(
            {
                "ticked_files": ["a.py", 3, None, "b/c.py"],
                "code_folder": 12,
                "window_geometry": ["not", "base64"],
                "memory_bandwidth_bytes_per_s": "fast",
                "propose_edits": "yes",
            }
        )
    )
    settings = Settings.load(path)
    assert settings.ticked_files == ["a.py", "b/c.py"]
    assert settings.code_folder is None and settings.window_geometry == ""
    assert settings.memory_bandwidth_bytes_per_s is None and settings.propose_edits is False


def test_an_absurd_saved_memory_speed_is_ignored() -> None:
    remembered = measured_bandwidth()
    remembered.seed(float("inf"))
    assert remembered.bytes_per_s is None
    remembered.seed(-5.0)
    assert remembered.bytes_per_s is None
    remembered.seed(25e9)
    assert remembered.bytes_per_s == 25e9
    remembered.seed(None)
