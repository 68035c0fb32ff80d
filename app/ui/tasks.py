"""Background work in the window, one way: the model lane and a small pool for everything else.

The model has its own serial lane (EngineBridge's SerialWorker: one model, one thread). Everything
else that would block the GUI thread (looking for models on disk, detecting hardware, scanning a
folder, downloading) is a job on `TaskPool`: a few threads of a ThreadPoolExecutor whose results
and errors come back on the GUI thread, through a queued signal, to the callbacks given at submit.

The rule for errors: a job turns a failure the user can act on into a LeanCoderError (a sentence
for them), which goes to its `on_error`. Any other exception is a bug: it is logged with its
traceback and reported (the app's "Unexpected error" dialog), and `on_error` still runs so the
widget that waited can recover. A job is never interrupted: `Task.cancel()` sets the flag the job
checks. A job whose owner (a QObject) was deleted meanwhile delivers nothing (bugs are still
logged and reported).

At quit `shutdown()` cancels every job, drops those not started and waits a little for the rest;
it never waits forever (application.run_gui decides what happens to a job that ignores its flag).

Signals (TaskPool, internal):
    _finished(object)   a Task whose job ended; emitted on a pool thread, delivered on the GUI one
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import threading
import time
import traceback
from collections.abc import Callable
from typing import Generic, TypeVar

import shiboken6
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QApplication

from app.core.errors import LeanCoderError
from app.ui.error_dialog import app_error_reporter

log = logging.getLogger(__name__)

T = TypeVar("T")
IO_WORKERS = 4  # a download and a folder scan may each hold one for long; the rest stay free
THREAD_PREFIX = "leancoder-io"
POOL_NAME = "leancoder-task-pool"
SHUTDOWN_WAIT_S = 3.0

Reporter = Callable[[str, str], None]  # a one-line summary and the details (a traceback)


class Task(Generic[T]):
    """One job submitted to a TaskPool. Read its state on the GUI thread; `cancel()` and `wait()`
    work from any thread."""

    def __init__(
        self,
        name: str,
        cancel: threading.Event,
        on_done: Callable[[T], None] | None,
        on_error: Callable[[BaseException], None] | None,
        owner: QObject | None,
    ) -> None:
        self.name = name
        self.cancel_flag = cancel
        self.on_done = on_done
        self.on_error = on_error
        self.owner = owner
        self.future: concurrent.futures.Future[T] | None = None
        self.thread_name: str | None = None  # the pool thread that ran it, once it started
        self.delivered = False  # its callbacks ran (or were dropped) on the GUI thread

    def cancel(self) -> None:
        """Ask the job to stop at its next look at the flag. A job not started yet still starts
        (and sees the flag at once), so its callbacks always run; only shutdown drops jobs."""
        self.cancel_flag.set()

    @property
    def cancelled(self) -> bool:
        return self.cancel_flag.is_set()

    def done(self) -> bool:
        """The job's function has returned or raised (its callbacks may still be on their way)."""
        return self.future is not None and self.future.done()

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until the job's function ends; True if it did within the timeout."""
        if self.future is None:
            return True
        concurrent.futures.wait([self.future], timeout=timeout_s)
        return self.future.done()

    def __repr__(self) -> str:
        state = "done" if self.done() else "cancelling" if self.cancelled else "pending/running"
        return f"<Task {self.name!r} {state}>"


class TaskPool(QObject):
    _finished = Signal(object)

    def __init__(
        self,
        parent: QObject | None = None,
        *,
        workers: int = IO_WORKERS,
        report: Reporter | None = None,
    ) -> None:
        super().__init__(parent)
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix=THREAD_PREFIX
        )
        self._report = report
        self._lock = threading.Lock()
        self._tasks: set[Task[object]] = set()  # submitted, not yet delivered
        self.closed = False
        # Queued explicitly: a job ending on the GUI thread (a cancelled future) must not run its
        # callbacks inside submit() or cancel().
        self._finished.connect(self._deliver, Qt.ConnectionType.QueuedConnection)

    def submit(
        self,
        name: str,
        job: Callable[[threading.Event], T],
        *,
        on_done: Callable[[T], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
        owner: QObject | None = None,
        cancel: threading.Event | None = None,
    ) -> Task[T]:
        """Run `job(cancel_flag)` on a pool thread; `on_done(result)` or `on_error(exc)` then run
        on the GUI thread, unless `owner` was deleted meanwhile. Call on the GUI thread."""
        if self.closed:
            raise LeanCoderError("LeanCoder is shutting down; the job was not started.")
        task: Task[T] = Task(name, cancel or threading.Event(), on_done, on_error, owner)
        with self._lock:
            self._tasks.add(task)  # type: ignore[arg-type]
        task.future = self._executor.submit(self._run, task, job)
        task.future.add_done_callback(lambda _future: self._job_ended(task))
        return task

    def running(self) -> list[Task[object]]:
        """Jobs submitted and not yet delivered (waiting, running, or on their way back)."""
        with self._lock:
            return sorted(self._tasks, key=lambda t: t.name)

    def shutdown(self, timeout_s: float = SHUTDOWN_WAIT_S) -> bool:
        """Cancel every job, drop those not started, wait up to `timeout_s` for the rest. True
        when none is left running; the names of any left are logged."""
        self.closed = True
        tasks = self.running()
        for task in tasks:
            task.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)
        deadline = time.monotonic() + timeout_s
        left = [t for t in tasks if not t.wait(max(0.0, deadline - time.monotonic()))]
        if left:
            log.warning(
                "%d background job(s) still running after %.1f s: %s",
                len(left), timeout_s, ", ".join(t.name for t in left),
            )  # fmt: skip
        return not left

    # -- on the pool threads -------------------------------------------------------------------

    @staticmethod
    def _run(task: Task[T], job: Callable[[threading.Event], T]) -> T:
        thread = threading.current_thread()
        task.thread_name = thread.name
        base = thread.name
        thread.name = f"{base}:{task.name}"  # the log and a stack dump say which job it is
        try:
            return job(task.cancel_flag)
        finally:
            thread.name = base

    def _job_ended(self, task: Task[T]) -> None:
        # The pool may be gone at exit (its C++ object deleted): then nobody waits for the answer.
        with contextlib.suppress(RuntimeError):
            self._finished.emit(task)

    # -- on the GUI thread ---------------------------------------------------------------------

    def _deliver(self, task: Task[object]) -> None:
        with self._lock:
            self._tasks.discard(task)
        task.delivered = True
        future = task.future
        assert future is not None and future.done()
        if future.cancelled():
            return  # dropped at shutdown before it started: nothing ran, nothing to say
        error = future.exception()
        if error is not None and not isinstance(error, LeanCoderError):
            self._report_bug(task, error)
        owner = task.owner
        if owner is not None and not shiboken6.isValid(owner):
            log.debug("%s ended after its owner was deleted; result dropped", task.name)
            return
        if error is None:
            if task.on_done is not None:
                task.on_done(future.result())
        elif task.on_error is not None:
            task.on_error(error)
        elif isinstance(error, LeanCoderError):  # a sentence for the user, with no one to show it
            self._show(task.name, str(error), "")

    def _report_bug(self, task: Task[object], error: BaseException) -> None:
        details = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        log.error("background job %r failed unexpectedly:\n%s", task.name, details.rstrip())
        self._show(task.name, f"{type(error).__name__}: {error}", details)

    def _show(self, name: str, message: str, details: str) -> None:
        if self._report is not None:
            self._report(f"A background job ({name}) failed. {message}", details)


def app_task_pool() -> TaskPool:
    """The application's one I/O pool (its errors go to the app's error dialog); call it on the
    GUI thread, after the QApplication exists."""
    app = QApplication.instance()
    if app is None:
        raise RuntimeError("app_task_pool() needs a QApplication")
    pool = app.findChild(TaskPool, POOL_NAME)
    if pool is None or pool.closed:
        if pool is not None:
            pool.setObjectName("")  # shut down; a new one takes its name
        pool = TaskPool(app, report=app_error_reporter().report)
        pool.setObjectName(POOL_NAME)
    return pool


def shutdown_app_task_pool(timeout_s: float = SHUTDOWN_WAIT_S) -> bool:
    """At quit: cancel the app pool's jobs and wait up to `timeout_s`; True when none is left."""
    app = QApplication.instance()
    pool = app.findChild(TaskPool, POOL_NAME) if app is not None else None
    return pool is None or pool.shutdown(timeout_s)
