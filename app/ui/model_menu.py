"""The Models menu: choose (wizard), import a GGUF, a remote engine, network settings, this
machine's hardware.

Kept out of the main window, which only says where the menu goes and what loading a model means.
The menu owns the window's downloads (app.ui.downloads): they outlive the chooser, show in the
window's status bar, and a finished one loads from there through `modelChosen`.

Signals:
    modelChosen(str)  a GGUF path, "starter", or a server's URL#model, picked in the wizard,
                      imported, or set up under Remote engine
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QDialog, QMainWindow, QMenu, QVBoxLayout, QWidget

from app.core.errors import LeanCoderError
from app.core.models.import_gguf import use_in_place
from app.ui.dialog_geometry import fit_and_centre
from app.ui.downloads import DownloadManager, DownloadStatus
from app.ui.gguf_files import choose_gguf_file
from app.ui.hardware_panel import HardwarePanel
from app.ui.model_wizard import ModelWizard
from app.ui.network_settings_dialog import NetworkSettingsDialog
from app.ui.remote_engine_dialog import RemoteEngineDialog


class ModelMenu(QObject):
    modelChosen = Signal(str)
    importFailed = Signal(str)

    def __init__(self, window: QWidget, menu: QMenu, wanted_ctx: int) -> None:
        super().__init__(window)
        self._window = window
        self.wanted_ctx = wanted_ctx
        self.wizard: ModelWizard | None = None
        self.downloads = DownloadManager(self)
        self.download_status = DownloadStatus(self.downloads, window)
        if isinstance(window, QMainWindow):
            window.statusBar().addPermanentWidget(self.download_status)
        self.downloads.loadRequested.connect(self.modelChosen)
        self.choose_action = QAction("Choose a model…", window)
        self.choose_action.setToolTip("Models ranked for this machine; download or import")
        self.import_action = QAction("Import GGUF file…", window)
        self.remote_action = QAction("Remote engine…", window)
        self.remote_action.setToolTip("A team's inference server (llama-server, vLLM, Ollama)")
        self.network_action = QAction("Network settings…", window)
        self.hardware_action = QAction("This machine…", window)
        for action in (self.choose_action, self.import_action, self.remote_action):
            menu.addAction(action)
        menu.addSeparator()
        menu.addAction(self.network_action)
        menu.addAction(self.hardware_action)
        self.choose_action.triggered.connect(self.open_wizard)
        self.import_action.triggered.connect(self._choose_file)
        self.remote_action.triggered.connect(self.open_remote)
        self.network_action.triggered.connect(self._network_settings)
        self.hardware_action.triggered.connect(self._hardware)

    def open_wizard(self) -> ModelWizard:
        if self.wizard is not None and self.wizard.isVisible():
            self.wizard.raise_()
            return self.wizard
        if self.wizard is None:
            self.wizard = ModelWizard(
                self._window, wanted_ctx=self.wanted_ctx, downloads=self.downloads
            )
            self.wizard.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            self.wizard.modelChosen.connect(self.modelChosen)
            self.wizard.destroyed.connect(self._forget_wizard)
            fit_and_centre(self.wizard, self._window)  # 980x680 asked; fits a smaller screen
        self.wizard.open()
        return self.wizard

    def _forget_wizard(self) -> None:
        self.wizard = None

    def import_file(self, path: Path) -> None:
        """Validate the header, remember the file where it is, and load it."""
        try:
            self.modelChosen.emit(str(use_in_place(path)))
        except LeanCoderError as exc:
            self.importFailed.emit(str(exc))

    def _choose_file(self) -> None:
        path = choose_gguf_file(self._window)
        if path is not None:
            self.import_file(path)

    def open_remote(self) -> RemoteEngineDialog:
        dialog = RemoteEngineDialog(parent=self._window)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.remoteChosen.connect(self.modelChosen)
        fit_and_centre(dialog, self._window)
        dialog.open()
        return dialog

    def _network_settings(self) -> None:
        dialog = NetworkSettingsDialog(parent=self._window)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()

    def _hardware(self) -> None:
        dialog = QDialog(self._window)
        dialog.setWindowTitle("This machine")
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        panel = HardwarePanel(dialog)
        QVBoxLayout(dialog).addWidget(panel)
        panel.refresh()
        dialog.resize(560, 320)
        dialog.open()
