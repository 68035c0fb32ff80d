"""Load a GGUF model and stream replies from it as channel-tagged events.

The engine owns one `LlamaBackend` (app.core.llm.backend, its only way to llama.cpp). It renders
prompts with the model's own chat template, evaluates and samples token by token (so the thinking
controller can steer sampling and inject tokens), splits the stream into thinking and answer, and
keeps the statistics a user wants to see. It is not thread-safe by design: one serialized worker
owns it (see `app.core.llm.worker`).
"""

from __future__ import annotations

import codecs
import dataclasses
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import psutil

from app.core.errors import GenerationError, ModelLoadError
from app.core.fit.estimate import footprint_from_header, kv_bytes_per_cell
from app.core.gguf.header import GGUFHeader, read_header
from app.core.llm import backend as llama_backend
from app.core.llm.backend import LlamaBackend
from app.core.llm.chat_template import ChatTemplate, Message
from app.core.llm.kv_shift import CacheMode, CacheOutcome, shift_out_span
from app.core.llm.template_limits import RenderLimits, TemplateCancelled
from app.core.llm.threads import FrontEnd, choose_threads, detect_cores
from app.core.thinking.control import ThinkingController
from app.core.thinking.early_exit import early_exit_for
from app.core.thinking.filler_words import FillerMatch, normalise_words, scan_vocabulary
from app.core.thinking.parser import (
    Channel,
    ParseEvent,
    ThinkingFormat,
    ThinkingParser,
    detect_format,
    open_marker_for,
    prompt_opens_thinking,
)
from app.core.thinking.policy import UNPRUNED, ThinkingPolicy

if TYPE_CHECKING:
    import llama_cpp

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


def kv_cache_bytes(header: GGUFHeader, n_ctx: int) -> int:
    """KV bytes = layers x KV heads x (key + value length) x bytes/element x tokens (f16)."""
    return int(kv_bytes_per_cell(footprint_from_header(header)) * n_ctx)


def _expert_layers_on_cpu(header: GGUFHeader, wanted: int) -> int:
    """How many leading layers keep their routed experts in host memory (0 for a dense model)."""
    if wanted == 0 or not int(header.arch_value("expert_count", 0) or 0):
        return 0
    n_layer = int(header.arch_value("block_count", 0) or 0)
    return n_layer if wanted < 0 else max(0, min(wanted, n_layer))


def _expert_overrides(count: int) -> list[tuple[str, int]]:
    """Buffer-type overrides that keep the routed experts of the first `count` layers on host."""
    if count <= 0:
        return []
    from app.core.llm.devices import cpu_buffer_type  # ctypes setup only when a plan needs it

    buffer = cpu_buffer_type().value
    if buffer is None:
        return []
    layers = "|".join(str(i) for i in range(count))
    return [(rf"^blk\.({layers})\.ffn_[a-z_]*_exps", buffer)]


def _check_memory(header: GGUFHeader, n_ctx: int, on_gpu: bool) -> None:
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


class Engine:
    """One loaded model and the generation loop over it."""

    def __init__(self) -> None:
        self._backend: LlamaBackend | None = None
        self._template: ChatTemplate | None = None
        self._filler_cache: dict[tuple[str, ...], list[int]] = {}
        self.info: ModelInfo | None = None
        self.cache_mode: CacheMode = "exact"  # set by load(); may be changed between replies
        self.last_cache_outcome: CacheOutcome | None = None  # the last fast-mode attempt

    # -- loading -------------------------------------------------------------------------------

    @property
    def loaded(self) -> bool:
        return self._backend is not None

    @property
    def backend(self) -> LlamaBackend:
        """The loaded model's door to llama.cpp (GenerationError when none is loaded)."""
        return self._require()

    @property
    def _llm(self) -> llama_cpp.Llama | None:
        """The raw `Llama`, for tests and benches written against it; new code uses `backend`."""
        return self._backend.llama if self._backend is not None else None

    def load(
        self,
        path: str | Path,
        options: LoadOptions | None = None,
        progress: Callable[[float], None] | None = None,
        cancel: CancelToken | None = None,
    ) -> ModelInfo:
        """Load a GGUF file, replacing any loaded model. Progress goes 0.0 -> 1.0."""
        options = options or LoadOptions()
        path = Path(path)
        header = read_header(path)  # clear errors for missing, non-GGUF and truncated files
        n_ctx_train = header.context_length or 4096
        notes: list[str] = []
        n_ctx = options.n_ctx or n_ctx_train
        if n_ctx > n_ctx_train:
            notes.append(f"Context {n_ctx:,} reduced to the model's trained {n_ctx_train:,}.")
            n_ctx = n_ctx_train
        on_gpu = options.n_gpu_layers != 0 and llama_backend.supports_gpu_offload()
        _check_memory(header, n_ctx, on_gpu)
        self.unload()
        if progress:
            progress(0.0)

        def on_progress(fraction: float) -> bool:
            if progress:
                progress(min(0.95, fraction * 0.95))
            return not (cancel and cancel.is_set())

        experts_on_cpu = _expert_layers_on_cpu(header, options.expert_layers_on_cpu)
        overrides = _expert_overrides(experts_on_cpu)
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
            backend = LlamaBackend.load(
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
        self._backend = backend
        self.cache_mode = options.cache_mode
        bos_id, eos_id = backend.token_bos(), backend.token_eos()
        bos = backend.token_text(bos_id) if bos_id >= 0 else ""
        eos = backend.token_text(eos_id) if eos_id >= 0 else ""
        try:
            template_source = header.chat_template if options.template == "model" else None
            if options.template_override is not None:
                template_source = options.template_override
            elif template_source is None and options.template == "model":
                notes.append("The model has no chat template; using the generic ChatML format.")
            name = "custom" if options.template_override is not None else ""
            self._template = ChatTemplate(
                template_source,
                bos_token=bos,
                eos_token=eos,
                name=name,
                label=f"{name or 'model'} chat template of {path.name}"
                if template_source is not None
                else "",
                limits=RenderLimits.for_context(backend.n_ctx()),
            )
        except Exception:
            self.unload()
            raise
        fmt = detect_format(self._template.source if not self._template.is_default else None)
        self.info = ModelInfo(
            path=path,
            name=header.name,
            architecture=header.architecture,
            file_size=header.file_size,
            n_ctx=backend.n_ctx(),
            n_ctx_train=n_ctx_train,
            n_params=backend.n_params(),
            thinking_format=fmt,
            template_name=self._template.name,
            weights_bytes=header.tensor_bytes,
            kv_bytes=kv_cache_bytes(header, backend.n_ctx()),
            notes=notes,
            n_threads=backend.n_threads(),
            n_threads_batch=backend.n_threads_batch(),
        )
        if progress:
            progress(1.0)
        return self.info

    def unload(self) -> None:
        if self._backend is not None:
            self._backend.close()
        self._backend = None
        self._template = None
        self._filler_cache = {}
        self.info = None

    def reset_cache(self) -> None:
        """Forget the KV cache, so the next reply pays its whole prompt (fair comparisons)."""
        self._require().clear()

    def _require(self) -> LlamaBackend:
        if self._backend is None:
            raise GenerationError("No model is loaded. Choose a model first.")
        return self._backend

    # -- prompts -------------------------------------------------------------------------------

    def render_prompt(
        self, messages: Sequence[Message], cancel: CancelToken | None = None, **template_vars: Any
    ) -> str:
        """The prompt for `messages`, rendered under the template's limits; `cancel` stops it
        (TemplateCancelled)."""
        self._require()
        assert self._template is not None
        return self._template.render(
            messages, add_generation_prompt=True, cancel=cancel, **template_vars
        )

    def tokenize_prompt(self, prompt: str) -> list[int]:
        backend = self._require()
        assert self._template is not None
        # Most templates write the BOS text themselves; adding it again would double it.
        add_bos = backend.add_bos_token()
        if self._template.bos_token and prompt.startswith(self._template.bos_token):
            add_bos = False
        return backend.tokenize(prompt, add_bos=add_bos, special=True)

    def count_tokens(self, text: str) -> int:
        return len(self._require().tokenize(text, add_bos=False, special=True))

    # -- generation ----------------------------------------------------------------------------

    def generate(
        self,
        messages: Sequence[Message],
        sampling: SamplingParams | None = None,
        cancel: CancelToken | None = None,
        policy: ThinkingPolicy | None = None,
        stop_thinking: CancelToken | None = None,
        force_thinking: bool = False,
    ) -> Iterator[GenerationEvent]:
        """Stream a reply to `messages`. Stops within one token of `cancel` being set.

        `policy` prunes the thinking (see thinking_control); `stop_thinking` closes the thinking
        at the next token; `force_thinking` opens a thinking span for models whose template does
        not (using `<think>` tags when the model has no thinking format of its own).
        """
        backend = self._require()
        assert self.info is not None
        sampling = sampling or SamplingParams()
        policy = policy or UNPRUNED
        fmt = self.info.thinking_format
        try:
            prompt = self.render_prompt(messages, cancel)
        except TemplateCancelled:  # Stop while a slow template renders: a stopped reply
            stopped = ReplyStats(policy=policy.name, finish_reason="cancelled")
            yield GenerationEvent("done", Channel.ANSWER, "", stopped)
            return
        if force_thinking:
            fmt = fmt if fmt is not ThinkingFormat.NONE else ThinkingFormat.THINK_TAGS
            if not prompt_opens_thinking(prompt, fmt):
                prompt += open_marker_for(fmt)
        tokens = self.tokenize_prompt(prompt)
        n_ctx = backend.n_ctx()
        if len(tokens) >= n_ctx:
            raise GenerationError(
                f"The conversation is {len(tokens):,} tokens but the context holds {n_ctx:,}. "
                "Start a new chat, or load the model with a larger context."
            )
        parser = ThinkingParser(fmt, start_in_thinking=prompt_opens_thinking(prompt, fmt))
        deer = early_exit_for(backend, backend.pieces, fmt, self._encode, policy)
        control = ThinkingController(
            policy, fmt, self._encode, self._filler_ids(policy), stop_thinking, early_exit=deer
        )
        stats = ReplyStats(prompt_tokens=len(tokens), policy=policy.name)
        room = n_ctx - len(tokens)
        limit = min(room, sampling.max_tokens) if sampling.max_tokens else room
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        pieces = backend.pieces
        # Bound once: these run on every token.
        evaluate, sample, is_eog = backend.evaluate, backend.sample, backend.is_eog

        def publish(events: Sequence[ParseEvent]) -> Iterator[GenerationEvent]:
            snapshot = self._snapshot(stats, control)
            for ev in events:
                if ev.kind == "open":
                    control.on_block_open()
                kind: EventKind = "text" if ev.kind == "text" else f"thinking_{ev.kind}"  # type: ignore[assignment]
                yield GenerationEvent(kind, ev.channel, ev.text, snapshot)

        def feed(token_ids: Sequence[int]) -> Iterator[GenerationEvent]:
            """Decode, parse and count tokens that will be evaluated; yield their events."""
            for token in token_ids:
                was_thinking = parser.in_thinking
                events = parser.feed(decoder.decode(pieces(token)))
                if was_thinking or parser.in_thinking:
                    stats.thinking_tokens += 1
                else:
                    stats.answer_tokens += 1
                control.in_thinking = parser.in_thinking
                if events:
                    yield from publish(events)

        start = time.perf_counter()
        yield from publish(parser.feed(""))  # a prompt that opened thinking reports it at once
        control.in_thinking = parser.in_thinking
        pending = self._prepare_cache(backend, tokens, stats)
        seed = sampling.seed if sampling.seed is not None else random.getrandbits(31)
        plain = backend.sampler(sampling, seed)
        bias = control.logit_bias()
        pruning = backend.sampler(sampling, seed, bias) if bias else plain
        first = 0.0
        reason = "context" if limit == room else "length"
        while True:
            if cancel is not None and cancel.is_set():
                reason = "cancelled"
                break
            if stats.generated_tokens >= limit:
                break
            evaluate(pending)
            if bias and control.in_thinking:
                control.note_top_token(backend.top_token())
                token = sample(pruning)
            else:
                token = sample(plain)
            now = time.perf_counter()
            if not first:
                first = now
                stats.prompt_seconds = stats.time_to_first_token_s = now - start
            stats.decode_seconds = now - first
            if is_eog(token):
                reason = "stop"
                break
            action = (  # only thinking is steered: skip the work for answer tokens
                control.step(token, self._piece_text(token), _utf8_pending(decoder))
                if control.in_thinking
                else None
            )
            if action is None:
                pending = [token]
            elif action.replace:
                pending = action.tokens
            else:
                pending = [token, *action.tokens]
            pending = pending[: max(1, n_ctx - backend.n_tokens - 1)]
            yield from feed(pending)
        tail = parser.feed(decoder.decode(b"", final=True)) + parser.flush()
        stats.total_seconds = time.perf_counter() - start
        stats.finish_reason = reason
        yield from publish(tail)
        yield GenerationEvent("done", parser.channel, "", self._snapshot(stats, control))

    @staticmethod
    def _snapshot(stats: ReplyStats, control: ThinkingController) -> ReplyStats:
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

    def _prepare_cache(
        self, backend: LlamaBackend, tokens: list[int], stats: ReplyStats
    ) -> list[int]:
        """Keep the cached prefix the prompt shares with the last context; return what to eval.

        This is what makes a second turn cheap: templates drop old thinking, so the new prompt
        shares everything up to where the last reply's thinking began, and only the answer and the
        new turn are evaluated. Fast mode cuts the thinking out of the cache instead, so only the
        new turn is; it falls back to exact mode (with a logged reason) when it cannot.
        """
        if self.cache_mode == "fast":
            self.last_cache_outcome = shift_out_span(backend, tokens)
            if self.last_cache_outcome.mode == "fast":
                stats.cached_prompt_tokens = self.last_cache_outcome.reused
                return tokens[self.last_cache_outcome.reused :]
        reuse = self._cached_prefix(tokens)
        if reuse <= 0 or not backend.truncate(reuse):
            reuse = 0
            backend.forget_tokens()
        stats.cached_prompt_tokens = reuse
        return tokens[reuse:]

    def _encode(self, text: str) -> list[int]:
        return self._require().tokenize(text, add_bos=False, special=True)

    def _piece_text(self, token: int) -> str:
        return self._require().pieces(token).decode("utf-8", errors="ignore")

    def _filler_ids(self, policy: ThinkingPolicy) -> list[int]:
        if not policy.suppress_fillers:
            return []
        words = normalise_words(policy.filler_words)
        cached = self._filler_cache.get(words)
        if cached is None:
            backend = self._require()
            cached = [m.token_id for m in scan_vocabulary(backend.n_vocab(), backend.pieces, words)]
            self._filler_cache[words] = cached
        return cached

    def filler_matches(self, words: Sequence[str]) -> list[FillerMatch]:
        """The vocabulary tokens a word list suppresses (for the user to review)."""
        backend = self._require()
        return scan_vocabulary(backend.n_vocab(), backend.pieces, words)

    def _cached_prefix(self, tokens: Sequence[int]) -> int:
        """How many leading prompt tokens the KV cache already holds (llama reuses them)."""
        cached = self._require().token_ids()
        n = 0
        for a, b in zip(cached, tokens, strict=False):
            if a != b:
                break
            n += 1
        # llama.cpp re-evaluates the last prompt token to refresh logits when all is cached.
        return min(n, len(tokens) - 1)


def run_to_completion(
    engine: Engine,
    messages: Sequence[Message],
    sampling: SamplingParams | None = None,
    on_event: Callable[[GenerationEvent], None] | None = None,
) -> tuple[str, str, ReplyStats]:
    """Convenience for the CLI and tests: (thinking, answer, stats)."""
    thinking: list[str] = []
    answer: list[str] = []
    stats = ReplyStats()
    for event in engine.generate(messages, sampling):
        if on_event:
            on_event(event)
        if event.kind == "text":
            (thinking if event.channel is Channel.THINKING else answer).append(event.text)
        elif event.kind == "done":
            stats = event.stats
    return "".join(thinking), "".join(answer), stats


def _utf8_pending(decoder: codecs.IncrementalDecoder) -> bool:
    """Whether the decoder holds the first bytes of a character still to be completed."""
    return bool(decoder.getstate()[0])
