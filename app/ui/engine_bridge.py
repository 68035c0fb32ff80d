"""Adapter from the core engine (callbacks, iterators) to Qt signals.

The engine lives on one `SerialWorker` thread; this QObject lives on the GUI thread. Generated
events are appended to a locked list and the GUI is woken by `eventsReady` only when it has drained
the previous batch, so a fast model coalesces into few wake-ups instead of flooding the event loop.

Signals:
    loadProgress(float)       0.0 .. 1.0 while a model loads
    modelLoaded(object)       ModelInfo
    loadFailed(str)           a user-facing message; `model_info` says what is still loaded
    eventsReady()             call `take_events()` on the GUI thread
    replyFinished(int, object)  request id, final ReplyStats
    replyFailed(int, str)     request id, a user-facing message
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from app.core.chat_template import Message
from app.core.engine import Engine, GenerationEvent, LoadOptions, ModelInfo, SamplingParams
from app.core.errors import LeanCoderError
from app.core.serial_worker import SerialWorker
from app.core.thinking_policy import ThinkingPolicy

log = logging.getLogger(__name__)


class EngineBridge(QObject):
    loadProgress = Signal(float)
    modelLoaded = Signal(object)
    loadFailed = Signal(str)
    eventsReady = Signal()
    replyFinished = Signal(int, object)
    replyFailed = Signal(int, str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._engine = Engine()
        self._worker = SerialWorker()
        self._lock = threading.Lock()
        self._pending: list[tuple[int, GenerationEvent]] = []
        self._wake_pending = False
        self._cancel = threading.Event()
        self._stop_thinking = threading.Event()
        self._load_cancel = threading.Event()
        self._next_request = 0
        self._closed = False
        self.model_info: ModelInfo | None = None

    # -- requests (GUI thread) -----------------------------------------------------------------

    def load(self, path: str | Path, options: LoadOptions | None = None) -> None:
        self._load_cancel = threading.Event()
        self._worker.submit(self._load_job, Path(path), options or LoadOptions(), self._load_cancel)

    def cancel_load(self) -> None:
        self._load_cancel.set()

    def generate(
        self,
        messages: Sequence[Message],
        sampling: SamplingParams | None = None,
        policy: ThinkingPolicy | None = None,
    ) -> int:
        """Queue a reply; returns its request id. Events arrive through `eventsReady`."""
        self._next_request += 1
        request = self._next_request
        self._cancel = threading.Event()
        self._stop_thinking = threading.Event()
        self._worker.submit(
            self._generate_job,
            request,
            list(messages),
            sampling,
            policy,
            self._cancel,
            self._stop_thinking,
        )
        return request

    def stop_thinking(self) -> None:
        """Close the running reply's thinking at its next token; the answer goes on."""
        self._stop_thinking.set()

    def stop(self) -> None:
        """Stop the running reply; the worker sees the flag before its next token."""
        self._cancel.set()

    def take_events(self) -> list[tuple[int, GenerationEvent]]:
        with self._lock:
            events, self._pending = self._pending, []
            self._wake_pending = False
        return events

    def shutdown(self) -> None:
        """Stop generating, free the model on its own thread, and end the worker."""
        if self._closed:
            return
        self._closed = True
        self._cancel.set()
        self._load_cancel.set()
        self._worker.submit(self._engine.unload)
        if not self._worker.shutdown(timeout=30):
            log.warning("model worker did not stop within 30 s")

    # -- jobs (worker thread) ------------------------------------------------------------------

    def _load_job(self, path: Path, options: LoadOptions, cancel: threading.Event) -> None:
        try:
            info = self._engine.load(path, options, progress=self.loadProgress.emit, cancel=cancel)
        except LeanCoderError as exc:
            # A file rejected before loading leaves the previous model in place and usable.
            self.model_info = self._engine.info
            self.loadFailed.emit(str(exc))
            return
        except Exception as exc:
            log.exception("model load failed")
            self.model_info = self._engine.info
            self.loadFailed.emit(f"Loading failed unexpectedly: {exc}")
            return
        self.model_info = info
        self.modelLoaded.emit(info)

    def _generate_job(
        self,
        request: int,
        messages: list[Message],
        sampling: SamplingParams | None,
        policy: ThinkingPolicy | None,
        cancel: threading.Event,
        stop_thinking: threading.Event,
    ) -> None:
        try:
            events = self._engine.generate(
                messages, sampling, cancel, policy=policy, stop_thinking=stop_thinking
            )
            for event in events:
                if event.kind == "done":
                    self.replyFinished.emit(request, event.stats)
                else:
                    self._post(request, event)
        except LeanCoderError as exc:
            self.replyFailed.emit(request, str(exc))
        except Exception as exc:
            log.exception("generation failed")
            self.replyFailed.emit(request, f"Generation failed unexpectedly: {exc}")

    def _post(self, request: int, event: GenerationEvent) -> None:
        with self._lock:
            self._pending.append((request, event))
            if self._wake_pending:
                return
            self._wake_pending = True
        self.eventsReady.emit()
