"""The steps of a load around llama.cpp: the host-memory guard, the buffer overrides that keep a
hybrid plan's MoE experts in RAM, opening the backend, and compiling the chat template."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import psutil

from app.core.errors import ModelLoadError
from app.core.fit.estimate import footprint_from_header, kv_bytes_per_cell
from app.core.gguf.header import GGUFHeader
from app.core.llm import backend as llama_backend
from app.core.llm.backend import LlamaBackend
from app.core.llm.chat_template import ChatTemplate
from app.core.llm.engine_types import GIB, LOAD_OVERHEAD_BYTES, CancelToken, LoadOptions
from app.core.llm.template_limits import RenderLimits
from app.core.llm.threads import choose_threads, detect_cores


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


def open_backend(
    path: Path,
    header: GGUFHeader,
    options: LoadOptions,
    n_ctx: int,
    notes: list[str],
    on_progress: Callable[[float], bool],
    cancel: CancelToken | None,
) -> LlamaBackend:
    """llama.cpp's load with the plan's expert placement and the machine's threads; a failure
    becomes a ModelLoadError naming llama.cpp's own last error line. Notes go to `notes`."""
    experts_on_cpu = expert_layers_on_cpu(header, options.expert_layers_on_cpu)
    overrides = expert_overrides(experts_on_cpu)
    if overrides:
        n_layer = int(header.arch_value("block_count", 0) or 0)
        notes.append(
            f"Experts of {experts_on_cpu} of {n_layer} layers kept in host memory "
            "(hybrid plan)."
        )
    threads = choose_threads(detect_cores(), options.n_threads, options.front_end)
    if threads.note:
        notes.append(threads.note)
    llama_backend.clear_log()
    try:
        return LlamaBackend.load(
            str(path),
            n_ctx=n_ctx,
            n_gpu_layers=options.n_gpu_layers,
            n_threads=threads.decode,
            n_threads_batch=threads.batch,
            n_batch=options.n_batch,
            progress=on_progress,
            buffer_overrides=overrides,
        )
    except (ValueError, RuntimeError, OSError, MemoryError) as exc:
        if cancel and cancel.is_set():
            raise ModelLoadError("Loading was cancelled.") from exc
        if isinstance(exc, MemoryError):
            detail = f"out of memory ({exc})"
        else:
            detail = llama_backend.last_error_line() or str(exc)
        raise ModelLoadError(
            f"llama.cpp could not load {path.name}: {detail}. If memory is short, try a "
            "smaller context or model; if the architecture is new, update LeanCoder."
        ) from exc


def model_template(
    path: Path, header: GGUFHeader, options: LoadOptions, backend: LlamaBackend, notes: list[str]
) -> ChatTemplate:
    """The chat template a load uses (the file's, an override, or generic ChatML), compiled under
    the limits of the context it will fill."""
    bos_id, eos_id = backend.token_bos(), backend.token_eos()
    bos = backend.token_text(bos_id) if bos_id >= 0 else ""
    eos = backend.token_text(eos_id) if eos_id >= 0 else ""
    template_source = header.chat_template if options.template == "model" else None
    if options.template_override is not None:
        template_source = options.template_override
    elif template_source is None and options.template == "model":
        notes.append("The model has no chat template; using the generic ChatML format.")
    name = "custom" if options.template_override is not None else ""
    return ChatTemplate(
        template_source,
        bos_token=bos,
        eos_token=eos,
        name=name,
        label=f"{name or 'model'} chat template of {path.name}"
        if template_source is not None
        else "",
        limits=RenderLimits.for_context(backend.n_ctx()),
    )
