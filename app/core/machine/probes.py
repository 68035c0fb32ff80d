"""Vendor tools that report GPUs when llama.cpp's own view (ggml devices) does not.

Each probe runs one tool with a timeout and reads its output; a missing tool, a tool that fails or
hangs, or output we cannot read is never an error: the probe returns no GPU and at most a note.
`path` (a PATH string) picks where tools are looked up, so tests can put fake tools first.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from typing import Any, Literal

from app.core.machine.info import GpuBackend, GpuInfo

MIB = 1024**2
GIB = 1024**3
# Win32_VideoController.AdapterRAM is a uint32: it cannot say more than 4 GiB.
WINDOWS_ADAPTER_RAM_CAP = 2**32 - 1
# Adapters Windows lists that are not GPUs a model could run on.
_NOT_A_GPU = re.compile(r"microsoft basic|remote display|hyper-v|virtual display|citrix", re.I)


@dataclass(frozen=True, slots=True)
class ToolOutput:
    status: Literal["ok", "missing", "timeout", "failed"]
    stdout: str = ""
    detail: str = ""  # the first line of stderr, or why it could not start


@dataclass(frozen=True, slots=True)
class ProbeResult:
    gpus: tuple[GpuInfo, ...] = ()
    notes: tuple[str, ...] = ()
    values: dict[str, str] = field(default_factory=dict)  # extra facts (sysctl: cpu brand)


def run_tool(
    name: str, args: list[str], *, timeout_s: float, path: str | None = None
) -> ToolOutput:
    """Run `name` (looked up on `path`, else PATH) with a hard timeout; never raises."""
    exe = shutil.which(name, path=path)
    if exe is None:
        return ToolOutput("missing")
    env = dict(os.environ)
    if path is not None:
        env["PATH"] = path
    if os.name == "posix":
        env["LC_ALL"] = "C"  # numbers and messages in one known format
    try:
        proc = subprocess.Popen(
            [exe, *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            # Own process group, so a timeout can kill whatever the tool started too.
            start_new_session=os.name == "posix",
            creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0),
        )
    except OSError as exc:
        return ToolOutput("failed", detail=str(exc))
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _kill(proc)
        return ToolOutput("timeout")
    stdout = out.decode("utf-8", errors="replace")
    first_err = next(iter(err.decode("utf-8", errors="replace").strip().splitlines()), "")
    if proc.returncode != 0:
        # nvidia-smi says why it failed on stdout ("couldn't communicate with the driver").
        first_out = next(iter(stdout.strip().splitlines()), "")
        detail = first_err or first_out or f"exit status {proc.returncode}"
        return ToolOutput("failed", stdout, detail)
    return ToolOutput("ok", stdout, first_err)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    try:
        if os.name == "posix":
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
    except OSError:
        pass  # already gone
    # A grandchild that left the group may still hold the pipes: do not wait for it.
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.communicate(timeout=1.0)


def _problem_note(tool: str, output: ToolOutput, timeout_s: float) -> tuple[str, ...]:
    if output.status == "timeout":
        return (f"{tool} did not answer within {timeout_s:g} s; its GPUs are not listed.",)
    if output.status == "failed":
        return (f"{tool} failed ({output.detail}); its GPUs are not listed.",)
    return ()


def _unreadable(tool: str) -> str:
    return f"{tool} printed output LeanCoder could not read; its GPUs are not listed."


# -- NVIDIA ----------------------------------------------------------------------------------------

NVIDIA_SMI_ARGS = ["--query-gpu=name,memory.total,memory.free", "--format=csv,noheader,nounits"]


def parse_nvidia_smi(text: str) -> tuple[list[GpuInfo], bool]:
    """Lines "NVIDIA GeForce RTX 4090, 24564, 23012" (MiB) -> GPUs, and whether any line was bad."""
    gpus: list[GpuInfo] = []
    bad = False
    for line in text.splitlines():
        if not line.strip():
            continue
        parts = [p.strip() for p in line.rsplit(",", 2)]
        total = _int(parts[1]) if len(parts) == 3 else None
        if total is None or not parts[0]:
            bad = True
            continue
        free = _int(parts[2])  # "[N/A]" on some boards
        gpus.append(
            GpuInfo(
                index=len(gpus),
                name=parts[0],
                backend="CUDA",
                total_bytes=total * MIB,
                free_bytes=None if free is None else free * MIB,
                source="nvidia-smi",
            )
        )
    return gpus, bad


def probe_nvidia_smi(*, timeout_s: float, path: str | None = None) -> ProbeResult:
    output = run_tool("nvidia-smi", NVIDIA_SMI_ARGS, timeout_s=timeout_s, path=path)
    if output.status != "ok":
        return ProbeResult(notes=_problem_note("nvidia-smi", output, timeout_s))
    gpus, bad = parse_nvidia_smi(output.stdout)
    return ProbeResult(tuple(gpus), (_unreadable("nvidia-smi"),) if bad and not gpus else ())


# -- AMD -------------------------------------------------------------------------------------------

ROCM_SMI_ARGS = ["--showmeminfo", "vram", "--showproductname", "--json"]


def parse_rocm_smi(text: str) -> list[GpuInfo] | None:
    """rocm-smi's JSON ({"card0": {"VRAM Total Memory (B)": "...", "Card Series": ...}}) -> GPUs;
    None when it is not that JSON. Warnings it prints around the JSON are skipped."""
    start, end = text.find("{"), text.rfind("}")
    try:
        data = json.loads(text[start : end + 1]) if 0 <= start < end else None
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return None
    gpus: list[GpuInfo] = []
    for card, fields in sorted(data.items()):
        if not card.lower().startswith("card") or not isinstance(fields, dict):
            continue
        lowered = {str(k).lower(): str(v) for k, v in fields.items()}
        total = _int(lowered.get("vram total memory (b)", ""))
        if total is None:
            continue
        used = _int(lowered.get("vram total used memory (b)", ""))
        name = next(
            (
                lowered[key]
                for key in ("card series", "card sku", "card model", "marketing name")
                if lowered.get(key) and lowered[key] != "N/A"
            ),
            f"AMD GPU {card}",
        )
        gpus.append(
            GpuInfo(
                index=len(gpus),
                name=name,
                backend="ROCm",
                total_bytes=total,
                free_bytes=None if used is None else max(total - used, 0),
                source="rocm-smi",
            )
        )
    return gpus


def probe_rocm_smi(*, timeout_s: float, path: str | None = None) -> ProbeResult:
    output = run_tool("rocm-smi", ROCM_SMI_ARGS, timeout_s=timeout_s, path=path)
    if output.status != "ok":
        return ProbeResult(notes=_problem_note("rocm-smi", output, timeout_s))
    gpus = parse_rocm_smi(output.stdout)
    if gpus is None:
        return ProbeResult(notes=(_unreadable("rocm-smi"),))
    return ProbeResult(tuple(gpus))


# -- macOS -----------------------------------------------------------------------------------------

SYSCTL_KEYS = [
    "hw.memsize",
    "machdep.cpu.brand_string",
    "hw.optional.arm64",
    "iogpu.wired_limit_mb",
]


def metal_usable_bytes(ram_bytes: int, wired_limit_mb: int = 0) -> int:
    """How much of a Mac's unified memory the GPU may use (Metal's recommendedMaxWorkingSetSize).

    `iogpu.wired_limit_mb`, when a user has set it, is the limit itself. Otherwise a rule of thumb:
    macOS lets the GPU wire about 2/3 of RAM on machines under 36 GB and about 3/4 from 36 GB up
    (measured values sit at or above it: 36 of 48 GB, 107.5 of 128 GiB). ggml's Metal device
    reports the exact figure; this estimate serves only when llama.cpp cannot be asked.
    """
    if wired_limit_mb > 0:
        return min(wired_limit_mb * MIB, ram_bytes)
    share = 0.75 if ram_bytes >= 36 * 10**9 else 2 / 3
    return int(ram_bytes * share)


def parse_sysctl(text: str) -> dict[str, str]:
    """ "key: value" lines -> {key: value}."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip():
            values[key.strip()] = value.strip()
    return values


def probe_sysctl(*, timeout_s: float, path: str | None = None) -> ProbeResult:
    output = run_tool("sysctl", SYSCTL_KEYS, timeout_s=timeout_s, path=path)
    # A key this macOS lacks makes sysctl exit non-zero after printing the others.
    if output.status in ("missing", "timeout") or not output.stdout.strip():
        return ProbeResult(notes=_problem_note("sysctl", output, timeout_s))
    values = parse_sysctl(output.stdout)
    memsize = _int(values.get("hw.memsize", ""))
    brand = values.get("machdep.cpu.brand_string", "")
    apple_silicon = values.get("hw.optional.arm64") == "1" or brand.startswith("Apple")
    if memsize is None:
        return ProbeResult(notes=(_unreadable("sysctl"),), values=values)
    if not apple_silicon:
        return ProbeResult(values=values)  # an Intel Mac: its GPU's memory is not in sysctl
    limit = _int(values.get("iogpu.wired_limit_mb", "")) or 0
    gpu = GpuInfo(
        index=0,
        name=f"{brand} GPU" if brand else "Apple GPU",
        backend="Metal",
        total_bytes=metal_usable_bytes(memsize, limit),
        free_bytes=None,
        source="sysctl",
        unified_memory=True,
    )
    note = (
        f"The GPU's share of unified memory is estimated from RAM "
        f"({'iogpu.wired_limit_mb' if limit else '2/3 below 36 GB, 3/4 above'})."
    )
    return ProbeResult((gpu,), (note,), values)


# -- Windows ---------------------------------------------------------------------------------------

# Registry first (qwMemorySize is 64-bit), then WMI (AdapterRAM, capped at 4 GiB), as JSON.
WINDOWS_SCRIPT = (
    "$ErrorActionPreference='SilentlyContinue';$r=@();"
    "Get-ItemProperty 'HKLM:\\SYSTEM\\ControlSet001\\Control\\Class\\"
    "{4d36e968-e325-11ce-bfc1-08002be10318}\\0*' | ForEach-Object {"
    "$r+=[pscustomobject]@{Source='registry';Name=$_.DriverDesc;"
    "Bytes=$_.'HardwareInformation.qwMemorySize'}};"
    "Get-CimInstance Win32_VideoController | ForEach-Object {"
    "$r+=[pscustomobject]@{Source='cim';Name=$_.Name;Bytes=$_.AdapterRAM}};"
    "ConvertTo-Json -InputObject $r -Compress"
)
WINDOWS_ARGS = ["-NoProfile", "-NonInteractive", "-Command", WINDOWS_SCRIPT]


def parse_windows_adapters(text: str) -> tuple[list[GpuInfo], list[str]] | None:
    """The script's JSON rows -> GPUs (registry size preferred) and notes; None if unreadable."""
    try:
        rows: Any = json.loads(text.strip())
    except ValueError:
        return None
    rows = [rows] if isinstance(rows, dict) else rows
    if not isinstance(rows, list):
        return None
    registry: dict[str, int] = {}
    adapters: dict[str, int | None] = {}
    for row in rows:
        if not isinstance(row, dict) or not isinstance(row.get("Name"), str):
            continue
        name = row["Name"].strip()
        size = _int(str(row.get("Bytes", "")))
        if not name or _NOT_A_GPU.search(name):
            continue
        if row.get("Source") == "registry":
            if size:
                registry[name] = max(size, registry.get(name, 0))
        else:
            adapters.setdefault(name, size)
    gpus: list[GpuInfo] = []
    notes: list[str] = []
    for name, cim_size in adapters.items():
        size = registry.get(name) or cim_size
        if size is None:
            continue
        if name not in registry and size >= WINDOWS_ADAPTER_RAM_CAP - 4 * MIB:
            notes.append(f"Windows reports at most 4 GB for {name}; it may have more.")
        gpus.append(
            GpuInfo(
                index=len(gpus),
                name=name,
                backend=_backend_from_name(name),
                total_bytes=size,
                free_bytes=None,
                source="windows",
            )
        )
    return gpus, notes


def probe_windows(*, timeout_s: float, path: str | None = None) -> ProbeResult:
    output = run_tool("powershell", WINDOWS_ARGS, timeout_s=timeout_s, path=path)
    if output.status != "ok":
        return ProbeResult(notes=_problem_note("PowerShell", output, timeout_s))
    parsed = parse_windows_adapters(output.stdout)
    if parsed is None:
        return ProbeResult(notes=(_unreadable("PowerShell"),))
    gpus, notes = parsed
    return ProbeResult(tuple(gpus), tuple(notes))


def probes_for(platform: str) -> list[str]:
    """The tools worth asking on a platform (sys.platform values)."""
    if platform == "darwin":
        return ["sysctl"]
    if platform == "win32":
        return ["nvidia-smi", "windows"]
    return ["nvidia-smi", "rocm-smi"]


PROBES = {
    "nvidia-smi": probe_nvidia_smi,
    "rocm-smi": probe_rocm_smi,
    "sysctl": probe_sysctl,
    "windows": probe_windows,
}


def gpu_vendor(name: str) -> str:
    lowered = name.lower()
    for vendor, words in (
        ("nvidia", ("nvidia", "geforce", "quadro", "tesla", "rtx", "gtx")),
        ("amd", ("amd", "radeon", "instinct", "navi")),
        ("apple", ("apple",)),
        ("intel", ("intel", "arc ", "iris", "uhd")),
    ):
        if any(word in lowered for word in words):
            return vendor
    return "unknown"


def _backend_from_name(name: str) -> GpuBackend:
    return "CUDA" if gpu_vendor(name) == "nvidia" else "unknown"


def _int(text: str) -> int | None:
    text = text.strip()
    return int(text) if text.isdigit() else None
