"""The UI's I/O pool: results and errors come back on the GUI thread, a bug reaches the error dialog
and the log, cancellation is a flag the job checks, shutdown never waits forever; and app/ui starts
no thread of its own."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import shiboken6
from PySide6.QtCore import QCoreApplication, QEvent, QObject
from pytestqt.qtbot import QtBot

from app.core.errors import LeanCoderError
from app.ui.error_dialog import TITLE, app_error_reporter
from app.ui.tasks import THREAD_PREFIX, TaskPool, app_task_pool

UI_DIR = Path(__file__).resolve().parents[1] / "app" / "ui"
WAIT_MS = 10_000


@pytest.fixture
def pool(qtbot: QtBot) -> Iterator[TaskPool]:
    own = TaskPool(workers=2)
    yield own
    assert own.shutdown(5.0)
    own.deleteLater()


def test_a_result_arrives_on_the_gui_thread(qtbot: QtBot, pool: TaskPool) -> None:
    gui = threading.get_ident()
    arrived: list[tuple[int, int]] = []

    task = pool.submit(
        "where am I", lambda _cancel: threading.get_ident(),
        on_done=lambda worker: arrived.append((worker, threading.get_ident())),
    )  # fmt: skip

    qtbot.waitUntil(lambda: bool(arrived), timeout=WAIT_MS)
    ((worker, callback),) = arrived
    assert worker != gui and callback == gui
    assert task.thread_name is not None and task.thread_name.startswith(THREAD_PREFIX)
    assert task.delivered and pool.running() == []


def test_a_job_that_raises_reaches_the_dialog_and_the_log(
    qtbot: QtBot, caplog: pytest.LogCaptureFixture
) -> None:
    reporter = app_error_reporter()
    shown_before = reporter.shown
    errors: list[BaseException] = []

    def job(_cancel: threading.Event) -> None:
        raise ValueError("the index went away (42)")

    with caplog.at_level(logging.ERROR, logger="app.ui.tasks"):
        app_task_pool().submit("read the index", job, on_error=errors.append)
        qtbot.waitUntil(lambda: reporter.shown == shown_before + 1, timeout=WAIT_MS)

    # The widget that waited hears of it (to recover), the user sees the dialog, the log has it.
    assert [type(e) for e in errors] == [ValueError]
    box = reporter.box
    assert box is not None and box.windowTitle() == TITLE
    assert "read the index" in box.text() and "ValueError: the index went away (42)" in box.text()
    assert "Traceback" in box.detailedText() and "in job" in box.detailedText()
    (record,) = [r for r in caplog.records if r.name == "app.ui.tasks"]
    assert record.levelno == logging.ERROR and "the index went away (42)" in record.getMessage()
    assert "Traceback" in record.getMessage()
    box.close()


def test_an_expected_failure_goes_to_its_handler_only(
    qtbot: QtBot, caplog: pytest.LogCaptureFixture
) -> None:
    reporter = app_error_reporter()
    shown_before = reporter.shown
    errors: list[str] = []

    def job(_cancel: threading.Event) -> None:
        raise LeanCoderError("The folder is not readable.")

    with caplog.at_level(logging.DEBUG, logger="app.ui.tasks"):
        task = app_task_pool().submit("scan", job, on_error=lambda e: errors.append(str(e)))
        qtbot.waitUntil(lambda: task.delivered, timeout=WAIT_MS)

    assert errors == ["The folder is not readable."]
    assert reporter.shown == shown_before  # a sentence for the user, not a bug: no dialog
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_cancel_sets_the_flag_the_job_checks(qtbot: QtBot, pool: TaskPool) -> None:
    results: list[str] = []
    started = threading.Event()

    def job(cancel: threading.Event) -> str:
        started.set()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if cancel.wait(0.01):
                return "stopped at the flag"
        return "ran to the end"

    task = pool.submit("long", job, on_done=results.append)
    assert started.wait(5)
    began = time.monotonic()
    task.cancel()
    qtbot.waitUntil(lambda: bool(results), timeout=WAIT_MS)
    assert results == ["stopped at the flag"] and time.monotonic() - began < 2
    assert task.cancelled


def test_a_deleted_owner_gets_nothing(qtbot: QtBot, pool: TaskPool) -> None:
    owner = QObject()
    release = threading.Event()
    results: list[int] = []
    task = pool.submit("slow", lambda _c: release.wait(10) and 7, on_done=results.append,
                       owner=owner)  # fmt: skip
    owner.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    assert not shiboken6.isValid(owner)
    release.set()
    qtbot.waitUntil(lambda: task.delivered, timeout=WAIT_MS)
    assert results == [] and task.future is not None and task.future.result() == 7


def test_shutdown_waits_briefly_and_drops_what_has_not_started(
    qtbot: QtBot, caplog: pytest.LogCaptureFixture
) -> None:
    pool = TaskPool(workers=1)
    stubborn_started = threading.Event()
    ran: list[str] = []

    def stubborn(_cancel: threading.Event) -> None:  # ignores its flag for a while
        stubborn_started.set()
        time.sleep(1.5)
        ran.append("stubborn")

    pool.submit("stubborn job", stubborn)
    queued = pool.submit("queued job", lambda _c: ran.append("queued"))
    assert stubborn_started.wait(5)

    began = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="app.ui.tasks"):
        assert pool.shutdown(timeout_s=0.2) is False
    assert time.monotonic() - began < 1.0  # it did not wait for the stubborn job
    assert any("stubborn job" in r.getMessage() for r in caplog.records)
    assert queued.future is not None and queued.future.cancelled()
    with pytest.raises(LeanCoderError, match="shutting down"):
        pool.submit("late", lambda _c: None)
    qtbot.waitUntil(lambda: ran == ["stubborn"], timeout=WAIT_MS)  # it ends on its own
    pool.deleteLater()


def test_app_ui_starts_no_thread_of_its_own() -> None:
    """Background work goes through app.ui.tasks (or the model's SerialWorker), nowhere else."""
    raw = re.compile(r"threading\.Thread\(|QThread\b|\.terminate\(\)|_thread\.start_new")
    offenders = [
        f"{path.name}:{number}: {line.strip()}"
        for path in sorted(UI_DIR.glob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if raw.search(line)
    ]
    assert len(list(UI_DIR.glob("*.py"))) > 20  # the folder is really there
    assert offenders == []
