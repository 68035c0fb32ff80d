"""The one model thread: jobs run in order, one at a time, on the same thread."""

from __future__ import annotations

import threading
import time

import pytest

from app.core.llm.worker import SerialWorker


def test_jobs_run_in_order_on_one_thread() -> None:
    worker = SerialWorker()
    order: list[int] = []
    threads: set[int] = set()
    running = [0]
    overlap = [False]

    def job(i: int) -> int:
        running[0] += 1
        overlap[0] |= running[0] > 1
        threads.add(threading.get_ident())
        time.sleep(0.002)
        order.append(i)
        running[0] -= 1
        return i * i

    futures = [worker.submit(job, i) for i in range(20)]
    assert [f.result(timeout=10) for f in futures] == [i * i for i in range(20)]
    assert order == list(range(20))
    assert threads == {worker.thread.ident}
    assert not overlap[0]
    assert worker.shutdown()


def test_exception_reaches_the_caller_and_worker_survives() -> None:
    worker = SerialWorker()

    def boom() -> None:
        raise ValueError("bad")

    with pytest.raises(ValueError, match="bad"):
        worker.submit(boom).result(timeout=5)
    assert worker.submit(lambda: 7).result(timeout=5) == 7
    assert worker.shutdown()
