"""How much memory a GGUF model needs, and where it should live on this machine.

The estimate adds what llama.cpp actually allocates (see design notes section 4):
- weights, split into routed-expert tensors (`blk.N.ffn_*_exps`) and the rest;
- the KV cache: per layer, KV heads x (key + value length) x bytes per element x cells, where cells
  is the context rounded up to 256 (llama.cpp pads it) and sliding-window layers keep only their
  window plus one micro-batch;
- the compute buffer: the largest of the output logits (vocabulary x micro-batch x f32), the
  attention and the feed-forward intermediates; the allocator reuses memory between them, so it is
  their maximum. With flash attention (`FLASH_ATTENTION`: how every load runs) attention needs no
  scores, only the f16 mask (cells x micro-batch), an input that lives through every layer and so
  adds to the maximum; without it the f32 scores (cells x micro-batch x heads, plus the mask and,
  on the CPU, an f16 copy in the work buffer) dominate at long contexts;
- a fixed runtime overhead.
The plan then puts weights on the GPU, keeps MoE experts in host memory when only attention and
shared weights fit in VRAM (llama.cpp's --n-cpu-moe), or runs on the CPU, leaving the 1 GiB margin
per device that llama.cpp's own `--fit` keeps.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from app.core.errors import ModelFileError
from app.core.gguf.header import GGUFHeader
from app.core.models.catalog import CatalogEntry

MIB = 1024**2
GIB = 1024**3
MARGIN_BYTES = 1 * GIB  # per device, as llama.cpp's --fit
RUNTIME_OVERHEAD_BYTES = 24 * MIB  # thread pools, graph metadata, the output buffer
KV_PAD = 256
DEFAULT_UBATCH = 512
KV_TYPE_BYTES = {"f16": 2.0, "q8_0": 34 / 32, "q4_0": 18 / 32}
KvType = Literal["f16", "q8_0", "q4_0"]
PlanKind = Literal["gpu", "hybrid", "cpu", "none"]
# Whether loads run with flash attention, for every estimate and plan (the defaults below) and for
# the load itself (app.core.llm.load_hooks reads it at each load: llama.cpp's "auto" when True,
# off when False). Loads ask for "auto", as llama-server does, and every backend LeanCoder ships
# (CPU, CUDA, Metal, Vulkan) runs it for common head sizes. A model llama.cpp finds no support for
# loads with it off ("Flash Attention not supported, set to disabled" in its log; the load hook
# logs a warning): its compute buffer then also holds the attention scores, which these estimates
# leave out, so at long contexts that model needs more than the plan said.
FLASH_ATTENTION = True

EXPERT_TENSOR = re.compile(r"^blk\.(\d+)\.ffn_[a-z_]*_exps(\.|$)")
# Decode moves every active weight through memory once per token; llama.cpp reaches about this
# share of the measured copy bandwidth.
BANDWIDTH_EFFICIENCY = 0.6
DEFAULT_CPU_BANDWIDTH = 20e9  # bytes/s, a dual-channel DDR4 desktop, when nothing was measured
# Multiply-adds per second one core sustains in llama.cpp's quantized matmuls (SmolLM2-135M decodes
# at about 60 tokens/s on two cores here: 2 x 135M x 60 = 16 GFLOP/s).
CPU_FLOPS_PER_CORE = 8e9
DEFAULT_GPU_BANDWIDTH = {"CUDA": 400e9, "ROCm": 400e9, "Vulkan": 250e9, "Metal": 150e9}


@dataclass(frozen=True, slots=True)
class Footprint:
    """What memory and speed depend on, from a GGUF header or a catalog entry."""

    name: str
    architecture: str
    n_layer: int
    n_embd: int
    n_head: int
    n_head_kv: tuple[int, ...]  # per layer
    key_length: int
    value_length: int
    n_vocab: int
    context_length: int
    n_ff: int
    n_expert: int
    n_expert_used: int
    expert_ff: int
    weights_bytes: int
    expert_bytes_per_layer: tuple[int, ...]  # per layer; zeros for a dense model
    embedding_bytes: int  # token_embd: read one row per token, not all of it
    active_params: float = 0.0  # multiply-adds per token: shared weights + the routed experts
    swa_layers: tuple[bool, ...] = ()
    sliding_window: int = 0
    source: Literal["file", "catalog"] = "file"

    @property
    def is_moe(self) -> bool:
        return self.n_expert > 1 and self.expert_bytes > 0

    @property
    def expert_bytes(self) -> int:
        return sum(self.expert_bytes_per_layer)

    @property
    def shared_bytes(self) -> int:
        """Everything that is not a routed expert: attention, norms, embeddings, shared experts."""
        return self.weights_bytes - self.expert_bytes

    def active_bytes(self) -> float:
        """Bytes read per decoded token: shared weights (minus the embedding table, of which one
        row is read) plus the share of experts the router picks."""
        share = self.n_expert_used / self.n_expert if self.is_moe else 0.0
        return max(1.0, self.shared_bytes - self.embedding_bytes + self.expert_bytes * share)


def footprint_from_header(header: GGUFHeader) -> Footprint:
    """What memory and speed depend on, from a header `read_header` checked (its keys' types and
    ranges, its layer count against its tensors). A file without weights is no model to plan."""
    if header.tensor_bytes == 0 and not header.is_split:
        raise ModelFileError(
            f"{header.path.name} holds no weights (a vocabulary-only or damaged GGUF file), so it "
            "cannot run as a model."
        )
    n_layer = header.arch_int("block_count")
    n_embd = header.arch_int("embedding_length")
    heads = header.arch_per_layer("attention.head_count", n_layer) or [0] * n_layer
    has_kv_heads = bool(header.arch_value("attention.head_count_kv"))  # 0: as many as heads
    kv_list = header.arch_per_layer("attention.head_count_kv", n_layer) if has_kv_heads else None
    heads_kv = kv_list or heads
    n_head = max(heads, default=1) or 1
    default_dim = n_embd // n_head
    experts = [0] * n_layer
    embedding = 0
    for tensor in header.tensors:
        match = EXPERT_TENSOR.match(tensor.name)
        if match and int(match.group(1)) < n_layer:
            experts[int(match.group(1))] += tensor.n_bytes
        elif tensor.name == "token_embd.weight":
            embedding = tensor.n_bytes
    tokens = header.value("tokenizer.ggml.tokens")
    n_vocab = header.arch_int("vocab_size") or (len(tokens) if tokens is not None else 0) or 32000
    window = header.arch_int("attention.sliding_window")
    return Footprint(
        name=header.name,
        architecture=header.architecture,
        n_layer=n_layer,
        n_embd=n_embd,
        n_head=n_head,
        n_head_kv=tuple(heads_kv),
        key_length=header.arch_int("attention.key_length") or default_dim,
        value_length=header.arch_int("attention.value_length") or default_dim,
        n_vocab=n_vocab,
        context_length=header.context_length or 4096,
        n_ff=header.arch_int("feed_forward_length"),
        n_expert=header.arch_int("expert_count"),
        n_expert_used=header.arch_int("expert_used_count"),
        expert_ff=header.arch_int("expert_feed_forward_length"),
        weights_bytes=header.tensor_bytes,
        expert_bytes_per_layer=tuple(experts),
        embedding_bytes=embedding,
        active_params=_active_params(header, n_layer),
        swa_layers=_swa_layers(header, n_layer, window),
        sliding_window=window,
        source="file",
    )


def footprint_from_catalog(entry: CatalogEntry) -> Footprint:
    a = entry.arch
    size = entry.size_bytes
    moe_layers = a.n_layer - a.n_dense_layers
    experts_total = int(size * entry.expert_fraction)
    per_layer = experts_total // moe_layers if entry.moe and moe_layers else 0
    experts = tuple(0 if i < a.n_dense_layers else per_layer for i in range(a.n_layer))
    bytes_per_param = size / entry.params_total if entry.params_total else 0.6
    swa = _every_nth_full(a.n_layer, a.sliding_window_every) if a.sliding_window else ()
    return Footprint(
        name=entry.label,
        architecture=a.architecture,
        n_layer=a.n_layer,
        n_embd=a.n_embd,
        n_head=a.n_head,
        n_head_kv=(a.n_head_kv,) * a.n_layer,
        key_length=a.key_length,
        value_length=a.value_length,
        n_vocab=a.n_vocab,
        context_length=a.context_length,
        n_ff=a.expert_ff or 4 * a.n_embd,
        n_expert=a.n_expert,
        n_expert_used=a.n_expert_used,
        expert_ff=a.expert_ff,
        weights_bytes=size,
        expert_bytes_per_layer=experts,
        embedding_bytes=int(a.n_vocab * a.n_embd * bytes_per_param),
        active_params=entry.params_active,
        swa_layers=swa,
        sliding_window=a.sliding_window,
        source="catalog",
    )


def _active_params(header: GGUFHeader, n_layer: int) -> float:
    n_expert = header.arch_int("expert_count")
    n_used = header.arch_int("expert_used_count")
    share = n_used / n_expert if n_expert else 1.0
    total = 0.0
    for tensor in header.tensors:
        elements = 1
        for dim in tensor.shape:
            elements *= dim
        if tensor.name == "token_embd.weight":
            continue  # a lookup, not a matrix product
        total += elements * share if EXPERT_TENSOR.match(tensor.name) else elements
    return total


def _swa_layers(header: GGUFHeader, n_layer: int, window: int) -> tuple[bool, ...]:
    if not window:
        return ()
    pattern = header.arch_value("attention.sliding_window_pattern")  # checked: int or flags
    if isinstance(pattern, list):
        return tuple(bool(p) for p in pattern[:n_layer])
    if header.architecture == "gpt-oss":  # even layers slide, odd layers see everything
        return tuple(i % 2 == 0 for i in range(n_layer))
    return _every_nth_full(n_layer, int(pattern or 0))


def _every_nth_full(n_layer: int, every: int) -> tuple[bool, ...]:
    """Sliding-window flags when every `every`-th layer sees the whole context (0: none slide)."""
    if every <= 0:
        return ()
    return tuple((i + 1) % every != 0 for i in range(n_layer))


def padded_context(n_ctx: int) -> int:
    return -(-n_ctx // KV_PAD) * KV_PAD


def kv_bytes_per_cell(fp: Footprint, kv_type: KvType = "f16") -> float:
    """KV bytes one token takes in every layer (sliding windows aside)."""
    per_layer = sum(heads * (fp.key_length + fp.value_length) for heads in fp.n_head_kv)
    return per_layer * KV_TYPE_BYTES[kv_type]


def kv_bytes(
    fp: Footprint, n_ctx: int, kv_type: KvType = "f16", n_ubatch: int = DEFAULT_UBATCH
) -> int:
    cells = padded_context(n_ctx)
    swa_cells = min(cells, padded_context(fp.sliding_window + n_ubatch)) if fp.sliding_window else 0
    per_element = KV_TYPE_BYTES[kv_type]
    total = 0.0
    for layer, heads in enumerate(fp.n_head_kv):
        sliding = layer < len(fp.swa_layers) and fp.swa_layers[layer]
        total += heads * (fp.key_length + fp.value_length) * (swa_cells if sliding else cells)
    return int(total * per_element)


def compute_bytes(
    fp: Footprint,
    n_ctx: int,
    n_ubatch: int = DEFAULT_UBATCH,
    flash_attn: bool = FLASH_ATTENTION,
    resident: bool = False,
) -> int:
    """The compute buffer llama.cpp reserves (`resident=False`: what a GPU allocates up front), or
    the part of it that host memory actually holds (`resident=True`): the reservation assumes
    logits for a whole micro-batch, but a chat asks for one token's logits, so on the CPU those
    pages are never touched.

    Measured on the CPU build (bench/fit_accuracy.py, bench/RESULTS.md), flash attention on: the
    starter (SmolLM2-135M) holds 16.0 / 17.2 / 19.1 MiB at 1,024 / 2,048 / 4,096 cells: 15.0 MiB
    plus its f16 mask (1 MiB per 1,024 cells); the tiny MoE 2.6 / 3.6 / 5.9 MiB, its expert
    intermediates (1.8 MiB) plus the mask. The reservation is the logits' stage, and at 2,048
    cells the allocator also kept the mask and two hidden states out of the logits' way (the
    starter: 102.51 MiB there, 98.25 MiB at 1,024 and at 2,304 to 8,192 cells); the estimate takes
    that layout, so a GPU's reservation is not short."""
    f32 = 4
    hidden = fp.n_embd * n_ubatch * f32
    outputs = 1 if resident else n_ubatch
    logits = fp.n_vocab * outputs * f32 + 2 * hidden
    cells = padded_context(n_ctx)
    if fp.is_moe:
        ffn = (
            3 * fp.n_expert_used * fp.expert_ff * n_ubatch * f32
            + fp.n_expert_used * hidden
            + 2 * fp.n_expert * n_ubatch * f32
        )
    else:
        # gate, up and their product, and the hidden states around them that the allocator does
        # not reuse (fitted on the starter, the one dense model measured: 15.0 MiB with 9 MiB of
        # gate, up and product; with flash attention off the scores hide this term)
        ffn = 3 * fp.n_ff * n_ubatch * f32 + 6 * hidden
    if flash_attn:
        mask = cells * n_ubatch * 2  # f16 with flash attention
        attention = 4 * hidden  # Q, K, V and the attention output; no scores
        if resident:
            return max(logits, attention, ffn) + mask
        return max(logits, attention, ffn) + mask + 2 * hidden
    mask = cells * n_ubatch * f32
    scores = cells * n_ubatch * fp.n_head * f32
    # On the CPU, multiplying the f32 scores by the f16 V cache first converts them to f16 in the
    # backend's work buffer: half the scores again, outside the compute buffer proper.
    work = scores // 2 if resident else 0
    attention = scores + work + mask + 4 * hidden
    return max(logits, attention, ffn) + 2 * MIB


@dataclass(frozen=True, slots=True)
class MemoryEstimate:
    weights: int
    expert_weights: int
    kv_cache: int
    compute: int
    overhead: int

    @property
    def total(self) -> int:
        return self.weights + self.kv_cache + self.compute + self.overhead


def estimate_memory(
    fp: Footprint, n_ctx: int, kv_type: KvType = "f16", flash_attn: bool = FLASH_ATTENTION
) -> MemoryEstimate:
    """Everything in one place (a CPU load): what the process grows by once it has decoded a
    conversation that fills the context."""
    return MemoryEstimate(
        weights=fp.weights_bytes,
        expert_weights=fp.expert_bytes,
        kv_cache=kv_bytes(fp, n_ctx, kv_type),
        compute=compute_bytes(fp, n_ctx, flash_attn=flash_attn, resident=True),
        overhead=RUNTIME_OVERHEAD_BYTES,
    )


@dataclass(frozen=True, slots=True)
class GpuBudget:
    name: str
    bytes_free: int
    bandwidth: float  # bytes/s
    unified: bool = False  # shares RAM with the CPU (Apple silicon, integrated GPUs)


@dataclass(frozen=True, slots=True)
class MachineBudget:
    """What a plan may use: RAM and each GPU's memory, before margins."""

    ram_bytes: int
    cpu_bandwidth: float = DEFAULT_CPU_BANDWIDTH
    gpus: tuple[GpuBudget, ...] = ()
    bandwidth_measured: bool = False
    cpu_cores: int = 8  # physical cores: small models are bound by arithmetic, not memory


@dataclass(frozen=True, slots=True)
class FitPlan:
    kind: PlanKind
    n_ctx: int
    n_gpu_layers: int  # llama.cpp's: -1 all, 0 none
    expert_layers_on_cpu: int  # the first N layers keep their experts in host memory
    gpu_bytes: int
    cpu_bytes: int
    tokens_per_s: float  # an estimate from bandwidth, never a promise
    memory: MemoryEstimate
    reason: str
    notes: tuple[str, ...] = field(default=())

    @property
    def fits(self) -> bool:
        return self.kind != "none"
