"""Fewer llama.cpp threads while other programs keep the cores busy (app.core.llm.cpu_contention):
the rule as a function, the probe against real CPU hogs, and the engine on the real starter model
reading the thread counts back from llama.cpp's context."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.core.llm.cpu_contention import (
    LOOK_EVERY_S,
    ContentionProbe,
    ThreadGovernor,
    fit_to_free_cores,
)
from app.core.llm.engine import Engine, LoadOptions, SamplingParams, run_to_completion
from app.core.llm.threads import ThreadChoice, detect_cores

ASK = [{"role": "user", "content": "Say hello."}]


@pytest.mark.parametrize(
    ("logical", "others", "expected"),
    [
        (2, 0.0, (2, 2)),  # a quiet machine: the load-time choice
        (2, 0.3, (2, 2)),  # a browser idling: not worth a thread
        (2, 0.6, (1, 1)),  # a core 60% taken stalls every step: leave it
        (2, 1.0, (1, 1)),
        (2, 2.0, (1, 1)),  # everything taken: never below one thread
        (8, 1.0, (4, 7)),  # a big machine keeps its physical cores for decoding
        (8, 5.0, (3, 3)),
        (2, -1.0, (2, 2)),  # counters that went backwards count as nothing
    ],
)
def test_threads_fit_the_cores_others_leave_free(
    logical: int, others: float, expected: tuple[int, int]
) -> None:
    chosen = ThreadChoice(2, 2) if logical == 2 else ThreadChoice(4, 8)
    fitted = fit_to_free_cores(chosen, logical, others)
    assert (fitted.decode, fitted.batch) == expected


def test_the_probe_counts_others_time_not_this_process() -> None:
    clock, busy, own = [0.0], [100.0], [5.0]
    probe = ContentionProbe(lambda: clock[0], lambda: busy[0], lambda: own[0])
    clock[0], busy[0], own[0] = 2.0, 103.0, 6.0  # 3 s busy in 2 s, 1 s of it ours
    assert probe.others_busy_cores() == pytest.approx(1.0)
    clock[0], busy[0], own[0] = 3.0, 104.0, 7.0  # only our own second
    assert probe.others_busy_cores() == pytest.approx(0.0)
    assert probe.others_busy_cores() == 0.0  # no time passed


class _RecordingBackend:
    def __init__(self) -> None:
        self.threads = (2, 2)
        self.calls: list[tuple[int, int]] = []

    def n_threads(self) -> int:
        return self.threads[0]

    def n_threads_batch(self) -> int:
        return self.threads[1]

    def set_threads(self, decode: int, batch: int) -> None:
        self.threads = (decode, batch)
        self.calls.append(self.threads)


class _ScriptedProbe(ContentionProbe):
    def __init__(self, values: list[float]) -> None:
        self.values = values

    def others_busy_cores(self) -> float:
        return self.values.pop(0)


def test_the_governor_lowers_and_restores_only_automatic_counts() -> None:
    backend = _RecordingBackend()
    governor = ThreadGovernor(backend, True, 2, _ScriptedProbe([1.2, 1.0, 0.1]))
    assert governor.before_reply() == ThreadChoice(1, 1)
    assert governor.before_reply() == ThreadChoice(1, 1)  # unchanged: llama.cpp not asked again
    assert governor.before_reply() == ThreadChoice(2, 2)  # the others stopped
    assert backend.calls == [(1, 1), (2, 2)]
    explicit = _RecordingBackend()
    pinned = ThreadGovernor(explicit, False, 2, _ScriptedProbe([2.0]))
    assert pinned.before_reply() == ThreadChoice(2, 2) and explicit.calls == []


def test_a_reply_in_progress_looks_again_every_half_second() -> None:
    backend = _RecordingBackend()
    clock = [0.0]
    probe = _ScriptedProbe([0.0, 1.5, 0.0])
    governor = ThreadGovernor(backend, True, 2, probe, clock=lambda: clock[0])
    assert governor.before_reply() == ThreadChoice(2, 2)  # t=0: quiet
    clock[0] = LOOK_EVERY_S / 2
    assert governor.during_reply() == ThreadChoice(2, 2) and probe.values == [1.5, 0.0]  # no look
    clock[0] = LOOK_EVERY_S
    assert governor.during_reply() == ThreadChoice(1, 1)  # a compile started mid-reply
    clock[0] = 2 * LOOK_EVERY_S
    assert governor.during_reply() == ThreadChoice(2, 2)  # and ended
    assert backend.calls == [(1, 1), (2, 2)]
    pinned = ThreadGovernor(_RecordingBackend(), False, 2, _ScriptedProbe([]), clock=lambda: 9.0)
    assert pinned.during_reply() == ThreadChoice(2, 2)  # an explicit count is never looked at


def _spin(count: int) -> list[subprocess.Popen[bytes]]:
    code = "while True:\n    pass\n"
    return [subprocess.Popen([sys.executable, "-c", code]) for _ in range(count)]


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        process.kill()
    for process in processes:
        process.wait()


@pytest.fixture
def hogs() -> Iterator[int]:
    """One busy-looping process per logical core, for as long as the test runs."""
    count = detect_cores().logical
    processes = _spin(count)
    try:
        time.sleep(0.3)  # let them start spinning
        yield count
    finally:
        _stop(processes)


def test_the_probe_sees_real_hogs(hogs: int) -> None:
    probe = ContentionProbe()
    time.sleep(1.0)
    assert probe.others_busy_cores() >= 0.5 * hogs


@pytest.mark.model
def test_the_engine_gives_llama_cpp_fewer_threads_while_hogs_run(
    starter_path: Path, hogs: int
) -> None:
    if detect_cores().logical < 2:
        pytest.skip("one core: nothing to give up")
    engine = Engine()
    engine.load(starter_path, LoadOptions(n_ctx=512))  # automatic threads
    pinned = Engine()
    pinned.load(starter_path, LoadOptions(n_ctx=512, n_threads=2))  # the user's own setting
    try:
        time.sleep(1.0)  # the hogs' time since the loads is what the probes see
        run_to_completion(engine, ASK, SamplingParams(max_tokens=2, seed=1))
        run_to_completion(pinned, ASK, SamplingParams(max_tokens=2, seed=1))
        backend = engine.backend
        assert (backend.n_threads(), backend.n_threads_batch()) == (1, 1)  # read from llama.cpp
        assert (pinned.backend.n_threads(), pinned.backend.n_threads_batch()) == (2, 2)
    finally:
        engine.unload()
        pinned.unload()


def _quiet_within(seconds: float) -> bool:
    """Whether, within `seconds`, other processes leave the cores idle for a second (a test run
    beside this one, or a straggler of an earlier one, would make "quiet" a lie)."""
    deadline = time.monotonic() + seconds
    probe = ContentionProbe()
    while time.monotonic() < deadline:
        time.sleep(1.0)
        if probe.others_busy_cores() < 0.3:
            return True
    return False


@pytest.mark.model
def test_threads_follow_a_program_that_starts_and_stops_mid_reply(starter_path: Path) -> None:
    """Hogs start after the reply's first tokens, then stop: the same reply drops to one thread
    and gets its threads back, read from llama.cpp's context between tokens."""
    if detect_cores().logical < 2:
        pytest.skip("one core: nothing to give up")
    if not _quiet_within(60.0):
        pytest.skip("other programs keep this machine busy: the reply cannot start quiet")
    engine = Engine()
    engine.load(starter_path, LoadOptions(n_ctx=2048))  # automatic threads
    cancel = threading.Event()
    seen: list[tuple[str, int]] = []  # (phase, llama.cpp's decode threads) per token
    hogs: list[subprocess.Popen[bytes]] = []
    phase = "quiet"
    story = [{"role": "user", "content": "Write a very long story about a lighthouse."}]
    try:
        time.sleep(LOOK_EVERY_S)  # a fresh look window: the load's own time is not others'
        started = time.monotonic()
        for event in engine.generate(story, SamplingParams(max_tokens=1900, seed=1), cancel):
            if event.kind != "text":
                continue
            seen.append((phase, engine.backend.n_threads()))
            if phase == "quiet" and len(seen) >= 5:
                hogs, phase, started = _spin(detect_cores().logical), "busy", time.monotonic()
            elif phase == "busy" and seen[-1][1] == 1 and time.monotonic() - started > 1.0:
                _stop(hogs)
                hogs, phase, started = [], "after", time.monotonic()
            elif phase == "after" and (seen[-1][1] == 2 or time.monotonic() - started > 30):
                cancel.set()
            elif time.monotonic() - started > 60:
                cancel.set()  # bounded: the assertions say what did not happen
    finally:
        _stop(hogs)
        engine.unload()
    by_phase = {p: [n for q, n in seen if q == p] for p in ("quiet", "busy", "after")}
    assert set(by_phase["quiet"]) == {2}, by_phase
    assert 1 in by_phase["busy"], "the reply kept both threads while other programs took a core"
    assert by_phase["after"] and by_phase["after"][-1] == 2, "the threads never came back"
