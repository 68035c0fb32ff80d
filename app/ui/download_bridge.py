"""Adapter from `app.core.models.download` (a blocking call with callbacks) to Qt signals.

The download runs on its own Python thread; its progress callback emits signals, which Qt queues to
this object's receivers on the GUI thread. Cancelling sets a flag the download checks after every
network read; the partial file stays, so starting the same download again resumes it.

Signals (byte counts are Python ints carried as `object`: a Qt `int` overflows past 2 GB):
    progress(object, object, float, float)  bytes done, total (0: unknown), bytes/s,
                                            seconds left (-1: unknown)
    checking(object, object)                bytes of an earlier partial file hashed so far, of all
    finished(str)                           the model file (`result` holds the DownloadResult)
    failed(str)                             a user-facing message
    cancelled()                             stopped by `cancel()`; `message` says what was kept
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from app.core.errors import LeanCoderError
from app.core.models.download import (
    DownloadCancelled,
    DownloadProgress,
    DownloadResult,
    DownloadTarget,
    download_model,
)
from app.core.models.network import NetworkSettings

log = logging.getLogger(__name__)
THREAD_NAME = "leancoder-download"


class DownloadBridge(QObject):
    progress = Signal(object, object, float, float)
    checking = Signal(object, object)
    finished = Signal(str)
    failed = Signal(str)
    cancelled = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._thread: threading.Thread | None = None
        self._cancel = threading.Event()
        self.result: DownloadResult | None = None
        self.message = ""

    def is_running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

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
        self._cancel = threading.Event()
        self.result = None
        self.message = ""
        self._thread = threading.Thread(
            target=self._run,
            args=(target, network, dest_dir, cache_dir, self._cancel),
            name=THREAD_NAME,
            daemon=True,  # a download never keeps the app from exiting; its partial file stays
        )
        self._thread.start()

    def cancel(self) -> None:
        self._cancel.set()

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until the download thread ends (after `cancel()`, at shutdown)."""
        if self._thread is not None:
            self._thread.join(timeout_s)
        return not self.is_running()

    def _run(
        self,
        target: DownloadTarget | str,
        network: NetworkSettings | None,
        dest_dir: Path | None,
        cache_dir: Path | None,
        cancel: threading.Event,
    ) -> None:
        try:
            result = download_model(
                target,
                network=network,
                dest_dir=dest_dir,
                cache_dir=cache_dir,
                progress=self._report,
                cancel=cancel,
            )
        except DownloadCancelled as exc:
            self.message = str(exc)
            self.cancelled.emit()
        except LeanCoderError as exc:
            self.message = str(exc)
            self.failed.emit(str(exc))
        except OSError as exc:  # the disk, not the network: full, read-only, removed
            self.message = f"Cannot write the download: {exc.strerror or exc}."
            self.failed.emit(self.message)
        except Exception as exc:  # a bug: say so instead of dying silently on a thread
            log.exception("download failed unexpectedly")
            self.message = f"The download failed unexpectedly: {exc}"
            self.failed.emit(self.message)
        else:
            self.result = result
            self.finished.emit(str(result.path))

    def _report(self, progress: DownloadProgress) -> None:
        if progress.phase == "checking":
            self.checking.emit(progress.done, progress.total or 0)
            return
        eta = progress.eta if progress.eta is not None else -1.0
        self.progress.emit(progress.done, progress.total or 0, progress.speed, eta)
