"""Fewer llama.cpp threads while other programs keep this machine's cores busy.

Why: llama.cpp's threads wait for each other at every operation of every step, so one thread the
OS deschedules for another program stalls them all. Measured on the 2-core test machine with one
core taken by another process (bench/RESULTS.md, "Threads"): two threads fell to 0.3-1.4 tok/s
where one thread kept ~50, and a 30-token prompt took 1.7 s. A developer compiles or runs tests
beside their coding assistant all day, so the default must not collapse then.

So before each reply, and every half second while it decodes, the engine asks `ContentionProbe`
how many cores other processes used since it last asked (system busy time less this process's
own, over the wall time), and `fit_to_free_cores` lowers the automatic thread counts to the
cores left free, never below one, and raises them back to the load-time choice when the others
stop. A user's explicit thread setting is never changed (they asked for it). The look costs two
`/proc` reads, no sampling wait.

A program that starts in the middle of a long reply is seen at the next look, half a second later
at most (at the stalled speed, a token or two). The look before a reply covers the whole time since
the previous look, so another program that ran between two replies and stopped still counts once:
the next reply runs on fewer threads and the one after it has them back. That errs the cheap way
(one thread fewer costs a third of the speed on 2 cores; a stalled step costs 95%). Benches that
alternate two engines pin their threads (an explicit count), so this never decides their figures.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Callable
from typing import Protocol

import psutil

from app.core.llm.threads import ThreadChoice

log = logging.getLogger(__name__)

# A core counts as taken when others use this much of it: a thread that shares a core with a
# program busy 60% of the time is descheduled often enough to stall every step.
TAKEN_SHARE = 0.6
# How often a reply in progress looks again; each look is two /proc reads (~0.1 ms).
LOOK_EVERY_S = 0.5


def fit_to_free_cores(choice: ThreadChoice, logical: int, others_busy: float) -> ThreadChoice:
    """`choice` (the load-time automatic counts) with neither count above the cores other
    processes leave free. `others_busy` is in cores (1.5: one and a half cores' worth)."""
    taken = math.floor(max(0.0, others_busy) + (1 - TAKEN_SHARE))
    free = max(1, logical - taken)
    return ThreadChoice(min(choice.decode, free), min(choice.batch, free))


def _busy_seconds() -> float:
    times = psutil.cpu_times()
    idle = times.idle + getattr(times, "iowait", 0.0)
    return max(0.0, sum(times) - idle)


@functools.cache
def _this_process() -> psutil.Process:
    return psutil.Process()


def _own_seconds() -> float:
    own = _this_process().cpu_times()
    return float(own.user + own.system)


class ContentionProbe:
    """How many cores other processes kept busy between two calls of `others_busy_cores`."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        busy: Callable[[], float] = _busy_seconds,
        own: Callable[[], float] = _own_seconds,
    ) -> None:
        self._clock, self._busy, self._own = clock, busy, own
        self._last = self._sample()

    def _sample(self) -> tuple[float, float, float]:
        return self._clock(), self._busy(), self._own()

    def others_busy_cores(self) -> float:
        """Cores' worth of CPU time others used since the last call (or since the probe was
        made); 0.0 when no time has passed or the counters went backwards."""
        now = self._sample()
        wall = now[0] - self._last[0]
        busy = (now[1] - self._last[1]) - (now[2] - self._last[2])
        self._last = now
        if wall <= 0:
            return 0.0
        return max(0.0, busy / wall)


class ThreadGovernor:
    """The engine's side: before each reply and between its tokens, the automatic thread counts
    fitted to the free cores. `backend` needs `n_threads()`, `n_threads_batch()` and
    `set_threads(decode, batch)`."""

    def __init__(self, backend: _ThreadedBackend, automatic: bool, logical: int,
                 probe: ContentionProbe | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self._backend = backend
        self._automatic = automatic
        self._logical = max(1, logical)
        self.chosen = ThreadChoice(backend.n_threads(), backend.n_threads_batch())
        self._probe = probe if probe is not None else ContentionProbe()
        self._clock = clock
        self._looked_at = clock()
        self.current = self.chosen

    def during_reply(self) -> ThreadChoice:
        """Between two tokens: look again once `LOOK_EVERY_S` has passed since the last look
        (llama.cpp takes a new count at its next step)."""
        if self._automatic and self._clock() - self._looked_at >= LOOK_EVERY_S:
            return self.before_reply()
        return self.current

    def before_reply(self) -> ThreadChoice:
        """Set and return the thread counts for the next reply."""
        if not self._automatic:
            return self.current
        self._looked_at = self._clock()
        others = self._probe.others_busy_cores()
        wanted = fit_to_free_cores(self.chosen, self._logical, others)
        if wanted != self.current:
            self._backend.set_threads(wanted.decode, wanted.batch)
            log.info(
                "other programs use %.1f of %d cores: llama.cpp threads %s (chosen at load: %s)",
                others, self._logical, wanted.describe(), self.chosen.describe(),
            )  # fmt: skip
            self.current = wanted
        return self.current


class _ThreadedBackend(Protocol):
    def n_threads(self) -> int: ...
    def n_threads_batch(self) -> int: ...
    def set_threads(self, decode: int, batch: int) -> None: ...
