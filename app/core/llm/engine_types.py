"""What the engine takes and gives: load options, sampling, per-reply statistics, stream events
and what a loaded model is. Plain data, so front ends and tests can use them without the engine."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from app.core.llm.speculative import DEFAULT_SPECULATIVE, SpeculativeMode
from app.core.llm.threads import FrontEnd
from app.core.thinking.control import ThinkingController
from app.core.thinking.filler_words import FillerMatch
from app.core.thinking.parser import Channel, ThinkingFormat
from app.core.thinking.policy import ThinkingPolicy

if TYPE_CHECKING:
    # Only a type: importing kv_shift would load llama.cpp (through the backend) for every
    # command that merely names an engine type, and `leancoder hardware` must run without it.
    from app.core.llm.kv_shift import CacheMode

GIB = 1024**3
# Compute buffers, logits, the runtime itself: what a load costs beyond weights and KV cache.
LOAD_OVERHEAD_BYTES = 300 * 1024**2


class CancelToken(Protocol):
    """Anything with `is_set()`, such as `threading.Event`. Checked once per token."""

    def is_set(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class LoadOptions:
    n_ctx: int = 4096  # 0: the model's training context
    n_gpu_layers: int = 0  # -1: all
    # CPU threads; None or 0: chosen for this machine and front end by app.core.llm.threads.
    # A count above the machine's logical cores is clamped (with a note), never passed on.
    n_threads: int | None = None
    front_end: FrontEnd = "headless"
    n_batch: int = 512
    template: Literal["model", "default"] = "model"
    # A Jinja chat template to use instead of the model's (a user fix for a broken template).
    template_override: str | None = None
    # MoE hybrid plan (llama.cpp's --n-cpu-moe): the routed-expert tensors of the first N layers
    # stay in host memory while the rest of those layers goes to the GPU. -1: every layer's.
    expert_layers_on_cpu: int = 0
    # Spent thinking out of the cache: "exact" re-prefills what followed it; "fast" (experimental,
    # approximate) cuts it out of the KV cache in place (app.core.llm.kv_shift).
    cache_mode: CacheMode = "exact"


@dataclass(frozen=True, slots=True)
class SamplingParams:
    temperature: float = 0.7
    top_p: float = 0.95
    top_k: int = 40
    min_p: float = 0.05
    repeat_penalty: float = 1.0
    max_tokens: int | None = None  # None: until the model stops or the context is full
    seed: int | None = None
    # Prompt-lookup speculative decoding (app.core.llm.speculative): the same text up to
    # llama.cpp's batch numerics; "auto" pauses itself where drafts are rarely accepted, "on"
    # never pauses.
    speculative: SpeculativeMode = DEFAULT_SPECULATIVE


@dataclass(slots=True)
class ReplyStats:
    prompt_tokens: int = 0
    cached_prompt_tokens: int = 0  # reused from the KV cache, not evaluated again
    prompt_seconds: float = 0.0
    time_to_first_token_s: float = 0.0
    thinking_tokens: int = 0
    answer_tokens: int = 0
    decode_seconds: float = 0.0
    total_seconds: float = 0.0
    finish_reason: str = ""  # stop | length | context | cancelled
    policy: str = "Unpruned"
    suppressed_tokens: int = 0  # steps where a suppressed filler word was the top choice
    forced_tokens: int = 0  # tokens LeanCoder wrote into the thinking (closings, hints)
    budget_hits: int = 0
    loops_broken: int = 0
    hints_injected: int = 0
    thinking_block_tokens: int = 0  # tokens in the current (or last) thinking block
    early_exit_probes: int = 0  # trial answers tried and rolled back (app.core.thinking.early_exit)
    early_exits: int = 0  # thinking blocks closed because a trial answer was confident
    early_exit_probe_tokens: int = 0  # tokens the trials evaluated (their cost, not in the reply)
    early_exit_probe_seconds: float = 0.0
    drafted_tokens: int = 0  # prompt-lookup draft tokens verified in a batch (speculative decoding)
    accepted_tokens: int = 0  # drafted tokens the sampler confirmed (each saved one decode step)
    thinking_held_tokens: int = 0  # thinking tokens still held in the KV cache after compaction
    thinking_evicted_tokens: int = 0  # thinking tokens evicted from the KV cache mid-reply
    kv_compactions: int = 0  # times the thinking span was compacted in this reply
    requests: int = 0  # HTTP requests a remote reply took (app.core.remote): 1 + interventions
    resent_prompt_tokens: int = 0  # prompt tokens re-sent by those extra requests (remote)

    @property
    def generated_tokens(self) -> int:
        return self.thinking_tokens + self.answer_tokens

    @property
    def prompt_tokens_per_s(self) -> float:
        evaluated = self.prompt_tokens - self.cached_prompt_tokens
        return evaluated / self.prompt_seconds if self.prompt_seconds > 0 else 0.0

    @property
    def decode_tokens_per_s(self) -> float:
        # The first token's time is prompt processing; speed counts the sampled ones after it
        # (forced tokens are evaluated in a batch and would flatter the figure).
        n = self.generated_tokens - self.forced_tokens - 1
        return n / self.decode_seconds if n > 0 and self.decode_seconds > 0 else 0.0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReplyStats:
        """Rebuild from `to_dict()` output (stored chats); unknown or derived keys are ignored."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["generated_tokens"] = self.generated_tokens
        data["prompt_tokens_per_s"] = round(self.prompt_tokens_per_s, 2)
        data["decode_tokens_per_s"] = round(self.decode_tokens_per_s, 2)
        for key in ("prompt_seconds", "time_to_first_token_s", "decode_seconds", "total_seconds"):
            data[key] = round(data[key], 4)
        data["early_exit_probe_seconds"] = round(self.early_exit_probe_seconds, 4)
        return data


EventKind = Literal["text", "thinking_open", "thinking_close", "done"]


@dataclass(frozen=True, slots=True)
class GenerationEvent:
    """One step of a reply. `stats` is a snapshot taken when the event was made."""

    kind: EventKind
    channel: Channel
    text: str
    stats: ReplyStats


@dataclass(slots=True)
class ModelInfo:
    path: Path
    name: str
    architecture: str
    file_size: int
    n_ctx: int
    n_ctx_train: int
    n_params: int
    thinking_format: ThinkingFormat
    template_name: str
    weights_bytes: int = 0  # tensor data, from the GGUF header
    kv_bytes: int = 0  # the KV cache at n_ctx (f16), from the model's parameters
    notes: list[str] = field(default_factory=list)
    # CPU threads as llama.cpp reports them for this context (read back, not what was asked)
    n_threads: int = 0
    n_threads_batch: int = 0
    supports_tools: bool = False  # the chat template renders `tools` (function calling)


class ChatEngine(Protocol):
    """What a conversation, Compare and bench-thinking need of an engine: the local `Engine`
    (app.core.llm.engine) and a server's `RemoteEngine` (app.core.remote.engine) both are one."""

    info: ModelInfo | None

    def generate(
        self,
        messages: Sequence[dict[str, str]],
        sampling: SamplingParams | None = None,
        cancel: CancelToken | None = None,
        policy: ThinkingPolicy | None = None,
        stop_thinking: CancelToken | None = None,
        force_thinking: bool = False,
    ) -> Iterator[GenerationEvent]: ...

    def count_tokens(self, text: str) -> int: ...

    def reset_cache(self) -> None: ...

    def unload(self) -> None: ...

    def filler_matches(self, words: Sequence[str]) -> list[FillerMatch]: ...


def stats_with_counters(stats: ReplyStats, control: ThinkingController) -> ReplyStats:
    """A copy of the reply's statistics with the thinking controller's counters filled in (the
    local decode loop and the remote engine report them alike)."""
    counters = control.counters
    return dataclasses.replace(
        stats,
        suppressed_tokens=counters.suppressed,
        forced_tokens=counters.forced_tokens,
        budget_hits=counters.budget_hits,
        loops_broken=counters.loops_broken,
        hints_injected=counters.hints,
        thinking_block_tokens=control.block_tokens,
        early_exit_probes=counters.early_exit_probes,
        early_exits=counters.early_exits,
        early_exit_probe_tokens=counters.early_exit_probe_tokens,
        early_exit_probe_seconds=counters.early_exit_probe_seconds,
    )
