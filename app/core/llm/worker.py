"""One thread that runs jobs one after another.

llama.cpp's context is not thread-safe and a model is gigabytes: exactly one thread owns it, and
every request (load, generate, unload) is queued to that thread. The UI never blocks on it; it hears
back through the callbacks each job calls. Cancelling is a flag the running job checks per token;
threads are never killed.

A job's failure is never silent: `submit` is fire-and-forget, so an exception escaping the job is
logged with its traceback and passed to `on_error` (the window's bridge shows it). Only `call`,
whose caller reads the Future, leaves the exception to the caller.
"""

from __future__ import annotations

import logging
import queue
import threading
import traceback
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")
_STOP = object()

JobErrorReport = Callable[[str, BaseException], None]  # (job name, the exception)


def job_name(fn: Callable[..., Any]) -> str:
    return str(getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn))


class SerialWorker:
    def __init__(
        self, name: str = "leancoder-model", on_error: JobErrorReport | None = None
    ) -> None:
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._on_error = on_error
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> Future[T]:
        """Queue a job nobody waits for. If it raises, the worker logs it and calls `on_error`
        (the returned Future holds the exception too, for tests and diagnostics)."""
        return self._queue(True, fn, args, kwargs)

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> Future[T]:
        """Queue a job whose caller reads the Future: its exception is the caller's to handle."""
        return self._queue(False, fn, args, kwargs)

    def _queue(
        self, report: bool, fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Future[T]:
        future: Future[T] = Future()
        self._jobs.put((future, report, fn, args, kwargs))
        return future

    def _run(self) -> None:
        while True:
            item = self._jobs.get()
            if item is _STOP:
                return
            future, report, fn, args, kwargs = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as exc:
                future.set_exception(exc)
                if report:
                    self._report(job_name(fn), exc)
            del item, future, fn, args, kwargs  # the next get() may block for hours

    def _report(self, name: str, exc: BaseException) -> None:
        log.error("background job %s failed", name, exc_info=(type(exc), exc, exc.__traceback__))
        if self._on_error is None:
            return
        try:
            self._on_error(name, exc)
        except Exception:  # the worker must outlive a broken reporter
            log.error("reporting the failure of %s failed:\n%s", name, traceback.format_exc())

    @property
    def thread(self) -> threading.Thread:
        return self._thread

    def shutdown(self, timeout: float | None = 30.0) -> bool:
        """Finish queued jobs, then stop. True when the thread ended within `timeout`."""
        self._jobs.put(_STOP)
        self._thread.join(timeout)
        return not self._thread.is_alive()
