"""The machine's measured memory speed, remembered for the app's lifetime and across restarts.

"Measure memory speed" (a half-second benchmark, app.core.machine.bandwidth) runs only when the
user asks, and detection without it reports no bandwidth, so fit plans fell back to a guess after
every restart. Every hardware panel (the wizard's, Models > This machine) fills a missing figure
from here and reports a new measurement here; the window seeds it from its settings and saves
what `changed` reports. One app-wide object, because the panels are created and deleted on
demand by dialogs that know nothing of the settings.

Signals:
    changed(float)  a new measurement, bytes per second
"""

from __future__ import annotations

import dataclasses
import math

from PySide6.QtCore import QObject, Signal

from app.core.machine.info import HardwareInfo


class MeasuredBandwidth(QObject):
    changed = Signal(float)

    def __init__(self) -> None:
        super().__init__()
        self.bytes_per_s: float | None = None

    def seed(self, value: float | None) -> None:
        """The figure saved by an earlier run (no signal: nothing new was measured)."""
        self.bytes_per_s = value if _plausible(value) else None

    def fill(self, info: HardwareInfo) -> HardwareInfo:
        """`info` with its bandwidth: a new measurement is remembered, a missing one filled in."""
        measured = info.memory_bandwidth_bytes_per_s
        if _plausible(measured):
            assert measured is not None
            if measured != self.bytes_per_s:
                self.bytes_per_s = measured
                self.changed.emit(measured)
            return info
        if self.bytes_per_s is None:
            return info
        return dataclasses.replace(info, memory_bandwidth_bytes_per_s=self.bytes_per_s)


def _plausible(value: float | None) -> bool:
    # From 100 MB/s (a very old machine under load) to 100 TB/s: anything else is a bad file.
    return value is not None and math.isfinite(value) and 1e8 <= value <= 1e14


_APP_WIDE: MeasuredBandwidth | None = None


def measured_bandwidth() -> MeasuredBandwidth:
    global _APP_WIDE
    if _APP_WIDE is None:
        _APP_WIDE = MeasuredBandwidth()
    return _APP_WIDE
