"""What LeanCoder knows about the machine: plain, frozen records with a JSON form.

`GpuInfo.source` says who reported a GPU. Only "ggml" GPUs are usable by the installed llama.cpp
build; a GPU seen only by a vendor tool (nvidia-smi, rocm-smi, sysctl, Windows) is real but this
build cannot offload to it (a CPU-only wheel, or a backend for another vendor).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from app.core.llm.threads import CoreCounts, FrontEnd, ThreadChoice, choose_threads
from app.core.units import binary_bytes

GpuBackend = Literal["CUDA", "Metal", "Vulkan", "ROCm", "unknown"]
GpuSource = Literal["ggml", "nvidia-smi", "rocm-smi", "sysctl", "windows"]


@dataclass(frozen=True, slots=True)
class CpuInfo:
    name: str
    physical_cores: int
    logical_cores: int
    features: tuple[str, ...]  # vector features llama.cpp's CPU backend uses: AVX2, AVX512, NEON
    # Physical performance cores of a hybrid CPU, when the OS says which they are.
    performance_cores: int | None = None

    @property
    def cores(self) -> CoreCounts:
        return CoreCounts(self.physical_cores, self.logical_cores, self.performance_cores)

    def threads(self, front_end: FrontEnd = "headless") -> ThreadChoice:
        """The CPU threads LeanCoder gives llama.cpp on this machine by default."""
        return choose_threads(self.cores, None, front_end)


@dataclass(frozen=True, slots=True)
class GpuInfo:
    index: int
    name: str
    backend: GpuBackend
    total_bytes: int
    free_bytes: int | None
    source: GpuSource
    unified_memory: bool = False  # shares the system RAM (Apple Silicon, integrated GPUs)

    @property
    def usable_by_llama(self) -> bool:
        """True when the installed llama.cpp build can offload to this GPU."""
        return self.source == "ggml"


@dataclass(frozen=True, slots=True)
class HardwareInfo:
    ram_total_bytes: int
    ram_available_bytes: int
    cpu: CpuInfo
    gpus: tuple[GpuInfo, ...]
    disk_path: str  # where models are stored (it may not exist yet)
    disk_free_bytes: int | None  # None when no parent of disk_path could be measured
    memory_bandwidth_bytes_per_s: float | None = None  # an estimate, when measured
    notes: tuple[str, ...] = field(default=())

    @property
    def offload_gpus(self) -> tuple[GpuInfo, ...]:
        """The GPUs a model can be offloaded to with this llama.cpp build."""
        return tuple(g for g in self.gpus if g.usable_by_llama)

    def to_dict(self) -> dict[str, Any]:
        """Plain dicts, lists, strings and numbers (json.dumps-ready)."""
        data = asdict(self)
        data["cpu"]["features"] = list(self.cpu.features)
        data["gpus"] = [
            {**asdict(gpu), "usable_by_llama": gpu.usable_by_llama} for gpu in self.gpus
        ]
        data["notes"] = list(self.notes)
        data["threads"] = {
            front_end: {"decode": choice.decode, "batch": choice.batch}
            for front_end in ("headless", "window")
            for choice in [self.cpu.threads(front_end)]
        }
        data["memory_bandwidth_is_estimate"] = self.memory_bandwidth_bytes_per_s is not None
        return data


def gpu_summary(gpu: GpuInfo) -> str:
    """ "NVIDIA GeForce RTX 4090 (CUDA, via llama.cpp): 24.0 GiB, 23.1 GiB free"."""
    via = "via llama.cpp" if gpu.usable_by_llama else f"via {gpu.source}, not usable by llama.cpp"
    memory = binary_bytes(gpu.total_bytes)
    if gpu.unified_memory:
        memory += " of shared memory"
    if gpu.free_bytes is not None:
        memory += f", {binary_bytes(gpu.free_bytes)} free"
    return f"{gpu.name} ({gpu.backend}, {via}): {memory}"


def _threads_text(cpu: CpuInfo) -> str:
    """What LeanCoder will give llama.cpp: "2 for decoding, 2 for prompts (window: same)"."""
    headless, window = cpu.threads("headless"), cpu.threads("window")
    text = headless.describe()
    if cpu.performance_cores:
        text += f" ({cpu.performance_cores} performance cores)"
    same = window == headless
    return text + ("; the window the same" if same else f"; the window {window.describe()}")


def summary_rows(info: HardwareInfo) -> list[tuple[str, str]]:
    """(label, text) rows that describe the machine, for the CLI and the app's panel."""
    cpu = info.cpu
    rows = [
        (
            "RAM",
            f"{binary_bytes(info.ram_total_bytes)} total, "
            f"{binary_bytes(info.ram_available_bytes)} available",
        ),
        ("CPU", f"{cpu.name} ({cpu.physical_cores} cores, {cpu.logical_cores} threads)"),
        ("CPU features", " ".join(cpu.features) or "none reported"),
        ("Threads", _threads_text(cpu)),
    ]
    rows += [(f"GPU {gpu.index}", gpu_summary(gpu)) for gpu in info.gpus]
    if not info.gpus:
        rows.append(("GPU", "none found: models run on the CPU"))
    free = "unknown" if info.disk_free_bytes is None else binary_bytes(info.disk_free_bytes)
    rows.append(("Disk", f"{free} free at {info.disk_path}"))
    if info.memory_bandwidth_bytes_per_s is not None:
        rows.append(("Bandwidth", f"{info.memory_bandwidth_bytes_per_s / 1e9:.1f} GB/s (estimate)"))
    return rows
