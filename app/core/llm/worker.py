"""One thread that runs jobs one after another.

llama.cpp's context is not thread-safe and a model is gigabytes: exactly one thread owns it, and
every request (load, generate, unload) is queued to that thread. The UI never blocks on it; it hears
back through the callbacks each job calls. Cancelling is a flag the running job checks per token;
threads are never killed.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")
_STOP = object()


class SerialWorker:
    def __init__(self, name: str = "leancoder-model") -> None:
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> Future[T]:
        future: Future[T] = Future()
        self._jobs.put((future, fn, args, kwargs))
        return future

    def _run(self) -> None:
        while True:
            item = self._jobs.get()
            if item is _STOP:
                return
            future, fn, args, kwargs = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as exc:
                future.set_exception(exc)

    @property
    def thread(self) -> threading.Thread:
        return self._thread

    def shutdown(self, timeout: float | None = 30.0) -> bool:
        """Finish queued jobs, then stop. True when the thread ended within `timeout`."""
        self._jobs.put(_STOP)
        self._thread.join(timeout)
        return not self._thread.is_alive()
