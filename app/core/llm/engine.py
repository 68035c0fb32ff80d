"""Load a GGUF model and stream replies from it as channel-tagged events.

The engine owns one `LlamaBackend` (app.core.llm.backend, its only way to llama.cpp). It renders
prompts with the model's own chat template, evaluates and samples token by token (so the thinking
controller can steer sampling and inject tokens), splits the stream into thinking and answer, and
keeps the statistics a user wants to see. It is not thread-safe by design: one serialized worker
owns it (see `app.core.llm.worker`).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.core.errors import GenerationError
from app.core.gguf.header import read_header
from app.core.llm import backend as llama_backend
from app.core.llm.backend import LlamaBackend
from app.core.llm.chat_template import ChatTemplate, Message
from app.core.llm.cpu_contention import ThreadGovernor
from app.core.llm.decode_loop import DecodeLoop
from app.core.llm.engine_types import (
    GIB,
    LOAD_OVERHEAD_BYTES,
    CancelToken,
    EventKind,
    GenerationEvent,
    LoadOptions,
    ModelInfo,
    ReplyStats,
    SamplingParams,
)
from app.core.llm.kv_shift import CacheMode, CacheOutcome, shift_out_span
from app.core.llm.load_checks import (
    check_memory,
    kv_cache_bytes,
    model_template,
    open_backend,
)
from app.core.llm.speculative import DraftLength, SpeculativeMode, limits_for
from app.core.llm.template_limits import TemplateCancelled
from app.core.llm.thinking_kv import (
    MAX_COMPACTED_REPLY_CONTEXTS,
    ThinkingCompactor,
    thinking_compactor,
)
from app.core.llm.threads import detect_cores
from app.core.thinking.control import ThinkingController
from app.core.thinking.early_exit import early_exit_for
from app.core.thinking.filler_words import FillerMatch, normalise_words, scan_vocabulary
from app.core.thinking.parser import (
    Channel,
    ThinkingFormat,
    ThinkingParser,
    detect_format,
    open_marker_for,
    prompt_opens_thinking,
)
from app.core.thinking.policy import UNPRUNED, ThinkingPolicy

if TYPE_CHECKING:
    import llama_cpp

# The engine's own data types live in engine_types; they are named here too, where callers
# have always found them.
__all__ = [
    "GIB",
    "LOAD_OVERHEAD_BYTES",
    "CancelToken",
    "Engine",
    "EventKind",
    "GenerationEvent",
    "LoadOptions",
    "ModelInfo",
    "ReplyStats",
    "SamplingParams",
    "kv_cache_bytes",
    "run_to_completion",
]

class Engine:
    """One loaded model and the generation loop over it."""

    def __init__(self) -> None:
        self._backend: LlamaBackend | None = None
        self._template: ChatTemplate | None = None
        self._filler_cache: dict[tuple[str, ...], list[int]] = {}
        self.info: ModelInfo | None = None
        self.cache_mode: CacheMode = "exact"  # set by load(); may be changed between replies
        self.last_cache_outcome: CacheOutcome | None = None  # the last fast-mode attempt
        self.last_compactor: ThinkingCompactor | None = None  # the last reply's thinking KV record
        self._on_gpu = False  # layers offloaded: speculation may draft longer
        self._threads: ThreadGovernor | None = None  # fewer threads while other programs run

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
        check_memory(header, n_ctx, on_gpu)
        self.unload()
        if progress:
            progress(0.0)

        def on_progress(fraction: float) -> bool:
            if progress:
                progress(min(0.95, fraction * 0.95))
            return not (cancel and cancel.is_set())

        backend = open_backend(path, header, options, n_ctx, notes, on_progress, cancel)
        self._backend = backend
        self._on_gpu = on_gpu
        self.cache_mode = options.cache_mode
        self._threads = ThreadGovernor(backend, not options.n_threads, detect_cores().logical)
        try:
            self._template = model_template(path, header, options, backend, notes)
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
            supports_tools=self._template.supports_tools,
        )
        if progress:
            progress(1.0)
        return self.info

    def unload(self) -> None:
        if self._backend is not None:
            self._backend.close()
        self._backend = None
        self._threads = None
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
        *,
        prompt: str | None = None,
        template_vars: Mapping[str, Any] | None = None,
    ) -> Iterator[GenerationEvent]:
        """Stream a reply to `messages`. Stops within one token of `cancel` being set.

        `policy` prunes the thinking (see thinking_control); `stop_thinking` closes the thinking
        at the next token; `force_thinking` opens a thinking span for models whose template does
        not (using `<think>` tags when the model has no thinking format of its own).
        `template_vars` go to the chat template (the API's `tools`); `prompt` is a raw prompt
        used as is instead of rendering `messages` (the API's /v1/completions).
        """
        asked_at = time.perf_counter()
        backend = self._require()
        assert self.info is not None
        sampling = sampling or SamplingParams()
        policy = policy or UNPRUNED
        fmt = self.info.thinking_format
        try:
            if prompt is None:
                prompt = self.render_prompt(messages, cancel, **(template_vars or {}))
        except TemplateCancelled:  # Stop while a slow template renders: a stopped reply
            stopped = ReplyStats(policy=policy.name, finish_reason="cancelled")
            yield GenerationEvent("done", Channel.ANSWER, "", stopped)
            return
        if force_thinking:
            fmt = fmt if fmt is not ThinkingFormat.NONE else ThinkingFormat.THINK_TAGS
            if not prompt_opens_thinking(prompt, fmt):
                prompt += open_marker_for(fmt)
        tokens = self.tokenize_prompt(prompt)
        if self._threads is not None:
            self._threads.before_reply()
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
        compactor = self.last_compactor = thinking_compactor(
            backend, len(tokens), policy, fmt, stats
        )
        if compactor is not None:  # the reply may outgrow the context: the loop stops at it
            room = sampling.max_tokens or MAX_COMPACTED_REPLY_CONTEXTS * n_ctx
        limit = min(room, sampling.max_tokens) if sampling.max_tokens else room
        seed = sampling.seed if sampling.seed is not None else random.getrandbits(31)
        plain = backend.sampler(sampling, seed)
        bias = control.logit_bias()
        pruning = backend.sampler(sampling, seed, bias) if bias else None
        loop = DecodeLoop(
            backend,
            tokens,
            parser=parser,
            control=control,
            stats=stats,
            limit=limit,
            reason_at_limit="context" if limit == room and compactor is None else "length",
            samplers=(plain, pruning),
            cancel=cancel,
            draft_length=self._draft_length(sampling.speculative),
            early_exit=deer is not None,
            compactor=compactor,
            asked_at=asked_at,
        )
        events = loop.run(lambda: self._prepare_cache(backend, tokens, stats))
        if self._threads is None:
            yield from events
            return
        for event in events:  # another program may start mid-reply: the threads follow it
            yield event
            self._threads.during_reply()

    def _draft_length(self, mode: SpeculativeMode) -> DraftLength | None:
        """Speculation's length schedule for one reply; None when it is off or cannot work
        (a recurrent model's state cannot drop a rejected draft)."""
        backend = self._require()
        if mode == "off" or not backend.can_rewind():
            return None
        return DraftLength(mode, limits_for(self._on_gpu))

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

