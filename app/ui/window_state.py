"""The window as the user left it: size and place, docks and toolbars, the open code folder with
its ticked files, Propose edits, and the measured memory speed, all back after a restart.

Qt's own saveGeometry/saveState (base64 in the settings file) keep what Qt knows how to restore
across screens and window managers; a geometry that no longer fits any screen (a monitor
unplugged) is Qt's to correct. The folder, its ticks and Propose edits are saved as soon as they
change, so a crash keeps them; geometry and docks are saved when the window closes. A folder
that is gone since is not reopened, and its dock stays hidden.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QByteArray, QObject
from PySide6.QtWidgets import QDockWidget, QToolBar

from app.ui.measured_bandwidth import measured_bandwidth

if TYPE_CHECKING:
    from app.ui.main_window import MainWindow


class WindowState(QObject):
    """A child of the window, so the app-wide bandwidth signal lets go of it with the window."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self._window = window
        self._restoring = False

    def restore(self) -> None:
        """Put the saved state back; call once every dock and toolbar exists."""
        w, settings = self._window, self._window.settings
        _name_dock_areas(w)
        bandwidth = measured_bandwidth()
        bandwidth.seed(settings.memory_bandwidth_bytes_per_s)
        bandwidth.changed.connect(self._on_bandwidth)
        if settings.window_geometry:
            w.restoreGeometry(QByteArray.fromBase64(settings.window_geometry.encode("ascii")))
        if settings.window_state:
            w.restoreState(QByteArray.fromBase64(settings.window_state.encode("ascii")))
        review_dock = getattr(w.code, "review_dock", None)
        if isinstance(review_dock, QDockWidget):
            review_dock.hide()  # there is nothing to review at start
        self._restoring = True
        try:
            folder = Path(settings.code_folder) if settings.code_folder else None
            opened = folder is not None and folder.is_dir()
            if opened and folder is not None:
                opened = w.code.panel.open_folder(folder, keep_ticked=settings.ticked_files)
            if opened:
                w.code.edit_action.setChecked(settings.propose_edits)
            else:
                w.code.folder_dock.hide()
        finally:
            self._restoring = False
        w.code.panel.folderOpened.connect(lambda _path: self.save_code())
        w.code.panel.selectionChanged.connect(lambda _paths: self.save_code())
        w.code.edit_action.toggled.connect(lambda _on: self.save_code())

    def save_code(self) -> None:
        """The folder, its ticked files and Propose edits, saved as they change."""
        if self._restoring:
            return
        w, settings = self._window, self._window.settings
        folder = w.code.folder
        settings.code_folder = str(folder) if folder is not None else None
        settings.ticked_files = list(w.code.panel.selected_files()) if folder is not None else []
        settings.propose_edits = w.code.edit_action.isChecked()
        w.save_settings()

    def save_layout(self) -> None:
        """Geometry, docks and toolbars (the window is closing)."""
        w, settings = self._window, self._window.settings
        _name_dock_areas(w)
        settings.window_geometry = bytes(w.saveGeometry().toBase64().data()).decode("ascii")
        settings.window_state = bytes(w.saveState().toBase64().data()).decode("ascii")
        w.save_settings()

    def _on_bandwidth(self, bytes_per_s: float) -> None:
        self._window.settings.memory_bandwidth_bytes_per_s = bytes_per_s
        self._window.save_settings()


def _name_dock_areas(window: MainWindow) -> None:
    """saveState keys docks and toolbars by objectName (Qt warns of any without one)."""
    for bar in window.findChildren(QToolBar):
        if not bar.objectName():
            bar.setObjectName((bar.windowTitle() or "toolbar").replace(" ", "_") + "_toolbar")
    for dock in window.findChildren(QDockWidget):
        if not dock.objectName():
            dock.setObjectName((dock.windowTitle() or "dock").replace(" ", "_") + "_dock")
