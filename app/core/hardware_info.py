"""What LeanCoder knows about the machine: plain, frozen records with a JSON form.

`GpuInfo.source` says who reported a GPU. Only "ggml" GPUs are usable by the installed llama.cpp
build; a GPU seen only by a vendor tool (nvidia-smi, rocm-smi, sysctl, Windows) is real but this
build cannot offload to it (a CPU-only wheel, or a backend for another vendor).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

GpuBackend = Literal["CUDA", "Metal", "Vulkan", "ROCm", "unknown"]
GpuSource = Literal["ggml", "nvidia-smi", "rocm-smi", "sysctl", "windows"]


@dataclass(frozen=True, slots=True)
class CpuInfo:
    name: str
    physical_cores: int
    logical_cores: int
    features: tuple[str, ...]  # vector features llama.cpp's CPU backend uses: AVX2, AVX512, NEON


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
        data["memory_bandwidth_is_estimate"] = self.memory_bandwidth_bytes_per_s is not None
        return data
