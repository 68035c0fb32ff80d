"""An estimate of the machine's memory bandwidth, from a short numpy copy benchmark.

Decode speed is bounded by the bytes a token reads (design notes section 4), so the fit estimator
wants bandwidth. A copy of a buffer far larger than any CPU cache reads and writes every byte once;
the buffer is split across threads (numpy releases the GIL while copying) because llama.cpp's
decode runs on all cores and one core alone cannot saturate the memory controller. The best of a
few runs is kept. 256 MB outgrows even a large server CPU's cache slice per thread. It is an
estimate: it takes about half a second (mostly page faults), and GPU memory is not measured.
"""

from __future__ import annotations

import itertools
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import psutil

DEFAULT_BUFFER_BYTES = 256 * 1024**2
MIN_BUFFER_BYTES = 32 * 1024**2
MAX_THREADS = 8

_cache: dict[tuple[int, int, int], float] = {}
_lock = threading.Lock()


def _buffer_bytes(requested: int) -> int:
    # Two buffers must fit comfortably: never take more than an eighth of the free memory.
    available = psutil.virtual_memory().available
    return max(MIN_BUFFER_BYTES, min(requested, available // 16))


def measure_memory_bandwidth(
    buffer_bytes: int = DEFAULT_BUFFER_BYTES, runs: int = 3, threads: int | None = None
) -> float:
    """Bytes per second moved by a large memory copy (read + write), best of `runs`.

    Cached per process for the same arguments: the machine does not change while we run.
    """
    if threads is None:
        threads = max(1, min(psutil.cpu_count(logical=False) or 1, MAX_THREADS))
    key = (buffer_bytes, runs, threads)
    with _lock:  # one benchmark at a time: two would halve each other's result
        cached = _cache.get(key)
        if cached is None:
            cached = _measure(_buffer_bytes(buffer_bytes), max(1, runs), threads)
            _cache[key] = cached
        return cached


def _measure(buffer_bytes: int, runs: int, threads: int) -> float:
    import numpy as np

    count = buffer_bytes // 8
    source = np.ones(count, dtype=np.float64)
    # The first run also pays the target's page faults; keeping the best run leaves them out.
    target = np.empty(count, dtype=np.float64)
    bounds = np.linspace(0, count, threads + 1, dtype=np.int64)
    chunks = [(int(a), int(b)) for a, b in itertools.pairwise(bounds)]

    def copy(chunk: tuple[int, int]) -> None:
        start, end = chunk
        np.copyto(target[start:end], source[start:end])

    best = float("inf")
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for _ in range(runs):
            started = time.perf_counter()
            list(pool.map(copy, chunks))
            best = min(best, time.perf_counter() - started)
    moved = 2 * count * 8  # every byte read once and written once
    return moved / max(best, 1e-9)
