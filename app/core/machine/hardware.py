"""Know the machine: RAM, CPU, GPUs as llama.cpp sees them, free disk, memory bandwidth.

GPUs come from ggml's device registry first (what the installed llama.cpp build will really use,
for CUDA, Metal, Vulkan and ROCm builds alike), then from vendor tools (`hardware_probes`), which
also find GPUs this build cannot use; a vendor tool's GPU that ggml already reports is dropped.
Everything runs concurrently under a timeout, and nothing here raises for a missing or odd tool:
what could not be learned becomes a note.
"""

from __future__ import annotations

import logging
import platform as platform_module
import queue
import shutil
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import psutil

from app.core.llm import devices as ggml_devices
from app.core.llm.devices import GgmlDevice
from app.core.llm.threads import detect_cores
from app.core.machine import probes as hardware_probes
from app.core.machine.bandwidth import measure_memory_bandwidth
from app.core.machine.info import CpuInfo, GpuBackend, GpuInfo, HardwareInfo
from app.core.models.hub_cache import default_hub_cache

__all__ = [
    "CpuInfo",
    "GpuInfo",
    "HardwareInfo",
    "default_models_dir",
    "detect_hardware",
    "measure_memory_bandwidth",
]

# The first query of a GPU backend can initialise its driver (seconds on CUDA).
GGML_MIN_TIMEOUT_S = 10.0
_BACKENDS: dict[str, GpuBackend] = {
    "cuda": "CUDA",
    "rocm": "ROCm",
    "hip": "ROCm",
    "metal": "Metal",
    "mtl": "Metal",
    "vulkan": "Vulkan",
}
_SOURCE_VENDOR = {"nvidia-smi": "nvidia", "rocm-smi": "amd", "sysctl": "apple"}
_BACKEND_VENDOR = {"CUDA": "nvidia", "ROCm": "amd", "Metal": "apple"}
_CPU_FLAGS = {  # /proc/cpuinfo flag -> ggml's name, for when llama.cpp cannot be asked
    "avx": "AVX",
    "avx2": "AVX2",
    "fma": "FMA",
    "f16c": "F16C",
    "avx512f": "AVX512",
    "avx512_vnni": "AVX512_VNNI",
    "avx512_bf16": "AVX512_BF16",
    "amx_int8": "AMX_INT8",
    "asimd": "NEON",
    "asimddp": "DOTPROD",
    "sve": "SVE",
}

log = logging.getLogger(__name__)


def default_models_dir() -> Path:
    """The Hugging Face hub cache, where downloads land by default (shared with other tools)."""
    return default_hub_cache()


def detect_hardware(
    models_dir: Path | None = None,
    *,
    timeout_s: float = 3.0,
    measure_bandwidth: bool = False,
    platform: str | None = None,
) -> HardwareInfo:
    """Everything LeanCoder needs to know about this machine; never raises for a probe.

    `platform` (a sys.platform value) picks which vendor tools are asked; tests set it.
    """
    platform = platform or sys.platform
    notes: list[str] = []
    probe_names = hardware_probes.probes_for(platform)
    tasks: dict[str, Callable[[], object]] = {
        name: _probe_call(name, timeout_s) for name in probe_names
    }
    tasks["ggml"] = ggml_devices.list_devices
    deadlines = {name: timeout_s + 2.0 for name in probe_names}  # + time to kill a hung tool
    deadlines["ggml"] = max(timeout_s, GGML_MIN_TIMEOUT_S)
    results = _run_concurrently(tasks, deadlines)

    devices = results.get("ggml")
    if not isinstance(devices, list):
        notes.append(f"llama.cpp's device list {_failure(devices)}; GPUs come from vendor tools.")
        devices = []
    elif reason := ggml_devices.unavailable_reason():
        notes.append(f"llama.cpp's device list is unavailable ({reason}).")
    probes: dict[str, hardware_probes.ProbeResult] = {}
    for name in probe_names:
        result = results.get(name)
        if isinstance(result, hardware_probes.ProbeResult):
            probes[name] = result
            notes.extend(result.notes)
        else:
            notes.append(f"The {name} probe {_failure(result)}.")

    ggml_gpus, ggml_notes = gpus_from_ggml(devices)
    notes.extend(ggml_notes)
    vendor_gpus = [gpu for probe in probes.values() for gpu in probe.gpus]
    gpus, merge_notes = merge_gpus(ggml_gpus, vendor_gpus)
    notes.extend(merge_notes)

    sysctl = probes["sysctl"].values if "sysctl" in probes else {}
    memory = psutil.virtual_memory()
    models_dir = models_dir if models_dir is not None else default_models_dir()
    bandwidth = measure_memory_bandwidth() if measure_bandwidth else None
    return HardwareInfo(
        ram_total_bytes=int(memory.total),
        ram_available_bytes=int(memory.available),
        cpu=detect_cpu(devices, sysctl, platform),
        gpus=tuple(gpus),
        disk_path=str(models_dir),
        disk_free_bytes=disk_free_bytes(models_dir),
        memory_bandwidth_bytes_per_s=bandwidth,
        notes=tuple(dict.fromkeys(notes)),
    )


def _probe_call(name: str, timeout_s: float) -> Callable[[], object]:
    probe = hardware_probes.PROBES[name]
    return lambda: probe(timeout_s=timeout_s)


def _run_concurrently(
    tasks: dict[str, Callable[[], object]], deadlines: dict[str, float]
) -> dict[str, object]:
    """Run each task in a daemon thread. The answer is its result, or the exception it raised;
    a task still running at its deadline is left behind and has no answer."""
    answers: queue.Queue[tuple[str, object]] = queue.Queue()

    def run(name: str, task: Callable[[], object]) -> None:
        try:
            answers.put((name, task()))
        except Exception as exc:  # a probe bug must not cost the whole report
            log.warning("hardware probe %s failed", name, exc_info=True)
            answers.put((name, exc))

    for name, task in tasks.items():
        threading.Thread(target=run, args=(name, task), daemon=True, name=f"probe-{name}").start()
    started = time.monotonic()
    results: dict[str, object] = {}
    while len(results) < len(tasks):
        pending = [n for n in tasks if n not in results]
        remaining = max(deadlines[n] for n in pending) - (time.monotonic() - started)
        try:
            name, value = answers.get(timeout=max(remaining, 0.0))
        except queue.Empty:
            break
        if time.monotonic() - started <= deadlines[name]:
            results[name] = value
    return results


def _failure(answer: object) -> str:
    if isinstance(answer, Exception):
        return f"failed ({type(answer).__name__}: {answer})"
    return "did not answer in time"


def _backend(name: str) -> GpuBackend:
    return _BACKENDS.get(name.lower(), "unknown")


def gpus_from_ggml(devices: list[GgmlDevice]) -> tuple[list[GpuInfo], list[str]]:
    """The GPUs llama.cpp offloads to (its default device selection), and notes on the others."""
    selected = ggml_devices.offload_devices(devices)
    notes = [
        f"{d.description or d.name} ({d.backend}) is not used: llama.cpp prefers the discrete GPU."
        for d in devices
        if d.type == "igpu" and d not in selected
    ]
    apple_silicon = platform_module.machine().lower() in ("arm64", "aarch64")
    gpus: list[GpuInfo] = []
    for device in selected:
        if device.backend == "RPC":
            notes.append(f"Remote device {device.description or device.name} (RPC) is not listed.")
            continue
        backend = _backend(device.backend)
        gpus.append(
            GpuInfo(
                index=len(gpus),
                name=device.description or device.name,
                backend=backend,
                total_bytes=device.total_bytes,
                free_bytes=device.free_bytes,
                source="ggml",
                unified_memory=device.type == "igpu" or (backend == "Metal" and apple_silicon),
            )
        )
    return gpus, notes


def _vendor(gpu: GpuInfo) -> str:
    known = _SOURCE_VENDOR.get(gpu.source) or _BACKEND_VENDOR.get(gpu.backend)
    return known or hardware_probes.gpu_vendor(gpu.name)


def _same_name(a: str, b: str) -> bool:
    a, b = (" ".join(x.lower().replace("nvidia", "").split()) for x in (a, b))
    return bool(a and b) and (a in b or b in a)


def merge_gpus(ggml_gpus: list[GpuInfo], others: list[GpuInfo]) -> tuple[list[GpuInfo], list[str]]:
    """ggml's GPUs, plus each vendor-tool GPU that is not one of them (nor one an earlier tool
    reported). A tool's GPU matches a listed GPU of the same vendor, by name where possible."""
    merged = list(ggml_gpus)
    claimed: dict[str, set[int]] = {}  # source -> positions in `merged` it has matched
    for gpu in others:
        taken = claimed.setdefault(gpu.source, set())
        candidates = [
            i
            for i, known in enumerate(merged)
            if i not in taken and known.source != gpu.source and _vendor(known) == _vendor(gpu)
        ]
        by_name = [i for i in candidates if _same_name(merged[i].name, gpu.name)]
        matches = by_name or candidates
        if matches:
            taken.add(matches[0])
        else:
            merged.append(gpu)
    notes = []
    unusable = [g for g in merged if not g.usable_by_llama]
    if unusable:
        names = ", ".join(f"{g.name} ({g.source})" for g in unusable)
        notes.append(
            f"The installed llama.cpp cannot use {names}: "
            + (
                "it is a CPU-only build; a GPU build of llama-cpp-python would use it."
                if not ggml_gpus
                else "it has no backend for it."
            )
        )
    return [replace(g, index=i) for i, g in enumerate(merged)], notes


def detect_cpu(devices: list[GgmlDevice], sysctl: dict[str, str], platform: str) -> CpuInfo:
    ggml_cpu = next((d.description for d in devices if d.type == "cpu" and d.description), "")
    by_platform = {
        "darwin": lambda: sysctl.get("machdep.cpu.brand_string", ""),
        "win32": _windows_cpu_name,
    }.get(platform, lambda: _proc_cpuinfo_value("model name"))
    name = (
        by_platform()
        or ggml_cpu
        or platform_module.processor()
        or platform_module.machine()
        or "unknown CPU"
    )
    cores = detect_cores()  # the same counts the engine's thread choice uses
    features = ggml_devices.cpu_features()
    if not features:
        flags = set(_proc_cpuinfo_value("flags").split() + _proc_cpuinfo_value("Features").split())
        features = tuple(ggml for flag, ggml in _CPU_FLAGS.items() if flag in flags)
    return CpuInfo(name.strip(), cores.physical, cores.logical, features, cores.performance)


def _proc_cpuinfo_value(key: str) -> str:
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    for line in text.splitlines():
        name, sep, value = line.partition(":")
        if sep and name.strip() == key:
            return value.strip()
    return ""


def _windows_cpu_name() -> str:
    if sys.platform != "win32":
        return ""
    import winreg

    try:
        with winreg.OpenKey(
            winreg.HKEY_LOCAL_MACHINE, r"HARDWARE\DESCRIPTION\System\CentralProcessor\0"
        ) as key:
            value, _ = winreg.QueryValueEx(key, "ProcessorNameString")
        return str(value)
    except OSError:
        return ""


def disk_free_bytes(path: Path) -> int | None:
    """Free bytes on the disk that holds `path`, or would hold it (its nearest existing parent)."""
    candidate = path.expanduser().absolute()
    for folder in (candidate, *candidate.parents):
        try:
            if folder.exists():
                return int(shutil.disk_usage(folder).free)
        except OSError:
            continue  # unreadable: try the parent
    return None
