"""The app's downloads: owned by the main window (through its Models menu), not by the chooser.

Closing the model chooser leaves a download running; its progress shows in the main window's
status bar (`DownloadStatus`: percent, speed, time left, Cancel), and when it is done and verified
the model can be loaded from there. Reopening the chooser shows the running download. One
download runs at a time (a second one would only halve the speed of the first).

DownloadManager signals:
    changed()           the state, the label or the progress changed (views redraw from it)
    progress(object, object, float, float), checking(object, object), finished(str),
    failed(str), cancelled()     the bridge's (app.ui.download_bridge), passed on
    loadRequested(str)  the user asked to load the downloaded model (its path)
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QWidget

from app.core.models.download import DownloadResult, DownloadTarget
from app.core.models.network import NetworkSettings
from app.core.units import human_bytes
from app.ui.download_bridge import DownloadBridge
from app.ui.tasks import TaskPool

State = Literal["idle", "running", "done", "failed", "cancelled"]
PROGRESS_STEPS = 1000


def duration_text(seconds: float) -> str:
    if seconds < 0:
        return "time left unknown"
    if seconds < 90:
        return f"{seconds:.0f} s left"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min left"
    return f"{seconds / 3600:.1f} h left"


def progress_text(done: int, total: int, speed: float, eta: float) -> str:
    """'42% · 41.3 MB of 98.4 MB · 3.1 MB/s · 20 s left' (no percent when the size is unknown)."""
    if total > 0:
        amount = f"{done * 100 // total}% · {human_bytes(done)} of {human_bytes(total)}"
    else:
        amount = human_bytes(done)
    return f"{amount} · {human_bytes(int(speed))}/s · {duration_text(eta)}"


class DownloadManager(QObject):
    changed = Signal()
    progress = Signal(object, object, float, float)
    checking = Signal(object, object)
    finished = Signal(str)
    failed = Signal(str)
    cancelled = Signal()
    loadRequested = Signal(str)

    def __init__(self, parent: QObject | None = None, pool: TaskPool | None = None) -> None:
        super().__init__(parent)
        self.bridge = DownloadBridge(self, pool)
        self.state: State = "idle"
        self.label = ""  # what is (or was last) downloading, as the user knows it
        self.message = ""  # the last outcome, a sentence
        self.done_bytes = 0
        self.total_bytes = 0  # 0: not known yet
        self.speed = 0.0
        self.eta = -1.0
        self.checking_bytes: tuple[int, int] | None = None  # hashing an earlier partial file
        self.path: str | None = None  # the verified file, once done
        self.bridge.progress.connect(self._on_progress)
        self.bridge.checking.connect(self._on_checking)
        self.bridge.finished.connect(self._on_finished)
        self.bridge.failed.connect(self._on_failed)
        self.bridge.cancelled.connect(self._on_cancelled)

    @property
    def running(self) -> bool:
        return self.state == "running"

    @property
    def result(self) -> DownloadResult | None:
        return self.bridge.result

    def start(
        self,
        target: DownloadTarget | str,
        label: str,
        *,
        network: NetworkSettings | None = None,
        dest_dir: Path | None = None,
        cache_dir: Path | None = None,
    ) -> None:
        """Start a download (LeanCoderError while one is running)."""
        self.bridge.start(target, network=network, dest_dir=dest_dir, cache_dir=cache_dir)
        self.state, self.label, self.message, self.path = "running", label, "", None
        self.done_bytes, self.total_bytes, self.speed, self.eta = 0, 0, 0.0, -1.0
        self.checking_bytes = None
        self.changed.emit()

    def cancel(self) -> None:
        """Stop the download at its next read; the partial file stays and the next start of the
        same download resumes it. The outcome arrives as `cancelled`."""
        self.bridge.cancel()

    def wait(self, timeout_s: float | None = None) -> bool:
        return self.bridge.wait(timeout_s)

    def load(self) -> None:
        """Ask for the downloaded model to be loaded (the status bar's Load button)."""
        if self.state == "done" and self.path is not None:
            path = self.path
            self.dismiss()
            self.loadRequested.emit(path)

    def dismiss(self) -> None:
        """Forget a finished, failed or cancelled download (the status bar stops showing it)."""
        if self.state != "running":
            self.state = "idle"
            self.changed.emit()

    def status_text(self) -> str:
        if self.state == "running":
            if self.checking_bytes is not None:
                done, total = self.checking_bytes
                return (
                    f"Checking the part of {self.label} downloaded earlier: "
                    f"{human_bytes(done)} of {human_bytes(total)}"
                )
            if not self.done_bytes and not self.total_bytes:
                return f"Downloading {self.label}…"
            speed_text = progress_text(self.done_bytes, self.total_bytes, self.speed, self.eta)
            return f"Downloading {self.label}: {speed_text}"
        if self.state == "done":
            return f"Downloaded and verified: {self.label}"
        return self.message

    # -- from the bridge -----------------------------------------------------------------------

    def _on_progress(self, done: int, total: int, speed: float, eta: float) -> None:
        self.done_bytes, self.total_bytes, self.speed, self.eta = done, total, speed, eta
        self.checking_bytes = None
        self.changed.emit()
        self.progress.emit(done, total, speed, eta)

    def _on_checking(self, done: int, total: int) -> None:
        self.checking_bytes = (done, total)
        self.changed.emit()
        self.checking.emit(done, total)

    def _on_finished(self, path: str) -> None:
        self.state, self.path = "done", path
        self.message = f"Downloaded and verified: {Path(path).name}"
        self.changed.emit()
        self.finished.emit(path)

    def _on_failed(self, message: str) -> None:
        self.state, self.message = "failed", message
        self.changed.emit()
        self.failed.emit(message)

    def _on_cancelled(self) -> None:
        self.state = "cancelled"
        self.message = self.bridge.message or "Download cancelled; it resumes next time."
        self.changed.emit()
        self.cancelled.emit()


class DownloadStatus(QWidget):
    """The download in the main window's status bar; hidden while there is none."""

    def __init__(self, manager: DownloadManager, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.manager = manager
        self.text = QLabel(self)
        self.bar = QProgressBar(self)
        self.bar.setMaximumWidth(140)
        self.bar.setTextVisible(False)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setToolTip("Stop the download; the part downloaded stays and resumes")
        self.load_button = QPushButton("Load", self)
        self.load_button.setToolTip("Load the downloaded model")
        self.dismiss_button = QPushButton("Dismiss", self)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.text)
        layout.addWidget(self.bar)
        for button in (self.cancel_button, self.load_button, self.dismiss_button):
            layout.addWidget(button)
        self.cancel_button.clicked.connect(manager.cancel)
        self.load_button.clicked.connect(manager.load)
        self.dismiss_button.clicked.connect(manager.dismiss)
        manager.changed.connect(self.refresh)
        self.refresh()

    def refresh(self) -> None:
        manager = self.manager
        state = manager.state
        self.setVisible(state != "idle")
        self.text.setText(manager.status_text())
        self.text.setToolTip(manager.status_text())
        running = state == "running"
        self.bar.setVisible(running)
        if running and manager.total_bytes > 0 and manager.checking_bytes is None:
            self.bar.setRange(0, PROGRESS_STEPS)
            self.bar.setValue(manager.done_bytes * PROGRESS_STEPS // manager.total_bytes)
        elif running:
            self.bar.setRange(0, 0)  # busy: the size is not known yet, or a partial is checked
        self.cancel_button.setVisible(running)
        self.load_button.setVisible(state == "done")
        self.dismiss_button.setVisible(state in ("done", "failed", "cancelled"))
