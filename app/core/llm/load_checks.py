"""Checks and settings a load needs before llama.cpp sees the file: the host-memory guard and the
buffer overrides that keep a hybrid plan's MoE experts in RAM."""

from __future__ import annotations

import psutil

from app.core.errors import ModelLoadError
from app.core.fit.estimate import footprint_from_header, kv_bytes_per_cell
from app.core.gguf.header import GGUFHeader
from app.core.llm.engine_types import GIB, LOAD_OVERHEAD_BYTES


def kv_cache_bytes(header: GGUFHeader, n_ctx: int) -> int:
    """KV bytes = layers x KV heads x (key + value length) x bytes/element x tokens (f16)."""
    return int(kv_bytes_per_cell(footprint_from_header(header)) * n_ctx)


def expert_layers_on_cpu(header: GGUFHeader, wanted: int) -> int:
    """How many leading layers keep their routed experts in host memory (0 for a dense model)."""
    if wanted == 0 or not int(header.arch_value("expert_count", 0) or 0):
        return 0
    n_layer = int(header.arch_value("block_count", 0) or 0)
    return n_layer if wanted < 0 else max(0, min(wanted, n_layer))


def expert_overrides(count: int) -> list[tuple[str, int]]:
    """Buffer-type overrides that keep the routed experts of the first `count` layers on host."""
    if count <= 0:
        return []
    from app.core.llm.devices import cpu_buffer_type  # ctypes setup only when a plan needs it

    buffer = cpu_buffer_type().value
    if buffer is None:
        return []
    layers = "|".join(str(i) for i in range(count))
    return [(rf"^blk\.({layers})\.ffn_[a-z_]*_exps", buffer)]


def check_memory(header: GGUFHeader, n_ctx: int, on_gpu: bool) -> None:
    """Refuse a CPU load that cannot fit, instead of letting the OS kill the process mid-load."""
    if on_gpu:
        return  # VRAM fit is the fit estimator's job; here we only guard host RAM.
    need = header.tensor_bytes + kv_cache_bytes(header, n_ctx) + LOAD_OVERHEAD_BYTES
    available = psutil.virtual_memory().available
    if need <= available:
        return
    spare = available - header.tensor_bytes - LOAD_OVERHEAD_BYTES
    per_token = max(1, kv_cache_bytes(header, 1))
    fits = max(0, spare // per_token)
    hint = (
        f"A context of at most {fits // 256 * 256:,} tokens would fit."
        if fits >= 512
        else "Even a small context will not fit: close other programs or choose a smaller model."
    )
    raise ModelLoadError(
        f"Not enough memory to load {header.name} with a context of {n_ctx:,} tokens: it needs "
        f"about {need / GIB:.1f} GiB and {available / GIB:.1f} GiB is free. {hint}"
    )
