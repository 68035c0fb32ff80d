"""This machine as fit plans see it: the detected hardware turned into a memory and speed budget."""

from __future__ import annotations

from app.core.fit.estimate import (
    DEFAULT_CPU_BANDWIDTH,
    DEFAULT_GPU_BANDWIDTH,
    GpuBudget,
    MachineBudget,
)
from app.core.machine.info import HardwareInfo


def machine_budget(hw: HardwareInfo) -> MachineBudget:
    """What plans may use now: available RAM and the GPUs this llama.cpp build can offload to."""
    gpus = tuple(
        GpuBudget(
            name=g.name,
            bytes_free=g.free_bytes if g.free_bytes is not None else g.total_bytes,
            bandwidth=DEFAULT_GPU_BANDWIDTH.get(g.backend, 200e9),
            unified=g.unified_memory,
        )
        for g in hw.offload_gpus
    )
    measured = hw.memory_bandwidth_bytes_per_s
    return MachineBudget(
        ram_bytes=hw.ram_available_bytes,
        cpu_bandwidth=measured or DEFAULT_CPU_BANDWIDTH,
        gpus=gpus,
        bandwidth_measured=measured is not None,
        cpu_cores=max(1, hw.cpu.physical_cores),
    )


def current_machine() -> MachineBudget:
    """This machine as plans see it now (no bandwidth measurement: loading must stay quick)."""
    from app.core.machine.hardware import detect_hardware

    return machine_budget(detect_hardware(timeout_s=2.0))
