"""Choose where a model lives on this machine: all on the GPU, hybrid (MoE experts in host memory,
attention and shared weights on the GPU), CPU only, or nowhere; and the context size that fits."""

from __future__ import annotations

from app.core.fit.estimate import (
    BANDWIDTH_EFFICIENCY,
    CPU_FLOPS_PER_CORE,
    FLASH_ATTENTION,
    GIB,
    MARGIN_BYTES,
    RUNTIME_OVERHEAD_BYTES,
    FitPlan,
    Footprint,
    GpuBudget,
    KvType,
    MachineBudget,
    MemoryEstimate,
    PlanKind,
    compute_bytes,
    estimate_memory,
)
from app.core.storage.settings import DEFAULT_CONTEXT

DEFAULT_TARGET_CONTEXT = DEFAULT_CONTEXT  # the window's default too: one figure everywhere
MIN_CONTEXT = 2048


def context_candidates(fp: Footprint, wanted: int | None) -> list[int]:
    top = min(wanted or DEFAULT_TARGET_CONTEXT, fp.context_length)
    sizes = [top]
    while sizes[-1] // 2 >= MIN_CONTEXT:
        sizes.append(sizes[-1] // 2)
    return sizes


def plan_fit(
    fp: Footprint,
    machine: MachineBudget,
    n_ctx: int | None = None,
    kv_type: KvType = "f16",
    flash_attn: bool = FLASH_ATTENTION,
) -> FitPlan:
    """The best placement at the largest context (from `n_ctx`, halving) that fits anywhere."""
    candidates = context_candidates(fp, n_ctx)
    for ctx in candidates:
        plan = _plan_at(fp, machine, ctx, kv_type, flash_attn)
        if plan is not None:
            if ctx < candidates[0]:
                note = f"Context reduced from {candidates[0]:,} to {ctx:,} tokens to fit."
                return _with_note(plan, note)
            return plan
    smallest = candidates[-1]
    memory = estimate_memory(fp, smallest, kv_type, flash_attn)
    have = max(0, machine.ram_bytes - MARGIN_BYTES) + sum(
        max(0, g.bytes_free - MARGIN_BYTES) for g in machine.gpus if not g.unified
    )
    return FitPlan(
        kind="none",
        n_ctx=smallest,
        n_gpu_layers=0,
        expert_layers_on_cpu=0,
        gpu_bytes=0,
        cpu_bytes=memory.total,
        tokens_per_s=0.0,
        memory=memory,
        reason=(
            f"Does not fit: needs about {memory.total / GIB:.1f} GiB even with a "
            f"{smallest:,}-token context; {have / GIB:.1f} GiB is usable here."
        ),
    )


def _plan_at(
    fp: Footprint, machine: MachineBudget, ctx: int, kv_type: KvType, flash_attn: bool
) -> FitPlan | None:
    memory = estimate_memory(fp, ctx, kv_type, flash_attn)
    ram = machine.ram_bytes - MARGIN_BYTES
    discrete = [g for g in machine.gpus if not g.unified]
    unified = [g for g in machine.gpus if g.unified]
    # A GPU allocates the whole compute reservation up front, logits for a full micro-batch
    # included (~300 MiB at a 152k vocabulary); host memory holds only the pages a chat touches,
    # which is what `memory.compute` counts. With the output layer on the GPU, add the rest.
    reserved_extra = max(0, compute_bytes(fp, ctx, flash_attn=flash_attn) - memory.compute)
    if unified:
        gpu = unified[0]
        usable = min(gpu.bytes_free, machine.ram_bytes) - MARGIN_BYTES
        if memory.total + reserved_extra <= usable:
            need = memory.total + reserved_extra
            return _plan(fp, "gpu", ctx, -1, 0, need, 0, memory, machine, gpu)
    elif discrete:
        vram = sum(g.bytes_free - MARGIN_BYTES for g in discrete)
        gpu = max(discrete, key=lambda g: g.bytes_free)
        host_side = fp.embedding_bytes + RUNTIME_OVERHEAD_BYTES
        on_gpu = memory.total - host_side + reserved_extra
        if on_gpu <= vram and host_side <= ram:
            return _plan(fp, "gpu", ctx, -1, 0, on_gpu, host_side, memory, machine, gpu)
        hybrid = _hybrid(fp, machine, ctx, memory, vram, ram, gpu, flash_attn, reserved_extra)
        if hybrid is not None:
            return hybrid
    if memory.total <= ram:
        return _plan(fp, "cpu", ctx, 0, 0, 0, memory.total, memory, machine, None)
    return None


def _hybrid(
    fp: Footprint,
    machine: MachineBudget,
    ctx: int,
    memory: MemoryEstimate,
    vram: int,
    ram: int,
    gpu: GpuBudget,
    flash_attn: bool,
    reserved_extra: int,
) -> FitPlan | None:
    """MoE: everything but the experts on the GPU, then as many layers' experts as still fit
    (the last layers, so `expert_layers_on_cpu` counts from the first). Dense: whole layers;
    the output layer then stays on the CPU, and with it the micro-batch's logits
    (`reserved_extra`, which the GPU holds in the MoE split)."""
    host_base = fp.embedding_bytes + RUNTIME_OVERHEAD_BYTES
    if fp.is_moe:
        gpu_base = memory.total - host_base - fp.expert_bytes + reserved_extra
        if gpu_base > vram:
            return None
        room = vram - gpu_base
        on_cpu = len(fp.expert_bytes_per_layer)
        for layer_bytes in reversed(fp.expert_bytes_per_layer):
            if layer_bytes > room:
                break
            room -= layer_bytes
            on_cpu -= 1
        cpu_experts = sum(fp.expert_bytes_per_layer[:on_cpu])
        # The CPU runs the expert matmuls of those layers, so it needs their scratch space too.
        cpu_need = host_base + cpu_experts + compute_bytes(fp, ctx, flash_attn=flash_attn) // 2
        if cpu_need > ram:
            return None
        gpu_need = memory.total - host_base - cpu_experts + reserved_extra
        return _plan(fp, "hybrid", ctx, -1, on_cpu, gpu_need, cpu_need, memory, machine, gpu)
    per_layer = (fp.weights_bytes - fp.embedding_bytes + memory.kv_cache) / max(1, fp.n_layer)
    layers = int((vram - memory.compute) // per_layer) if per_layer > 0 else 0
    if layers < 1:
        return None
    gpu_need = int(layers * per_layer + memory.compute)
    cpu_need = memory.total - gpu_need + memory.compute // 2
    if cpu_need > ram:
        return None
    return _plan(fp, "hybrid", ctx, layers, 0, gpu_need, cpu_need, memory, machine, gpu)


def _plan(
    fp: Footprint,
    kind: PlanKind,
    ctx: int,
    n_gpu_layers: int,
    expert_layers_on_cpu: int,
    gpu_bytes: int,
    cpu_bytes: int,
    memory: MemoryEstimate,
    machine: MachineBudget,
    gpu: GpuBudget | None,
) -> FitPlan:
    speed = estimate_speed(fp, kind, n_gpu_layers, expert_layers_on_cpu, machine, gpu)
    notes = []
    if not machine.bandwidth_measured and kind != "gpu":
        notes.append("Speed assumes typical memory bandwidth; it was not measured.")
    return FitPlan(
        kind=kind,
        n_ctx=ctx,
        n_gpu_layers=n_gpu_layers,
        expert_layers_on_cpu=expert_layers_on_cpu,
        gpu_bytes=max(0, gpu_bytes),
        cpu_bytes=max(0, cpu_bytes),
        tokens_per_s=speed,
        memory=memory,
        reason=_reason(fp, kind, ctx, n_gpu_layers, expert_layers_on_cpu, gpu_bytes, cpu_bytes),
        notes=tuple(notes),
    )


def estimate_speed(
    fp: Footprint,
    kind: PlanKind,
    n_gpu_layers: int,
    expert_layers_on_cpu: int,
    machine: MachineBudget,
    gpu: GpuBudget | None,
) -> float:
    """Tokens/s bounded by bytes read per token over memory bandwidth (an estimate)."""
    active = fp.active_bytes()
    cpu_bw = machine.cpu_bandwidth
    if kind == "cpu" or gpu is None:
        seconds = active / cpu_bw
    elif kind == "gpu":
        seconds = active / gpu.bandwidth
    elif fp.is_moe:
        share = fp.n_expert_used / fp.n_expert
        cpu_active = sum(fp.expert_bytes_per_layer[:expert_layers_on_cpu]) * share
        seconds = (active - cpu_active) / gpu.bandwidth + cpu_active / cpu_bw
    else:
        on_gpu = active * n_gpu_layers / max(1, fp.n_layer)
        seconds = on_gpu / gpu.bandwidth + (active - on_gpu) / cpu_bw
    memory_bound = BANDWIDTH_EFFICIENCY / seconds if seconds > 0 else 0.0
    if kind == "gpu" or not fp.active_params:
        return memory_bound
    # The CPU's part of the work may be bound by arithmetic instead (small models, few cores).
    cpu_share = (
        1.0 if kind == "cpu" or gpu is None else _cpu_share(fp, n_gpu_layers, expert_layers_on_cpu)
    )
    flops = 2 * fp.active_params * cpu_share
    compute_bound = machine.cpu_cores * CPU_FLOPS_PER_CORE / flops if flops else memory_bound
    return min(memory_bound, compute_bound)


def _cpu_share(fp: Footprint, n_gpu_layers: int, expert_layers_on_cpu: int) -> float:
    """The share of per-token arithmetic left to the CPU in a hybrid plan."""
    if fp.is_moe:
        share = fp.n_expert_used / fp.n_expert
        on_cpu = sum(fp.expert_bytes_per_layer[:expert_layers_on_cpu]) * share
        return min(1.0, on_cpu / fp.active_bytes())
    return max(0.0, 1.0 - n_gpu_layers / max(1, fp.n_layer))


def _reason(
    fp: Footprint,
    kind: PlanKind,
    ctx: int,
    n_gpu_layers: int,
    expert_layers_on_cpu: int,
    gpu_bytes: int,
    cpu_bytes: int,
) -> str:
    gib_gpu, gib_cpu = gpu_bytes / GIB, cpu_bytes / GIB
    context = f"a {ctx:,}-token context"
    if kind == "gpu":
        return f"Runs entirely on the GPU ({gib_gpu:.1f} GiB) with {context}."
    if kind == "cpu":
        return f"Runs on the CPU from RAM ({gib_cpu:.1f} GiB) with {context}."
    if fp.is_moe:
        if expert_layers_on_cpu == 0:
            return f"Runs entirely on the GPU ({gib_gpu:.1f} GiB) with {context}."
        return (
            f"Hybrid: attention and shared weights on the GPU ({gib_gpu:.1f} GiB), the experts of "
            f"{expert_layers_on_cpu} of {fp.n_layer} layers in RAM ({gib_cpu:.1f} GiB), "
            f"with {context}."
        )
    return (
        f"Split: {n_gpu_layers} of {fp.n_layer} layers on the GPU ({gib_gpu:.1f} GiB), the rest "
        f"in RAM ({gib_cpu:.1f} GiB), with {context}."
    )


def _with_note(plan: FitPlan, note: str) -> FitPlan:
    from dataclasses import replace

    return replace(plan, notes=(*plan.notes, note))
