"""CPU threads: the choice from the machine's cores, and what llama.cpp really runs with.

The rule is unit-tested as a pure function; the real loads read the count back from llama.cpp's
context (`llama_n_threads`, `llama_n_threads_batch`), through the engine, the CLI and the window.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import llama_cpp
import pytest
from pytestqt.qtbot import QtBot

from app.cli.main import build_parser
from app.core.llm.engine import Engine, LoadOptions
from app.core.llm.threads import (
    GGML_MAX_THREADS,
    CoreCounts,
    ThreadChoice,
    _linux_performance_cores,
    choose_threads,
    detect_cores,
    parse_cpulist,
)
from app.core.machine.hardware import detect_cpu
from app.core.machine.info import CpuInfo, summary_rows
from tests.test_cli import run_cli
from tests.ui_support import WindowFactory, load_starter

# -- the rule ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cores", "expected"),
    [
        (CoreCounts(physical=2, logical=2), ThreadChoice(2, 2)),  # the test machine: both cores
        (CoreCounts(physical=1, logical=2), ThreadChoice(1, 2)),  # one core with hyperthreading
        (CoreCounts(physical=8, logical=16), ThreadChoice(8, 16)),  # decode: physical; prompt: all
        (CoreCounts(physical=1, logical=1), ThreadChoice(1, 1)),
        # An odd report (more physical than logical, or zero) never gives more than may run.
        (CoreCounts(physical=4, logical=2), ThreadChoice(2, 2)),
        (CoreCounts(physical=0, logical=0), ThreadChoice(1, 1)),
    ],
)
def test_default_threads_follow_llama_cpp(cores: CoreCounts, expected: ThreadChoice) -> None:
    assert choose_threads(cores) == expected


def test_hybrid_cpus_decode_on_performance_cores() -> None:
    # Intel 13900K: 8 P-cores (16 threads) + 16 E-cores = 24 physical, 32 logical.
    choice = choose_threads(CoreCounts(physical=24, logical=32, performance=8))
    assert choice == ThreadChoice(8, 32)
    # A report that says nothing useful falls back to the physical cores.
    assert choose_threads(CoreCounts(4, 4, performance=0)).decode == 4
    assert choose_threads(CoreCounts(4, 4, performance=9)).decode == 4


def test_explicit_setting_wins_for_decode_and_prompt() -> None:
    cores = CoreCounts(physical=8, logical=16)
    assert choose_threads(cores, 3) == ThreadChoice(3, 3)
    assert choose_threads(cores, 16, "window") == ThreadChoice(16, 16)
    assert choose_threads(cores, 0) == choose_threads(cores)  # 0: automatic


@pytest.mark.parametrize("asked", [17, 10_000, 40_000, 100_000, 2**40])
def test_explicit_setting_is_clamped_to_logical_cores(asked: int) -> None:
    choice = choose_threads(CoreCounts(physical=8, logical=16), asked)
    assert (choice.decode, choice.batch) == (16, 16)
    assert f"{asked:,} CPU threads asked for" in choice.note
    assert "16 logical cores: using 16" in choice.note


def test_negative_setting_becomes_the_default_with_a_note() -> None:
    choice = choose_threads(CoreCounts(physical=4, logical=8), -5)
    assert (choice.decode, choice.batch) == (4, 8)
    assert "-5 CPU threads is not a thread count" in choice.note


def test_never_more_than_ggml_allows() -> None:
    huge = CoreCounts(physical=1024, logical=2048)
    assert choose_threads(huge) == ThreadChoice(GGML_MAX_THREADS, GGML_MAX_THREADS)
    assert choose_threads(huge, 1000).decode == GGML_MAX_THREADS


@pytest.mark.parametrize(
    ("cores", "window"),
    [
        (CoreCounts(1, 1), ThreadChoice(1, 1)),
        (CoreCounts(2, 2), ThreadChoice(1, 2)),  # measured: one thread is as fast, GUI smoother
        (CoreCounts(4, 8), ThreadChoice(3, 8)),
        (CoreCounts(8, 16), ThreadChoice(8, 16)),
        (CoreCounts(24, 32, 8), ThreadChoice(8, 32)),
    ],
)
def test_window_uses_the_measured_rule(cores: CoreCounts, window: ThreadChoice) -> None:
    # Measured (bench/RESULTS.md, "Threads"): on small machines the window leaves a core to the GUI.
    assert choose_threads(cores, front_end="window") == window
    assert choose_threads(cores, 1, front_end="window") == ThreadChoice(1, 1)


def test_an_explicit_count_wins_in_the_window_too() -> None:
    assert choose_threads(CoreCounts(2, 2), 2, front_end="window") == ThreadChoice(2, 2)


# -- the machine's facts -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "cpus"),
    [
        ("0-3,8,10-11\n", {0, 1, 2, 3, 8, 10, 11}),
        ("5", {5}),
        ("", set()),
        ("0-", set()),
        ("3-1", set()),
        ("-1", set()),
        ("a-b", set()),
        ("0-99999999999", set()),  # bounded: never a range that would take gigabytes
        ("1," * 5000, set()),
    ],
)
def test_parse_cpulist(text: str, cpus: set[int]) -> None:
    assert parse_cpulist(text) == cpus


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="ascii")


def test_intel_hybrid_performance_cores_from_sysfs(tmp_path: Path) -> None:
    """A sysfs tree laid out as on an i7-12700 (8 P-cores with 2 threads, 4 E-cores)."""
    sys_cpu = tmp_path / "devices" / "system" / "cpu"
    _write(tmp_path / "devices" / "cpu_core" / "cpus", "0-15\n")
    _write(tmp_path / "devices" / "cpu_atom" / "cpus", "16-19\n")
    for cpu in range(16):
        core = cpu // 2
        _write(sys_cpu / f"cpu{cpu}/topology/thread_siblings_list", f"{core * 2}-{core * 2 + 1}\n")
    assert _linux_performance_cores(set(), sys_cpu) == 8
    # Pinned to three P-core threads (two cores): only those count.
    assert _linux_performance_cores({0, 1, 2, 17}, sys_cpu) == 2


def test_arm_big_little_performance_cores_from_capacity(tmp_path: Path) -> None:
    sys_cpu = tmp_path / "devices" / "system" / "cpu"
    _write(sys_cpu / "online", "0-7\n")
    for cpu in range(8):
        _write(sys_cpu / f"cpu{cpu}/cpu_capacity", "1024\n" if cpu >= 6 else "446\n")
        _write(sys_cpu / f"cpu{cpu}/topology/thread_siblings_list", f"{cpu}\n")
    assert _linux_performance_cores(set(), sys_cpu) == 2


def test_one_kind_of_core_has_no_performance_count(tmp_path: Path) -> None:
    sys_cpu = tmp_path / "devices" / "system" / "cpu"
    _write(sys_cpu / "online", "0-3\n")
    for cpu in range(4):
        _write(sys_cpu / f"cpu{cpu}/cpu_capacity", "1024\n")
    assert _linux_performance_cores(set(), sys_cpu) is None
    assert _linux_performance_cores(set(), tmp_path / "missing") is None


def test_detected_cores_are_what_this_process_may_use() -> None:
    cores = detect_cores()
    assert 1 <= cores.physical <= cores.logical
    if hasattr(os, "sched_getaffinity"):
        assert cores.logical <= len(os.sched_getaffinity(0))
    # The hardware report uses the very same counts.
    cpu = detect_cpu([], {}, "linux")
    assert (cpu.physical_cores, cpu.logical_cores, cpu.performance_cores) == (
        cores.physical,
        cores.logical,
        cores.performance,
    )


def test_hardware_rows_say_what_leancoder_uses() -> None:
    from app.core.machine.info import HardwareInfo

    info = HardwareInfo(
        ram_total_bytes=16 * 1024**3,
        ram_available_bytes=8 * 1024**3,
        cpu=CpuInfo("Intel Core i9-13900K", 24, 32, ("AVX2",), performance_cores=8),
        gpus=(),
        disk_path="/tmp",
        disk_free_bytes=None,
    )
    rows = dict(summary_rows(info))
    assert rows["Threads"] == (
        "8 for decoding, 32 for prompts (8 performance cores); the window the same"
    )
    assert info.to_dict()["threads"] == {
        "headless": {"decode": 8, "batch": 32},
        "window": {"decode": 8, "batch": 32},
    }


# -- real loads: the count llama.cpp runs with ---------------------------------------------------


def _context_threads(engine: Engine) -> tuple[int, int]:
    llm = engine._llm
    assert llm is not None
    return llama_cpp.llama_n_threads(llm._ctx.ctx), llama_cpp.llama_n_threads_batch(llm._ctx.ctx)


@pytest.mark.model
def test_engine_default_passes_the_chosen_count(starter_path: Path) -> None:
    expected = choose_threads(detect_cores())
    engine = Engine()
    try:
        info = engine.load(starter_path, LoadOptions(n_ctx=256))
        assert _context_threads(engine) == (expected.decode, expected.batch)
        assert (info.n_threads, info.n_threads_batch) == (expected.decode, expected.batch)
        assert not any("CPU threads" in note for note in info.notes)
        info = engine.load(starter_path, LoadOptions(n_ctx=256, n_threads=1))
        assert _context_threads(engine) == (1, 1)
        info = engine.load(starter_path, LoadOptions(n_ctx=256, n_threads=100_000))
        logical = detect_cores().logical
        assert _context_threads(engine) == (logical, logical)
        assert any("100,000 CPU threads asked for" in note for note in info.notes)
    finally:
        engine.unload()


@pytest.mark.model
def test_cli_threads_read_back_from_llama_cpp() -> None:
    expected = choose_threads(detect_cores())
    ask = ("ask", "--model", "starter", "--max-tokens", "4", "--seed", "1", "--json", "Hi")
    default = run_cli(*ask)
    assert default.returncode == 0, default.stderr
    assert json.loads(default.stdout)["threads"] == {
        "decode": expected.decode,
        "batch": expected.batch,
    }
    one = run_cli(*ask, "--threads", "1")
    assert one.returncode == 0, one.stderr
    assert json.loads(one.stdout)["threads"] == {"decode": 1, "batch": 1}


@pytest.mark.model
def test_cli_clamps_a_huge_thread_count_with_a_note() -> None:
    logical = detect_cores().logical
    result = run_cli(
        "ask", "--model", "starter", "--max-tokens", "4", "--json", "--threads", "100000", "Hi"
    )
    assert result.returncode == 0, result.stderr
    assert f"note: 100,000 CPU threads asked for, but this machine has {logical}" in result.stderr
    assert json.loads(result.stdout)["threads"] == {"decode": logical, "batch": logical}


@pytest.mark.parametrize("command", ["ask", "compare", "bench-thinking", "edit"])
def test_every_loading_command_takes_threads(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    extra = {"ask": ["Hi"], "compare": ["Hi"], "edit": ["--folder", ".", "x"]}.get(command, [])
    args = build_parser().parse_args([command, "--model", "starter", "--threads", "3", *extra])
    assert args.threads == 3
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([command, "--model", "starter", "--threads", "-2", *extra])
    assert exit_info.value.code == 2
    assert "must be 1 or more" in capsys.readouterr().err


def test_hardware_command_shows_threads() -> None:
    result = run_cli("hardware", "--timeout", "1")
    assert result.returncode == 0, result.stderr
    expected = choose_threads(detect_cores())
    rows = [line.split(None, 1) for line in result.stdout.splitlines()]
    threads = [text for label, text in rows if label == "Threads"]
    assert threads and threads[0].startswith(expected.describe())


@pytest.mark.model
def test_window_loads_with_its_thread_choice(make_window: WindowFactory, qtbot: QtBot) -> None:
    window = make_window(load=False)
    load_starter(qtbot, window)
    expected = choose_threads(detect_cores(), front_end="window")
    assert window.model_info is not None
    assert (window.model_info.n_threads, window.model_info.n_threads_batch) == (
        expected.decode,
        expected.batch,
    )
    window.settings.n_threads = 100_000  # a hand-edited settings file
    load_starter(qtbot, window)
    logical = detect_cores().logical
    assert window.model_info.n_threads == logical
    assert any("100,000 CPU threads asked for" in note for note in window.model_info.notes)
