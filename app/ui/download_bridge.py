"""Adapter from `app.core.models.download` (a blocking call with callbacks) to Qt signals.

The download is a job on the app's I/O pool (app.ui.tasks); its progress callback emits signals,
which Qt queues to this object's receivers on the GUI thread, and the pool delivers the result or
the error there too. Cancelling sets the flag the download checks after every network read; the
partial file stays, so starting the same download again resumes it. The bridge runs one download;
app.ui.downloads.DownloadManager owns the app's bridge, so a download outlives the chooser.

Signals (byte counts are Python ints carried as `object`: a Qt `int` overflows past 2 GB):
    progress(object, object, float, float)  bytes done, total (0: unknown), bytes/s,
                                            seconds left (-1: unknown)
    checking(object, object)                bytes of an earlier partial file hashed so far, of all
    finished(str)                           the model file (`result` holds the DownloadResult)
    failed(str)                             a user-facing message
    cancelled()                             stopped by `cancel()`; `message` says what was kept
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from app.core.errors import LeanCoderError
from app.core.models.download import (
    DownloadCancelled,
    DownloadError,
    DownloadProgress,
    DownloadResult,
    DownloadTarget,
    download_model,
)
from app.core.models.network import NetworkSettings
from app.ui.tasks import Task, TaskPool, app_task_pool

TASK_NAME = "download"


def _cancel_all(tasks: list[Task[DownloadResult]]) -> None:
    for task in tasks:
        task.cancel()


class DownloadBridge(QObject):
    progress = Signal(object, object, float, float)
    checking = Signal(object, object)
    finished = Signal(str)
    failed = Signal(str)
    cancelled = Signal()

    def __init__(self, parent: QObject | None = None, pool: TaskPool | None = None) -> None:
        super().__init__(parent)
        self._pool = pool
        self._task: Task[DownloadResult] | None = None  # from start until its outcome arrives
        self.result: DownloadResult | None = None
        self.message = ""
        # No reference to self: the bridge's Python wrapper may already be gone then. A bridge
        # deleted mid-download (its owner closed) stops the download; the partial file stays.
        holder: list[Task[DownloadResult]] = []
        self._holder = holder
        self.destroyed.connect(lambda *_: _cancel_all(holder))

    def is_running(self) -> bool:
        return self._task is not None

    def start(
        self,
        target: DownloadTarget | str,
        *,
        network: NetworkSettings | None = None,
        dest_dir: Path | None = None,
        cache_dir: Path | None = None,
    ) -> None:
        """Start downloading in the background; one download at a time per bridge."""
        if self.is_running():
            raise LeanCoderError("A download is already running; cancel it or wait for it.")
        self.result = None
        self.message = ""

        def job(cancel: threading.Event) -> DownloadResult:
            try:
                return download_model(
                    target, network=network, dest_dir=dest_dir, cache_dir=cache_dir,
                    progress=self._report, cancel=cancel,
                )  # fmt: skip
            except OSError as exc:  # the disk, not the network: full, read-only, removed
                raise DownloadError(f"Cannot write the download: {exc.strerror or exc}.") from exc

        pool = self._pool or app_task_pool()
        self._task = pool.submit(
            TASK_NAME, job, on_done=self._on_done, on_error=self._on_error, owner=self
        )
        self._holder[:] = [self._task]

    def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until the download job ends (after `cancel()`, at shutdown); its outcome then
        arrives through the event loop."""
        task = self._task
        return task is None or task.wait(timeout_s)

    def _on_done(self, result: DownloadResult) -> None:
        self._task = None
        self.result = result
        self.finished.emit(str(result.path))

    def _on_error(self, error: BaseException) -> None:
        self._task = None
        if isinstance(error, DownloadCancelled):
            self.message = str(error)
            self.cancelled.emit()
            return
        if isinstance(error, LeanCoderError):
            self.message = str(error)
        else:  # a bug: the pool logged it and opened the error dialog; the chooser says so too
            self.message = f"The download failed unexpectedly: {error}"
        self.failed.emit(self.message)

    def _report(self, progress: DownloadProgress) -> None:
        # On the pool thread. A bridge deleted meanwhile has cancelled the download, which stops
        # at its next read; until then its progress has no one to go to.
        with contextlib.suppress(RuntimeError):
            if progress.phase == "checking":
                self.checking.emit(progress.done, progress.total or 0)
                return
            eta = progress.eta if progress.eta is not None else -1.0
            self.progress.emit(progress.done, progress.total or 0, progress.speed, eta)
