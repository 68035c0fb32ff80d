"""How many CPU threads llama.cpp gets: one place decides, for every front end and load path.

The rule follows llama.cpp's own defaults: decode (one token at a time, bound by memory bandwidth,
its threads wait for each other at every step) runs on the physical cores, or only the performance
cores of a hybrid CPU where the OS says which they are; prompt processing (batched, compute bound)
uses every logical core. A user's explicit setting wins for both, as llama.cpp's `-t` does (its
`-tb` follows `-t`), but is clamped to the logical cores this process may run on: far more threads
than cores crash or hang llama.cpp (100000: SIGSEGV, 40000: a libgomp abort, 10000: a hang).

This lives in `app.core.llm` because every load goes through the engine here, and the layers above
(machine, session, the front ends) may all import it; `app.core.machine.hardware` reports the same
facts (`detect_cores`) in `leancoder hardware`.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import psutil

# llama.cpp's GGML_MAX_N_THREADS: ggml refuses more, whatever the machine.
GGML_MAX_THREADS = 512
# A cpulist in sysfs longer than this is not one the kernel wrote.
_MAX_CPULIST_CHARS = 4096
_SYS_CPU = Path("/sys/devices/system/cpu")

FrontEnd = Literal["headless", "window"]

# The window's rule, by measurement on a quiet 2-core machine (bench/RESULTS.md, "Threads"): the
# window decodes as fast on one thread as on two (53.2 against 54.6 tok/s; headless, two threads
# give ~98 against 63), because its GUI thread renders while llama.cpp's threads wait for each
# other at every step, and two threads double the GUI's p99 lateness (2.6 against 4.7 ms). So the
# window leaves one physical core to the GUI on machines with at most WINDOW_SPARE_UP_TO physical
# cores; above that one core more for decoding is worth more than the GUI's share of one. Only
# the 2-core figure is measured here; the bound is a guess to re-measure on a bigger machine.
WINDOW_SPARE_UP_TO = 4


@dataclass(frozen=True, slots=True)
class CoreCounts:
    """What the OS says about the cores this process may use."""

    physical: int
    logical: int
    # Physical performance cores of a hybrid CPU (Intel P-cores, Apple P-cores, ARM big cores),
    # when the OS says which they are; None on a CPU with one kind of core or an OS that won't say.
    performance: int | None = None


@dataclass(frozen=True, slots=True)
class ThreadChoice:
    decode: int  # llama.cpp's n_threads
    batch: int  # llama.cpp's n_threads_batch (prompt processing)
    note: str = ""  # a sentence for the user when their setting was changed; "" otherwise

    def describe(self) -> str:
        """ "2 for decoding, 2 for prompts"."""
        return f"{self.decode} for decoding, {self.batch} for prompts"


def choose_threads(
    cores: CoreCounts, explicit: int | None = None, front_end: FrontEnd = "headless"
) -> ThreadChoice:
    """The decode and prompt thread counts for this machine, a setting (None or 0: automatic)
    and the front end that runs the model. Never raises: a bad setting becomes a note."""
    logical = max(1, min(cores.logical, GGML_MAX_THREADS))
    if explicit is not None and explicit != 0:
        if explicit < 0:
            auto = choose_threads(cores, None, front_end)
            note = f"{explicit} CPU threads is not a thread count; using {auto.decode}."
            return ThreadChoice(auto.decode, auto.batch, note)
        if explicit > logical:
            return ThreadChoice(
                logical,
                logical,
                f"{explicit:,} CPU threads asked for, but this machine has {logical} logical "
                f"core{'s' if logical != 1 else ''}: using {logical}.",
            )
        return ThreadChoice(explicit, explicit)
    physical = max(1, min(cores.physical, logical))
    decode = physical
    if cores.performance is not None and 0 < cores.performance < physical:
        decode = cores.performance
    if front_end == "window" and 1 < decode <= WINDOW_SPARE_UP_TO:
        decode -= 1  # a core for the GUI thread (see WINDOW_SPARE_UP_TO)
    return ThreadChoice(decode, logical)


@functools.cache
def detect_cores() -> CoreCounts:
    """This machine's cores, as far as this process may use them (affinity, cgroup pinning).

    Cached: the answer does not change while the app runs, and every load asks.
    """
    logical = psutil.cpu_count(logical=True) or os.cpu_count() or 1
    allowed = _allowed_cpus()
    if allowed:
        logical = min(logical, len(allowed))
    physical = psutil.cpu_count(logical=False) or logical
    performance: int | None = None
    if sys.platform.startswith("linux"):
        performance = _linux_performance_cores(allowed)
    elif sys.platform == "darwin":
        performance = _darwin_performance_cores()
    return CoreCounts(int(min(physical, logical)), int(logical), performance)


def _allowed_cpus() -> set[int]:
    getter = getattr(os, "sched_getaffinity", None)  # Linux only
    if getter is None:
        return set()
    try:
        return set(getter(0))
    except OSError:
        return set()


def parse_cpulist(text: str) -> set[int]:
    """The kernel's CPU list format ("0-3,8,10-11") as a set; empty for anything malformed."""
    text = text.strip()
    if not text or len(text) > _MAX_CPULIST_CHARS:
        return set()
    cpus: set[int] = set()
    try:
        for part in text.split(","):
            low, dash, high = part.partition("-")
            first, last = int(low), int(high if dash else low)
            if first < 0 or last < first or last - first > _MAX_CPULIST_CHARS:
                return set()
            cpus.update(range(first, last + 1))
    except ValueError:
        return set()
    return cpus


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii", errors="replace")[:_MAX_CPULIST_CHARS]
    except OSError:
        return ""


def _linux_performance_cores(allowed: set[int], sys_cpu: Path = _SYS_CPU) -> int | None:
    """Physical performance cores: Intel hybrid CPUs list them in /sys/devices/cpu_core/cpus;
    ARM big.LITTLE gives each CPU a cpu_capacity, the big cores the highest."""
    fast = parse_cpulist(_read(sys_cpu.parent.parent / "cpu_core" / "cpus"))
    if not fast:
        capacities: dict[int, int] = {}
        for cpu in parse_cpulist(_read(sys_cpu / "online")):
            value = _read(sys_cpu / f"cpu{cpu}" / "cpu_capacity").strip()
            if value.isdigit():
                capacities[cpu] = int(value)
        if len(set(capacities.values())) > 1:
            top = max(capacities.values())
            fast = {cpu for cpu, capacity in capacities.items() if capacity == top}
    if allowed:
        fast &= allowed
    if not fast:
        return None
    # One entry per physical core: hyperthreads of a core share its thread_siblings_list.
    siblings = {_read(sys_cpu / f"cpu{cpu}" / "topology" / "thread_siblings_list").strip() or
                str(cpu) for cpu in fast}  # fmt: skip
    return len(siblings)


def _darwin_performance_cores() -> int | None:
    try:
        levels = _sysctl_int("hw.nperflevels")
        if levels is None or levels < 2:
            return None
        return _sysctl_int("hw.perflevel0.physicalcpu")
    except (OSError, subprocess.SubprocessError):
        return None


def _sysctl_int(name: str) -> int | None:
    done = subprocess.run(
        ["sysctl", "-n", name], capture_output=True, text=True, timeout=2, check=False
    )
    value = done.stdout.strip()
    return int(value) if done.returncode == 0 and value.isdigit() else None
