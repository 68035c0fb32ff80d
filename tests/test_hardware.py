"""Hardware detection: vendor tools faked as real executables on PATH, ggml's real device list.

Each fake tool is a shell script that checks it was called with the arguments LeanCoder uses and
prints what the real tool prints, so the real subprocess path runs (lookup, timeout, kill, parse).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from app.cli.main import main as cli_main
from app.core.llm import devices as ggml_devices
from app.core.machine import probes as hardware_probes
from app.core.machine.bandwidth import measure_memory_bandwidth
from app.core.machine.hardware import detect_hardware, disk_free_bytes, merge_gpus
from app.core.machine.info import GpuInfo
from app.core.machine.probes import MIB

pytestmark = pytest.mark.skipif(os.name != "posix", reason="fake tools are shell scripts")

FakeTool = Callable[[str, str], Path]

NVIDIA_TWO_GPUS = """NVIDIA GeForce RTX 4090, 24564, 23012
NVIDIA RTX A6000, 49140, [N/A]
"""
ROCM_JSON = """WARNING: AMD GPU device(s) is/are in a low-power state. Check power control
{"card0": {"VRAM Total Memory (B)": "25753026560", "VRAM Total Used Memory (B)": "1073741824",
 "Card Series": "Radeon RX 7900 XTX", "Card Vendor": "Advanced Micro Devices, Inc. [AMD/ATI]"},
 "system": {"Driver version": "6.8.0"}}
"""


@pytest.fixture
def fake_tool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeTool:
    """install(name, body): an executable `name` running `body` (sh), first on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")

    def install(name: str, body: str) -> Path:
        script = bin_dir / name
        script.write_text("#!/bin/sh\n" + body + "\n", encoding="utf-8")
        script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        return script

    return install


def _prints_if_called_with(args: list[str], output: str, exit_status: int = 0) -> str:
    """A script body that prints `output` only when called with exactly `args`."""
    expected = " ".join(args).replace("'", "'\\''")
    return (
        f'if [ "$*" != \'{expected}\' ]; then echo "unexpected args: $*" >&2; exit 64; fi\n'
        f"cat <<'EOF'\n{output}EOF\nexit {exit_status}"
    )


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")  # a zombie has ended; only its exit status is left


# -- NVIDIA ----------------------------------------------------------------------------------------


def test_nvidia_smi_output_becomes_gpus(fake_tool: FakeTool) -> None:
    fake_tool(
        "nvidia-smi", _prints_if_called_with(hardware_probes.NVIDIA_SMI_ARGS, NVIDIA_TWO_GPUS)
    )
    result = hardware_probes.probe_nvidia_smi(timeout_s=5)
    assert result.notes == ()
    assert [(g.name, g.backend, g.source) for g in result.gpus] == [
        ("NVIDIA GeForce RTX 4090", "CUDA", "nvidia-smi"),
        ("NVIDIA RTX A6000", "CUDA", "nvidia-smi"),
    ]
    assert result.gpus[0].total_bytes == 24564 * MIB
    assert result.gpus[0].free_bytes == 23012 * MIB
    assert result.gpus[1].free_bytes is None  # "[N/A]"
    assert not result.gpus[0].usable_by_llama


def test_nvidia_smi_garbage_is_a_note(fake_tool: FakeTool) -> None:
    fake_tool("nvidia-smi", "echo 'this is not, a csv'; echo '<html>'")
    result = hardware_probes.probe_nvidia_smi(timeout_s=5)
    assert result.gpus == ()
    assert len(result.notes) == 1 and "nvidia-smi" in result.notes[0]


def test_nvidia_smi_without_driver_is_a_note(fake_tool: FakeTool) -> None:
    message = "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver."
    fake_tool("nvidia-smi", f'echo "{message}"; exit 9')  # the real one says it on stdout
    result = hardware_probes.probe_nvidia_smi(timeout_s=5)
    assert result.gpus == ()
    assert message in result.notes[0]


def test_a_hanging_tool_is_killed_at_the_timeout(fake_tool: FakeTool, tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    # The shell starts a child and waits: the kill must reach the child too.
    fake_tool("nvidia-smi", f"sleep 30 &\necho $! > '{pid_file}'\nwait")
    started = time.monotonic()
    result = hardware_probes.probe_nvidia_smi(timeout_s=0.5)
    elapsed = time.monotonic() - started
    assert elapsed < 3.0
    assert result.gpus == ()
    assert "did not answer within 0.5 s" in result.notes[0]
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 3
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)


def test_a_missing_tool_is_no_error_and_no_note(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    for name, probe in hardware_probes.PROBES.items():
        result = probe(timeout_s=1, path=str(empty))
        assert result.gpus == () and result.notes == (), name
    assert hardware_probes.run_tool("nvidia-smi", [], timeout_s=1, path=str(empty)).status == (
        "missing"
    )


# -- AMD -------------------------------------------------------------------------------------------


def test_rocm_smi_json_becomes_gpus(fake_tool: FakeTool) -> None:
    fake_tool("rocm-smi", _prints_if_called_with(hardware_probes.ROCM_SMI_ARGS, ROCM_JSON))
    result = hardware_probes.probe_rocm_smi(timeout_s=5)
    assert result.notes == ()
    (gpu,) = result.gpus
    assert (gpu.name, gpu.backend, gpu.source) == ("Radeon RX 7900 XTX", "ROCm", "rocm-smi")
    assert gpu.total_bytes == 25753026560
    assert gpu.free_bytes == 25753026560 - 1073741824


def test_rocm_smi_garbage_is_a_note(fake_tool: FakeTool) -> None:
    fake_tool("rocm-smi", "echo 'ERROR: GPU[0] : unknown field {'")
    result = hardware_probes.probe_rocm_smi(timeout_s=5)
    assert result.gpus == ()
    assert "rocm-smi" in result.notes[0]


# -- macOS -----------------------------------------------------------------------------------------


def _sysctl_output(memsize: int, brand: str, arm64: int, limit_mb: int | None = None) -> str:
    lines = [f"hw.memsize: {memsize}", f"machdep.cpu.brand_string: {brand}"]
    lines.append(f"hw.optional.arm64: {arm64}")
    if limit_mb is not None:
        lines.append(f"iogpu.wired_limit_mb: {limit_mb}")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("memsize", "limit_mb", "expected_share"),
    [(16 * 1024**3, None, 2 / 3), (64 * 1024**3, None, 0.75), (32 * 1024**3, 26000, None)],
)
def test_apple_silicon_unified_memory(
    fake_tool: FakeTool, memsize: int, limit_mb: int | None, expected_share: float | None
) -> None:
    # Older macOS has no iogpu.wired_limit_mb: sysctl prints the rest and exits 1.
    output = _sysctl_output(memsize, "Apple M2 Pro", 1, limit_mb)
    status = 0 if limit_mb is not None else 1
    fake_tool(
        "sysctl", _prints_if_called_with(hardware_probes.SYSCTL_KEYS, output, exit_status=status)
    )
    result = hardware_probes.probe_sysctl(timeout_s=5)
    (gpu,) = result.gpus
    assert (gpu.name, gpu.backend, gpu.source) == ("Apple M2 Pro GPU", "Metal", "sysctl")
    assert gpu.unified_memory and gpu.free_bytes is None
    expected = int(memsize * expected_share) if expected_share else limit_mb * MIB  # type: ignore[operator]
    assert gpu.total_bytes == expected
    assert result.values["machdep.cpu.brand_string"] == "Apple M2 Pro"
    assert "estimated" in result.notes[0]


def test_intel_mac_has_no_unified_gpu(fake_tool: FakeTool) -> None:
    output = _sysctl_output(16 * 1024**3, "Intel(R) Core(TM) i9-9880H CPU @ 2.30GHz", 0)
    fake_tool("sysctl", _prints_if_called_with(hardware_probes.SYSCTL_KEYS, output, 1))
    result = hardware_probes.probe_sysctl(timeout_s=5)
    assert result.gpus == () and result.notes == ()


# -- Windows ---------------------------------------------------------------------------------------


def test_windows_adapters_prefer_the_registry_size(fake_tool: FakeTool) -> None:
    rows = [
        {"Source": "registry", "Name": "NVIDIA GeForce RTX 3080", "Bytes": 10737418240},
        {"Source": "cim", "Name": "NVIDIA GeForce RTX 3080", "Bytes": 4293918720},
        {"Source": "cim", "Name": "AMD Radeon RX 6800", "Bytes": 4293918720},
        {"Source": "cim", "Name": "Microsoft Basic Display Adapter", "Bytes": 0},
    ]
    fake_tool(
        "powershell", _prints_if_called_with(hardware_probes.WINDOWS_ARGS, json.dumps(rows) + "\n")
    )
    result = hardware_probes.probe_windows(timeout_s=5)
    assert [(g.name, g.total_bytes, g.backend) for g in result.gpus] == [
        ("NVIDIA GeForce RTX 3080", 10737418240, "CUDA"),
        ("AMD Radeon RX 6800", 4293918720, "unknown"),
    ]
    # Only the adapter whose size came from WMI alone is capped at 4 GB.
    assert len(result.notes) == 1 and "AMD Radeon RX 6800" in result.notes[0]


def test_windows_single_adapter_and_garbage(fake_tool: FakeTool) -> None:
    one = {"Source": "cim", "Name": "Intel(R) UHD Graphics 630", "Bytes": 1073741824}
    fake_tool("powershell", f"echo '{json.dumps(one)}'")
    (gpu,) = hardware_probes.probe_windows(timeout_s=5).gpus
    assert (gpu.name, gpu.total_bytes, gpu.source) == (
        "Intel(R) UHD Graphics 630",
        2**30,
        "windows",
    )
    fake_tool("powershell", "echo 'Get-CimInstance : Access denied'")
    garbage = hardware_probes.probe_windows(timeout_s=5)
    assert garbage.gpus == () and "PowerShell" in garbage.notes[0]


# -- merging ---------------------------------------------------------------------------------------


def _gpu(name: str, source: str, backend: str = "CUDA") -> GpuInfo:
    return GpuInfo(0, name, backend, 8 * 1024**3, None, source)  # type: ignore[arg-type]


def test_merge_prefers_ggml_and_drops_duplicates() -> None:
    ggml = [_gpu("NVIDIA GeForce RTX 4090", "ggml")]
    others = [
        _gpu("NVIDIA GeForce RTX 4090", "nvidia-smi"),
        _gpu("NVIDIA GeForce RTX 4090", "windows"),
        _gpu("AMD Radeon RX 6800", "windows", "unknown"),
    ]
    merged, notes = merge_gpus(ggml, others)
    assert [(g.index, g.name, g.source) for g in merged] == [
        (0, "NVIDIA GeForce RTX 4090", "ggml"),
        (1, "AMD Radeon RX 6800", "windows"),
    ]
    assert "no backend for it" in notes[0]


def test_merge_without_ggml_keeps_one_entry_per_card() -> None:
    others = [
        _gpu("NVIDIA GeForce RTX 3080", "nvidia-smi"),
        _gpu("NVIDIA GeForce RTX 3080", "windows"),
    ]
    merged, notes = merge_gpus([], others)
    assert [g.source for g in merged] == ["nvidia-smi"]
    assert "CPU-only build" in notes[0]


# -- ggml, on this machine -------------------------------------------------------------------------


def test_ggml_lists_the_cpu_device_with_memory() -> None:
    assert ggml_devices.unavailable_reason() is None
    devices = ggml_devices.list_devices()
    cpu = [d for d in devices if d.type == "cpu"]
    assert cpu, devices
    assert cpu[0].backend == "CPU"
    assert 0 < cpu[0].free_bytes <= cpu[0].total_bytes
    # ggml's CPU device reports the machine's RAM, which psutil reads from the same place.
    assert abs(cpu[0].total_bytes - psutil.virtual_memory().total) < 64 * MIB
    assert [d.index for d in devices] == list(range(len(devices)))


def test_cpu_buffer_type_is_the_cpu_buft() -> None:
    buft = ggml_devices.cpu_buffer_type()
    assert buft.value
    assert ggml_devices.buffer_type_name(buft) == "CPU"
    assert ggml_devices.cpu_buffer_type().value == buft.value  # one static object per process


def test_cpu_features_come_from_llama_system_info() -> None:
    info = ggml_devices.system_info()
    assert info.startswith("CPU : ")
    features = ggml_devices.cpu_features()
    parsed = ggml_devices.parse_system_info(info)["CPU"]
    assert features and all(parsed[f] == "1" for f in features)
    assert "OPENMP" not in features and "REPACK" not in features  # build options, not the CPU
    sections = ggml_devices.parse_system_info(
        "CPU : NEON = 1 | ARM_FMA = 1 | SVE = 0 | OPENMP = 1 | Metal : EMBED_LIBRARY = 1 | "
    )
    assert sections == {
        "CPU": {"NEON": "1", "ARM_FMA": "1", "SVE": "0", "OPENMP": "1"},
        "Metal": {"EMBED_LIBRARY": "1"},
    }


# -- end to end ------------------------------------------------------------------------------------


def test_detect_hardware_with_a_gpu_only_nvidia_smi_sees(
    fake_tool: FakeTool, tmp_path: Path
) -> None:
    fake_tool(
        "nvidia-smi", _prints_if_called_with(hardware_probes.NVIDIA_SMI_ARGS, NVIDIA_TWO_GPUS)
    )
    fake_tool("rocm-smi", "exit 2")  # installed without an AMD GPU: a note at most
    models = tmp_path / "not" / "yet" / "models"
    info = detect_hardware(models, timeout_s=5, platform="linux")
    ggml_gpus = [d for d in ggml_devices.list_devices() if d.is_gpu]
    assert [g.source for g in info.gpus][: len(ggml_gpus)] == ["ggml"] * len(ggml_gpus)
    if not ggml_gpus:  # this machine's llama.cpp is a CPU-only build
        assert [g.name for g in info.gpus] == ["NVIDIA GeForce RTX 4090", "NVIDIA RTX A6000"]
        assert info.offload_gpus == ()
        assert any("CPU-only build" in note for note in info.notes)
    assert 0 < info.ram_available_bytes <= info.ram_total_bytes == psutil.virtual_memory().total
    assert info.cpu.logical_cores >= info.cpu.physical_cores >= 1 and info.cpu.name
    assert info.disk_path == str(models)
    assert info.disk_free_bytes is not None
    assert abs(info.disk_free_bytes - shutil.disk_usage(tmp_path).free) < 256 * MIB
    assert info.memory_bandwidth_bytes_per_s is None
    json.dumps(info.to_dict())  # JSON-ready


def test_detect_hardware_respects_the_timeout(fake_tool: FakeTool) -> None:
    fake_tool("nvidia-smi", "exec sleep 30")
    fake_tool("rocm-smi", "exec sleep 30")
    started = time.monotonic()
    info = detect_hardware(timeout_s=0.5, platform="linux")
    assert time.monotonic() - started < 4.0
    assert sum("did not answer" in note for note in info.notes) == 2


def test_detect_hardware_on_a_mac(fake_tool: FakeTool) -> None:
    output = _sysctl_output(36 * 10**9, "Apple M3 Pro", 1, 0)
    fake_tool("sysctl", _prints_if_called_with(hardware_probes.SYSCTL_KEYS, output))
    info = detect_hardware(timeout_s=5, platform="darwin")
    assert info.cpu.name == "Apple M3 Pro"
    metal = [g for g in info.gpus if g.source == "sysctl"]
    assert [(g.backend, g.unified_memory, g.total_bytes) for g in metal] == [
        ("Metal", True, int(36 * 10**9 * 0.75))
    ]


def test_disk_free_of_a_missing_folder_is_its_parents(tmp_path: Path) -> None:
    free = disk_free_bytes(tmp_path / "a" / "b" / "c")
    assert free is not None and abs(free - shutil.disk_usage(tmp_path).free) < 256 * MIB


def test_memory_bandwidth_is_measured_once() -> None:
    first = measure_memory_bandwidth(32 * MIB, runs=2, threads=1)
    assert first > 1e8  # any machine moves more than 100 MB/s
    started = time.monotonic()
    assert measure_memory_bandwidth(32 * MIB, runs=2, threads=1) == first
    assert time.monotonic() - started < 0.05


# -- CLI -------------------------------------------------------------------------------------------


def test_cli_hardware_json(
    fake_tool: FakeTool, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_tool(
        "nvidia-smi", _prints_if_called_with(hardware_probes.NVIDIA_SMI_ARGS, NVIDIA_TWO_GPUS)
    )
    assert cli_main(["hardware", "--json", "--models-dir", str(tmp_path)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["ram_total_bytes"] == psutil.virtual_memory().total
    assert data["disk_path"] == str(tmp_path)
    assert data["cpu"]["features"] == list(ggml_devices.cpu_features())
    names = [g["name"] for g in data["gpus"]]
    assert "NVIDIA GeForce RTX 4090" in names
    assert all(isinstance(g["usable_by_llama"], bool) for g in data["gpus"])
    assert data["memory_bandwidth_bytes_per_s"] is None


def test_cli_hardware_text(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert cli_main(["hardware", "--models-dir", str(tmp_path), "--bandwidth"]) == 0
    out = capsys.readouterr().out
    labels = [line.split("  ")[0] for line in out.splitlines()]
    assert labels[:3] == ["RAM", "CPU", "CPU features"]
    assert f"free at {tmp_path}" in out
    assert "GB/s (estimate)" in out


def test_without_llama_cpp_libraries_the_report_still_comes(tmp_path: Path) -> None:
    """A broken llama.cpp install (no shared libraries where llama_cpp looks) costs the GPU view
    and nothing else: the command still answers, with a note saying why."""
    import subprocess
    import sys

    empty = tmp_path / "no-libs"
    empty.mkdir()
    env = {**os.environ, "LLAMA_CPP_LIB_PATH": str(empty), "QT_QPA_PLATFORM": "offscreen"}
    done = subprocess.run(
        [sys.executable, "-m", "app", "hardware", "--json", "--models-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert any("device list is unavailable" in note for note in data["notes"])
    assert data["ram_total_bytes"] == psutil.virtual_memory().total
    assert data["cpu"]["name"]
    if "avx2" in Path("/proc/cpuinfo").read_text():  # features then come from the kernel's flags
        assert "AVX2" in data["cpu"]["features"]
