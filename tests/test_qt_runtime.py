"""Guards against a broken Qt binding release.

PySide6 6.12.0's `Signal.emit()` returned a borrowed reference to True: every emit lowered True's
reference count, and a streaming reply (hundreds of emits) crashed the interpreter with
"bool_dealloc: deallocating True". pyproject excludes that release; this test catches a relapse.
"""

from __future__ import annotations

import sys

from PySide6.QtCore import QObject, Signal


class _Emitter(QObject):
    value = Signal(float)
    bare = Signal()


def test_signal_emit_keeps_reference_counts() -> None:
    emitter = _Emitter()
    emitter.value.connect(lambda _v: None)
    before = sys.getrefcount(True)
    for _ in range(200):
        emitter.value.emit(0.5)
        emitter.bare.emit()
    assert sys.getrefcount(True) >= before - 5
