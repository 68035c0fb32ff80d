"""Progress, cancel and back-off for a download (see `app.core.models.download`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from app.core.models.download_target import DownloadError
from app.core.units import human_bytes

PROGRESS_INTERVAL_S = 0.1

Phase = Literal["checking", "downloading"]


class CancelFlag(Protocol):
    """Anything with `is_set()`, such as `threading.Event`."""

    def is_set(self) -> bool: ...


class DownloadCancelled(DownloadError):
    """The user cancelled; the partial file is kept so the next run resumes."""


@dataclass(frozen=True, slots=True)
class DownloadProgress:
    phase: Phase  # "checking": hashing a partial file before resuming it
    done: int  # bytes on disk (or hashed, while checking)
    total: int | None  # None when the server did not say
    speed: float  # bytes per second over the last few seconds
    eta: float | None  # seconds left, when it can be estimated

    @property
    def fraction(self) -> float | None:
        return min(1.0, self.done / self.total) if self.total else None


ProgressCallback = Callable[[DownloadProgress], None]


def check_cancel(cancel: CancelFlag | None, partial: Path) -> None:
    if cancel is not None and cancel.is_set():
        kept = partial.stat().st_size if partial.exists() else 0
        raise DownloadCancelled(
            f"Download cancelled; {human_bytes(kept)} kept, so running it again resumes from there."
        )


def sleep_unless_cancelled(seconds: float, cancel: CancelFlag | None, partial: Path) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        check_cancel(cancel, partial)
        time.sleep(min(0.05, max(0.0, end - time.monotonic())))


class Meter:
    """Turns byte counts into throttled progress reports with speed (over ~5 s) and ETA."""

    WINDOW_S = 5.0

    def __init__(self, callback: ProgressCallback | None, total: int | None) -> None:
        self._callback = callback
        self._total = total
        self._samples: list[tuple[float, int]] = []
        self._last_report = 0.0

    def start(self, done: int) -> None:
        self._samples = [(time.monotonic(), done)]

    def report(
        self, phase: Phase, done: int, total: int | None = None, force: bool = False
    ) -> None:
        if self._callback is None:
            return
        now = time.monotonic()
        if phase == "downloading":
            self._samples.append((now, done))
            while len(self._samples) > 2 and now - self._samples[0][0] > self.WINDOW_S:
                self._samples.pop(0)
        whole = total if total is not None else self._total
        finished = whole is not None and done >= whole  # a phase's last report always goes out
        if not (force or finished or now - self._last_report >= PROGRESS_INTERVAL_S):
            return
        self._last_report = now
        speed = self._speed(now) if phase == "downloading" else 0.0
        eta = (whole - done) / speed if whole is not None and speed > 0 else None
        self._callback(DownloadProgress(phase, done, whole, speed, eta))

    def _speed(self, now: float) -> float:
        if len(self._samples) < 2:
            return 0.0
        (t0, b0), (t1, b1) = self._samples[0], self._samples[-1]
        return (b1 - b0) / (t1 - t0) if t1 > t0 else 0.0
