"""Adapter from the core engine (callbacks, iterators) to Qt signals.

The engine lives on one `SerialWorker` thread; this QObject lives on the GUI thread. Generated
events are appended to a locked list and the GUI is woken by `eventsReady` only when it has drained
the previous batch, so a fast model coalesces into few wake-ups instead of flooding the event loop.

Signals:
    loadProgress(float)       0.0 .. 1.0 while a model loads
    modelLoaded(object)       ModelInfo
    loadFailed(str)           a user-facing message; `model_info` says what is still loaded
    eventsReady(int)          request id: its owner calls `take_events(request)` (GUI thread);
                              a chat reply's events are SessionEvents, ending in done or failed
    compareFinished(int, object)  request id, the Comparison
    compareFailed(int, str)   request id, a user-facing message
    fillerMatches(object)     list[FillerMatch] for a word list, or None with no model loaded
    jobFailed(str, str)       a worker job raised what it did not handle (already logged):
                              a one-line summary and the traceback
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from app.core.errors import LeanCoderError
from app.core.evals.compare import run_comparison
from app.core.llm.engine import Engine, GenerationEvent, LoadOptions, ModelInfo, SamplingParams
from app.core.llm.worker import SerialWorker
from app.core.remote.engine import RemoteEngine
from app.core.session.chat import ChatSession, SessionEvent
from app.core.session.load_plan import load_planned
from app.core.thinking.policy import ThinkingPolicy

log = logging.getLogger(__name__)
StreamEvent = GenerationEvent | SessionEvent  # a comparison's engine events, or a chat's


class EngineBridge(QObject):
    loadProgress = Signal(float)
    modelLoaded = Signal(object)
    loadFailed = Signal(str)
    eventsReady = Signal(int)
    compareFinished = Signal(int, object)
    compareFailed = Signal(int, str)
    fillerMatches = Signal(object)
    jobFailed = Signal(str, str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._engine: Engine | RemoteEngine = Engine()
        self._worker = SerialWorker(on_error=self._on_job_error)
        self._lock = threading.Lock()
        # Per request: (stream key, event). A request's owner is woken once per batch.
        self._pending: dict[int, list[tuple[str, StreamEvent]]] = {}
        self._woken: set[int] = set()
        self._cancel = threading.Event()
        self._stop_thinking = threading.Event()
        self._load_cancel = threading.Event()
        self._next_request = 0
        self._closed = False
        self.model_info: ModelInfo | None = None

    @property
    def engine(self) -> Engine | RemoteEngine:
        """What the worker generates with; swapped only by a job on the worker."""
        return self._engine

    @property
    def worker(self) -> SerialWorker:
        """The one model thread: the window's chats and the local API server both queue here."""
        return self._worker

    # -- requests (GUI thread) -----------------------------------------------------------------

    def load(
        self, path: str | Path, options: LoadOptions | None = None, plan: bool = False
    ) -> None:
        """Load on the worker. `plan=True`: fit the model to this machine first (context, GPU
        layers, MoE experts in host memory), with `options` as the wishes."""
        self._load_cancel = threading.Event()
        self._worker.submit(
            self._load_job,
            Path(path),
            options or LoadOptions(front_end="window"),
            plan,
            self._load_cancel,
        )

    def connect_remote(self, endpoint: str) -> None:
        """Use a server's model (`URL#model`, app.core.remote) in place of the loaded one; the
        same modelLoaded / loadFailed signals as `load`."""
        self._worker.submit(self._remote_job, endpoint)

    def cancel_load(self) -> None:
        self._load_cancel.set()

    def send(
        self, session: ChatSession, text: str, sampling: SamplingParams | None = None
    ) -> int:
        """Queue a chat turn: the session builds the prompt, streams and saves the reply, and
        runs the edit feedback loop on the worker; its events arrive through `eventsReady`."""
        self._next_request += 1
        request = self._next_request
        self._cancel = threading.Event()
        self._stop_thinking = threading.Event()
        self._worker.submit(
            self._send_job, request, session, text, sampling, self._cancel, self._stop_thinking
        )
        return request

    def stop_thinking(self) -> None:
        """Close the running reply's thinking at its next token; the answer goes on."""
        self._stop_thinking.set()

    def stop(self) -> None:
        """Stop the running reply; the worker sees the flag before its next token."""
        self._cancel.set()

    def take_events(self, request: int) -> list[tuple[str, StreamEvent]]:
        """Drain one request's events: (stream key, event); the key is "reply", "a" or "b"."""
        with self._lock:
            self._woken.discard(request)
            return self._pending.pop(request, [])

    def compare(
        self,
        prompt: str,
        policy_a: ThinkingPolicy,
        policy_b: ThinkingPolicy,
        sampling: SamplingParams | None = None,
        force_thinking: bool = False,
    ) -> int:
        """Queue a side-by-side run of `prompt` (its messages built as a chat's are); events
        stream under keys "a" and "b"."""
        self._next_request += 1
        request = self._next_request
        self._cancel = threading.Event()
        self._worker.submit(
            self._compare_job,
            request,
            prompt,
            policy_a,
            policy_b,
            sampling,
            force_thinking,
            self._cancel,
        )
        return request

    def filler_matches(self, words: Sequence[str]) -> None:
        """Look up which vocabulary tokens `words` match (on the worker; `fillerMatches`)."""
        self._worker.submit(self._filler_job, tuple(words))

    def _filler_job(self, words: tuple[str, ...]) -> None:
        try:
            self.fillerMatches.emit(self._engine.filler_matches(words))
        except LeanCoderError:
            self.fillerMatches.emit(None)

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

    def _on_job_error(self, job: str, exc: BaseException) -> None:
        # The worker logged it; the GUI hears it through a queued signal.
        details = "".join(traceback.format_exception(exc))
        self.jobFailed.emit(f"{job} failed: {type(exc).__name__}: {exc}", details)

    def _load_job(
        self, path: Path, options: LoadOptions, plan: bool, cancel: threading.Event
    ) -> None:
        # After a remote engine, a local file loads into a new Engine, swapped in once loaded.
        engine = self._engine if isinstance(self._engine, Engine) else Engine()
        try:
            progress = self.loadProgress.emit
            if plan:  # the same plan, and the same notes, as every `leancoder` command
                info = load_planned(engine, path, options, progress=progress, cancel=cancel)
            else:
                info = engine.load(path, options, progress=progress, cancel=cancel)
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
        self._use(engine)
        self.model_info = info
        self.modelLoaded.emit(info)

    def _remote_job(self, endpoint: str) -> None:
        from app.core.remote.config import load_remote_config, remote_options
        from app.core.remote.endpoint import parse_endpoint

        remote = RemoteEngine()
        try:
            spec = parse_endpoint(endpoint)
            info = remote.connect(spec, remote_options(load_remote_config(), spec))
        except LeanCoderError as exc:  # the loaded model stays, as after a rejected file
            self.model_info = self._engine.info
            self.loadFailed.emit(str(exc))
            return
        self._use(remote)
        self.model_info = info
        self.modelLoaded.emit(info)

    def _use(self, engine: Engine | RemoteEngine) -> None:
        if engine is not self._engine:
            self._engine.unload()
            self._engine = engine

    def _send_job(
        self,
        request: int,
        session: ChatSession,
        text: str,
        sampling: SamplingParams | None,
        cancel: threading.Event,
        stop_thinking: threading.Event,
    ) -> None:
        events = session.send(
            self._engine, text, sampling, cancel=cancel, stop_thinking=stop_thinking
        )
        for event in events:
            self._post(request, "reply", event)

    def _compare_job(
        self,
        request: int,
        prompt: str,
        policy_a: ThinkingPolicy,
        policy_b: ThinkingPolicy,
        sampling: SamplingParams | None,
        force_thinking: bool,
        cancel: threading.Event,
    ) -> None:
        try:
            messages, _context = ChatSession().build_messages(
                self._engine, [{"role": "user", "content": prompt}]
            )
            result = run_comparison(
                self._engine,
                messages,
                policy_a,
                policy_b,
                sampling,
                force_thinking=force_thinking,
                cancel=cancel,
                on_event=lambda key, event: self._post(request, key, event),
            )
        except LeanCoderError as exc:
            self.compareFailed.emit(request, str(exc))
            return
        except Exception as exc:  # the GUI must hear about it, not hang
            log.exception("comparison failed")
            self.compareFailed.emit(request, f"The comparison failed unexpectedly: {exc}")
            return
        self.compareFinished.emit(request, result)

    def _post(self, request: int, key: str, event: StreamEvent) -> None:
        with self._lock:
            self._pending.setdefault(request, []).append((key, event))
            if request in self._woken:
                return
            self._woken.add(request)
        self.eventsReady.emit(request)
