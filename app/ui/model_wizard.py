"""Choose a model: this machine, the catalog ranked for it, models already on disk, download or
import. Shown on first run (no model chosen yet) and from Models > Choose a model….

Downloads belong to the DownloadManager it is given (the main window's, through the Models menu):
closing the chooser leaves a download running, and a chooser opened meanwhile shows it. A chooser
made without one has its own, which ends with it. Looking for models on disk is a job on the app's
I/O pool (app.ui.tasks).

Signals:
    modelChosen(str)  a GGUF path, or "starter"; the dialog then closes
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTabWidget,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.core.errors import LeanCoderError
from app.core.fit.recommend import Recommendation, recommend
from app.core.machine.budget import machine_budget
from app.core.machine.info import HardwareInfo
from app.core.models.catalog import CatalogEntry
from app.core.models.import_gguf import FoundModel, discover_models, use_in_place
from app.core.models.starter import STARTER_KEY
from app.core.units import human_bytes
from app.ui.downloads import DownloadManager
from app.ui.gguf_files import choose_gguf_file, dropped_gguf
from app.ui.hardware_panel import HardwarePanel
from app.ui.network_settings_dialog import NetworkSettingsDialog
from app.ui.tasks import app_task_pool

BADGE_TEXT = {"great": "Runs great", "good": "Runs well", "slow": "Slow", "no": "Does not fit"}
BADGE_COLOR = {"great": "#2e7d32", "good": "#558b2f", "slow": "#ef6c00", "no": "#9e9e9e"}
ENTRY_ROLE = Qt.ItemDataRole.UserRole
log = logging.getLogger(__name__)


def _problem_label(model: FoundModel) -> str:
    """The Status column for a file that cannot be used; the whole reason is its tooltip."""
    reason = model.problem or ""
    kind = "Unreadable" if model.architecture is None else "Not usable"
    short = reason if len(reason) <= 90 else reason[:89] + "…"
    return f"{kind}: {short}"


class ModelWizard(QDialog):
    modelChosen = Signal(str)

    def __init__(
        self,
        parent: QWidget | None = None,
        wanted_ctx: int = 16384,
        downloads: DownloadManager | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Choose a model")
        self.resize(980, 680)
        self.setAcceptDrops(True)
        self.hardware: HardwareInfo | None = None
        self.recommendations: list[Recommendation] = []
        self.found: list[FoundModel] = []
        self.downloads = downloads or DownloadManager(self)
        self._build(wanted_ctx)
        self._connect()
        self._show_download()  # one started before this chooser opened
        self.hardware_panel.refresh()
        self._discover()

    # -- construction --------------------------------------------------------------------------

    def _build(self, wanted_ctx: int) -> None:
        self.hardware_panel = HardwarePanel(self)
        intro = QLabel(
            "LeanCoder ranks Mixture-of-Experts models for this machine: where each one would run "
            "(GPU, hybrid with experts in RAM, or CPU), the context that fits, and the speed to "
            "expect. Nothing is downloaded until you press Download."
        )
        intro.setWordWrap(True)
        self.ctx_box = QSpinBox(self)
        self.ctx_box.setRange(2048, 262144)
        self.ctx_box.setSingleStep(2048)
        self.ctx_box.setValue(wanted_ctx)
        self.ctx_box.setSuffix(" tokens")
        self.ctx_box.setToolTip("The context you want; a plan shrinks it only if it must")

        self.ranked = QTreeWidget(self)
        self.ranked.setHeaderLabels(["Model", "Quant", "Download", "Fit", "Speed", "Why"])
        self.ranked.setRootIsDecorated(False)
        self.ranked.setWordWrap(True)
        header = self.ranked.header()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(5, QHeaderView.ResizeMode.Stretch)
        self.on_disk = QTreeWidget(self)
        self.on_disk.setHeaderLabels(["Model", "Size", "Where", "Status", "File"])
        self.on_disk.setRootIsDecorated(False)
        self.on_disk.header().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.tabs = QTabWidget(self)
        self.tabs.addTab(self.ranked, "Recommended")
        self.tabs.addTab(self.on_disk, "On this computer")

        self.download_button = QPushButton("Download and use", self)
        self.use_button = QPushButton("Use this file", self)
        self.import_button = QPushButton("Import GGUF file…", self)
        self.import_button.setToolTip("Or drop a .gguf file on this window; works offline")
        self.starter_button = QPushButton("Use the starter model", self)
        self.network_button = QPushButton("Network settings…", self)
        self.cancel_download_button = QPushButton("Cancel download", self)
        self.cancel_download_button.hide()
        self.progress = QProgressBar(self)
        self.progress.hide()
        self.status = QLabel("", self)
        self.status.setWordWrap(True)

        ctx_row = QHBoxLayout()
        ctx_row.addWidget(QLabel("Context:"))
        ctx_row.addWidget(self.ctx_box)
        ctx_row.addStretch(1)
        ctx_row.addWidget(self.network_button)
        buttons = QHBoxLayout()
        buttons.addWidget(self.download_button)
        buttons.addWidget(self.use_button)
        buttons.addWidget(self.import_button)
        buttons.addStretch(1)
        buttons.addWidget(self.starter_button)
        progress_row = QHBoxLayout()
        progress_row.addWidget(self.progress, 1)
        progress_row.addWidget(self.cancel_download_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.hardware_panel)
        layout.addWidget(intro)
        layout.addLayout(ctx_row)
        layout.addWidget(self.tabs, 1)
        layout.addLayout(progress_row)
        layout.addWidget(self.status)
        layout.addLayout(buttons)
        self._update_buttons()

    def _connect(self) -> None:
        self.hardware_panel.detected.connect(self._on_hardware)
        self.ctx_box.editingFinished.connect(self._rank)
        self.ranked.itemSelectionChanged.connect(self._update_buttons)
        self.on_disk.itemSelectionChanged.connect(self._update_buttons)
        self.tabs.currentChanged.connect(self._update_buttons)
        self.download_button.clicked.connect(self.start_download)
        self.use_button.clicked.connect(self._use_found)
        self.import_button.clicked.connect(self._choose_file)
        self.starter_button.clicked.connect(lambda: self._choose(STARTER_KEY))
        self.network_button.clicked.connect(self._network_settings)
        # Methods of this dialog only: Qt drops these connections when it is deleted, while the
        # manager lives on.
        self.cancel_download_button.clicked.connect(self.downloads.cancel)
        self.downloads.changed.connect(self._show_download)
        self.downloads.finished.connect(self._on_downloaded)

    # -- recommendations -----------------------------------------------------------------------

    def _on_hardware(self, info: HardwareInfo) -> None:
        self.hardware = info
        self._rank()

    def _rank(self) -> None:
        if self.hardware is None:
            return
        machine = machine_budget(self.hardware)
        self.recommendations = recommend(machine, n_ctx=self.ctx_box.value())
        self.ranked.clear()
        for rec in self.recommendations:
            entry, plan = rec.entry, rec.plan
            speed = f"~{plan.tokens_per_s:.0f} tok/s" if plan.fits else ""
            item = QTreeWidgetItem(
                [
                    entry.name,
                    entry.quant.quant,
                    human_bytes(entry.size_bytes),
                    BADGE_TEXT[rec.badge],
                    speed,
                    rec.reason,
                ]
            )
            item.setForeground(3, QBrush(QColor(BADGE_COLOR[rec.badge])))
            item.setToolTip(5, "\n".join([rec.reason, *plan.notes]))
            item.setData(0, ENTRY_ROLE, entry.key)
            self.ranked.addTopLevelItem(item)
        first = self.ranked.topLevelItem(0)
        if first is not None and self.recommendations[0].plan.fits:
            self.ranked.setCurrentItem(first)
        self._update_buttons()

    def select_entry(self, key: str) -> bool:
        for index in range(self.ranked.topLevelItemCount()):
            item = self.ranked.topLevelItem(index)
            if item is not None and item.data(0, ENTRY_ROLE) == key:
                self.ranked.setCurrentItem(item)
                return True
        return False

    def selected_entry(self) -> CatalogEntry | None:
        item = self.ranked.currentItem()
        if item is None:
            return None
        key = item.data(0, ENTRY_ROLE)
        return next((r.entry for r in self.recommendations if r.entry.key == key), None)

    # -- models on disk ------------------------------------------------------------------------

    def _discover(self) -> None:
        # discover_models lists an unreadable file with its reason rather than raising; a bug in
        # the scan itself is logged and reported by the pool, and the chooser says so too.
        app_task_pool().submit(
            "look for models on disk",
            lambda _cancel: discover_models(),
            on_done=self._show_found,
            on_error=self._discovery_failed,
            owner=self,
        )

    def _discovery_failed(self, error: BaseException) -> None:
        self._show_found(f"Could not look for models on this computer: {error}")

    def _show_found(self, found: list[FoundModel] | str) -> None:
        if isinstance(found, str):
            self.status.setText(found)
            found = []
        self.found = found
        self.on_disk.clear()
        for model in found:
            where = {"hf-cache": "Hugging Face cache", "lm-studio": "LM Studio"}.get(
                model.source, "LeanCoder"
            )
            label = model.name or model.path.name
            state = "Ready" if model.usable else _problem_label(model)
            item = QTreeWidgetItem(
                [label, human_bytes(model.size_bytes), where, state, str(model.path)]
            )
            item.setData(0, ENTRY_ROLE, str(model.path))
            if not model.usable:
                item.setDisabled(True)
                for column in range(item.columnCount()):
                    item.setToolTip(column, model.problem or "")
            self.on_disk.addTopLevelItem(item)
        usable = sum(1 for m in found if m.usable)
        self.tabs.setTabText(1, f"On this computer ({usable})")

    def _use_found(self) -> None:
        item = self.on_disk.currentItem()
        if item is not None and not item.isDisabled():
            self._choose(str(item.data(0, ENTRY_ROLE)))

    # -- download ------------------------------------------------------------------------------

    def start_download(self) -> None:
        entry = self.selected_entry()
        if entry is None:
            return
        try:
            self.downloads.start(entry.key, entry.label)
        except LeanCoderError as exc:
            self.status.setText(str(exc))

    def _show_download(self) -> None:
        """Show the manager's download as it is now: running, ended, or none."""
        downloads = self.downloads
        running = downloads.running
        self.progress.setVisible(running)
        self.cancel_download_button.setVisible(running)
        if running:
            if downloads.total_bytes > 0 and downloads.checking_bytes is None:
                self.progress.setRange(0, 1000)
                self.progress.setValue(downloads.done_bytes * 1000 // downloads.total_bytes)
            else:
                self.progress.setRange(0, 0)
        if downloads.state != "idle":
            self.status.setText(downloads.status_text())
        self._update_buttons()

    def _on_downloaded(self, path: str) -> None:
        if self.isVisible():  # the chooser is where the user waits: the model is theirs now
            self.downloads.dismiss()
            self._choose(path)

    # -- import --------------------------------------------------------------------------------

    def _choose_file(self) -> None:
        path = choose_gguf_file(self)
        if path is not None:
            self.import_file(path)

    def import_file(self, path: Path) -> None:
        """Validate the header and remember the file where it is (no copy: it may be large)."""
        try:
            self._choose(str(use_in_place(path)))
        except LeanCoderError as exc:
            self.status.setText(str(exc))

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if dropped_gguf(event.mimeData()) is not None:
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        path = dropped_gguf(event.mimeData())
        if path is not None:
            event.acceptProposedAction()
            self.import_file(path)

    # -- the rest ------------------------------------------------------------------------------

    def _network_settings(self) -> None:
        dialog = NetworkSettingsDialog(parent=self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()

    def _update_buttons(self) -> None:
        downloading = self.downloads.running
        entry = self.selected_entry()
        self.download_button.setEnabled(
            not downloading and entry is not None and self.tabs.currentIndex() == 0
        )
        item = self.on_disk.currentItem()
        self.use_button.setEnabled(
            item is not None and not item.isDisabled() and self.tabs.currentIndex() == 1
        )

    def _choose(self, spec: str) -> None:
        self.modelChosen.emit(spec)
        self.accept()

    def done(self, result: int) -> None:
        if self.downloads.parent() is self:  # its own manager ends with it; the partial stays
            self.downloads.cancel()
            self.downloads.wait(5.0)
        super().done(result)
