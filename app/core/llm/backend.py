"""The one door to llama-cpp-python: everything LeanCoder asks of a loaded model goes through here.

`LlamaBackend` wraps one `llama_cpp.Llama` and offers what the engine, the KV fast mode and early
exit need (tokens, evaluation, logits, sampling, KV sequence operations, state), typed. It is the
only code that touches `Llama`'s private attributes (`_ctx`, `_model`, `_logits_all`,
`_batch`), with its KV cache half (backend_memory): when a llama-cpp-python release renames one,
these two modules are the ones to fix.
`Llama.eval` is still what evaluates a batch, so its bookkeeping (`input_ids`, `n_tokens`) stays
the one `Llama` keeps; where the cache is edited behind its back (a span cut out, a trial rolled
back, a rejected draft dropped) this class mirrors the edit in that bookkeeping.

- llama.cpp's own log lines are kept in a ring buffer (`app.core.llm.llama_log`) instead of
  sprayed on stderr, so a failed load can quote the line that says why.
- Loads run inside `app.core.llm.load_hooks.model_params_hook` (progress, MoE buffer overrides, no
  template compilation by `Llama`).
- Token pieces are decoded with a buffer large enough for any token and memoized
  (`app.core.llm.token_pieces`): the vocabulary never changes while a model is loaded, and this is
  on the per-token path.

Like `Llama`, a backend is not thread-safe: one serialized worker owns it (`app.core.llm.worker`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import llama_cpp
import numpy as np
from llama_cpp import _internals as llama_internals

from app.core.llm.backend_memory import BackendState, Checkpoint, KvMemory, Logits, TokenArray
from app.core.llm.llama_log import clear_log, last_error_line, recent_log
from app.core.llm.load_hooks import ProgressFn, model_params_hook, refuse_chat_completion
from app.core.llm.token_pieces import TokenPieces

# llama.cpp's log is part of the door: whoever holds a backend can quote why a call failed.
__all__ = [
    "BackendState", "Checkpoint", "LlamaBackend", "Logits", "Sampler", "SamplerSettings",
    "TokenArray", "TokenPieces", "clear_log", "last_error_line", "recent_log",
    "supports_gpu_offload",
]  # fmt: skip

def supports_gpu_offload() -> bool:
    """Whether this llama.cpp build can put layers on a GPU at all."""
    return bool(llama_cpp.llama_supports_gpu_offload())


class SamplerSettings(Protocol):
    """The sampling knobs a chain is built from (`app.core.llm.engine.SamplingParams`)."""

    @property
    def temperature(self) -> float: ...
    @property
    def top_p(self) -> float: ...
    @property
    def top_k(self) -> int: ...
    @property
    def min_p(self) -> float: ...
    @property
    def repeat_penalty(self) -> float: ...


@dataclass(frozen=True, slots=True, eq=False)
class Sampler:
    """A llama.cpp sampler chain from `LlamaBackend.sampler`. It keeps its own RNG and penalty
    history, so two chains sample independently; llama.cpp frees it with this object."""

    chain: llama_internals.LlamaSampler


class LlamaBackend(KvMemory):
    """One loaded model and its context. Sequence ids are llama.cpp's; the engine runs seq 0.

    Its KV cache operations, checkpoints and state copies are `KvMemory`'s (backend_memory)."""

    def __init__(self, llama: llama_cpp.Llama) -> None:
        self._llm = llama
        self._vocab = llama_cpp.llama_model_get_vocab(llama.model)
        self._n_vocab = int(llama.n_vocab())
        self._n_seq_max = int(llama_cpp.llama_n_seq_max(llama._ctx.ctx))
        self.pieces = TokenPieces(self._vocab)  # token -> bytes, special tokens rendered

    @classmethod
    def load(
        cls,
        path: str,
        *,
        n_ctx: int,
        n_gpu_layers: int,
        n_threads: int,
        n_threads_batch: int,
        n_batch: int,
        progress: ProgressFn | None = None,
        buffer_overrides: Sequence[tuple[str, int]] = (),
    ) -> LlamaBackend:
        """Load a GGUF file. `progress(fraction)` returning False aborts the load. Raises what
        `Llama` raises (ValueError, RuntimeError, OSError, MemoryError); `last_error_line()` then
        usually says why."""
        with model_params_hook(progress, buffer_overrides):
            llama = llama_cpp.Llama(
                model_path=path,
                n_ctx=n_ctx,
                n_gpu_layers=n_gpu_layers,
                n_threads=n_threads,
                n_threads_batch=n_threads_batch,
                n_batch=n_batch,
                verbose=False,
                # Prompts are rendered by our bounded ChatTemplate, never by llama_cpp's own.
                chat_handler=refuse_chat_completion,
            )
        return cls(llama)

    @property
    def llama(self) -> llama_cpp.Llama:
        """The wrapped `Llama`, for benches that compare against llama-cpp-python's own API."""
        return self._llm

    def close(self) -> None:
        """Free the model and context now (not at garbage collection)."""
        self._llm.close()

    # -- sizes and metadata --------------------------------------------------------------------

    def n_ctx(self) -> int:
        # llama.cpp pads the context (to a multiple of 256), but `Llama` sizes its token
        # bookkeeping by the context asked for: past that, eval/evaluate_all would overflow it.
        return min(int(self._llm.n_ctx()), len(self._llm.input_ids))

    def n_vocab(self) -> int:
        return self._n_vocab

    def n_params(self) -> int:
        return int(self._llm._model.n_params())

    def n_threads(self) -> int:
        """Decode threads, as the context reports them (not what was asked for)."""
        return int(llama_cpp.llama_n_threads(self._llm._ctx.ctx))

    def n_threads_batch(self) -> int:
        """Prompt-processing threads, as the context reports them."""
        return int(llama_cpp.llama_n_threads_batch(self._llm._ctx.ctx))

    def set_threads(self, decode: int, batch: int) -> None:
        """Change the thread counts between two evaluations (app.core.llm.cpu_contention)."""
        llama_cpp.llama_set_n_threads(self._llm._ctx.ctx, decode, batch)

    def metadata(self) -> dict[str, str]:
        """The GGUF key/value metadata as llama.cpp read it."""
        return dict(self._llm.metadata)

    # -- vocabulary ----------------------------------------------------------------------------

    def token_bos(self) -> int:
        return int(self._llm.token_bos())

    def token_eos(self) -> int:
        return int(self._llm.token_eos())

    def token_text(self, token: int) -> str:
        """The vocabulary's text for `token` (as stored, e.g. "<s>")."""
        return str(self._llm._model.token_get_text(token))

    def add_bos_token(self) -> bool:
        """Whether the model wants a BOS token in front of a tokenized prompt."""
        return bool(self._llm._model.add_bos_token())

    def is_eog(self, token: int) -> bool:
        """Whether `token` ends a generation (EOS, EOT and the model's other end tokens)."""
        return bool(llama_cpp.llama_vocab_is_eog(self._vocab, token))

    def tokenize(self, text: str, add_bos: bool = False, special: bool = True) -> list[int]:
        return list(self._llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=special))

    def detokenize(self, tokens: Sequence[int], special: bool = True) -> bytes:
        return bytes(self._llm.detokenize(list(tokens), special=special))

    # -- evaluation ----------------------------------------------------------------------------

    @property
    def n_tokens(self) -> int:
        """Positions the context holds, 0..n_tokens-1 (what `Llama` tracks)."""
        return int(self._llm.n_tokens)

    def token_ids(self) -> TokenArray:
        """The tokens at positions 0..n_tokens-1 (a view: copy it to keep it)."""
        return self._llm.input_ids[: self._llm.n_tokens]

    def evaluate(self, tokens: Sequence[int]) -> None:
        """Evaluate `tokens` after position n_tokens-1, in batches of n_batch; anything cached
        from n_tokens on is dropped first. Afterwards the last position has logits."""
        self._llm.eval(tokens)

    def evaluate_all(self, tokens: Sequence[int]) -> None:
        """Evaluate `tokens` (one batch, at most n_batch) after position n_tokens-1 with logits at
        every position: batch index i then holds what follows tokens[i] (`logits(i)`,
        `sample(sampler, i)`). Speculative decoding verifies a draft this way in one pass."""
        llm = self._llm
        if not 0 < len(tokens) <= llm.n_batch:
            raise ValueError(f"a batch holds 1 to {llm.n_batch} tokens, not {len(tokens)}")
        n_past = llm.n_tokens
        llm._ctx.kv_cache_seq_rm(-1, n_past, -1)
        llm._batch.set_batch(batch=tokens, n_past=n_past, logits_all=True)
        llm._ctx.decode(llm._batch)
        llm.input_ids[n_past : n_past + len(tokens)] = tokens
        if llm._logits_all:
            rows = np.ctypeslib.as_array(
                llama_cpp.llama_get_logits(llm._ctx.ctx), shape=(len(tokens), self._n_vocab)
            )
            llm.scores[n_past : n_past + len(tokens), :] = rows
        llm.n_tokens = n_past + len(tokens)

    @property
    def n_batch(self) -> int:
        """The most tokens one `evaluate_all` batch may hold."""
        return int(self._llm.n_batch)

    def logits(self, index: int = -1) -> Logits | None:
        """The logits of output `index` of the last batch (-1: its last position), as a view of
        llama.cpp's buffer (valid until the next evaluation), or None when it computed none."""
        pointer = llama_cpp.llama_get_logits_ith(self._llm._ctx.ctx, index)
        if not pointer:
            return None
        return np.ctypeslib.as_array(pointer, shape=(self._n_vocab,))

    def top_token(self, index: int = -1) -> int:
        """The highest-logit token at batch output `index` (-1: the last evaluated position),
        read in place (no copy)."""
        logits = self.logits(index)
        if logits is None:
            raise RuntimeError("no position has been evaluated with logits")
        return int(np.argmax(logits))

    # -- sampling ------------------------------------------------------------------------------

    def sampler(
        self, settings: SamplerSettings, seed: int, logit_bias: dict[int, float] | None = None
    ) -> Sampler:
        """The chain `Llama._init_sampler` builds, with an optional native logit bias first.

        Filler suppression runs as llama.cpp's own logit-bias sampler: a Python logits processor
        would copy the whole vocabulary through numpy on every token, which halved the starter
        model's speed.
        """
        chain = llama_internals.LlamaSampler()  # type: ignore[no-untyped-call]
        if logit_bias:
            chain.add_logit_bias(self._n_vocab, logit_bias)
        chain.add_penalties(
            n_vocab=self._n_vocab,
            penalty_last_n=self._llm.last_n_tokens_size,
            penalty_repeat=settings.repeat_penalty,
            penalty_freq=0.0,
            penalty_present=0.0,
        )
        if settings.temperature <= 0.0:
            chain.add_greedy()  # type: ignore[no-untyped-call]
        else:
            chain.add_top_k(settings.top_k)
            chain.add_typical(1.0, 1)
            chain.add_top_p(settings.top_p, 1)
            chain.add_min_p(settings.min_p, 1)
            chain.add_temp(settings.temperature)
            chain.add_dist(seed)
        return Sampler(chain)

    def sample(self, sampler: Sampler, index: int = -1) -> int:
        """Sample from the logits at batch output `index` (-1: the last position); the chain
        records the token (penalties) and advances its RNG, as for any sample."""
        return int(sampler.chain.sample(self._llm._ctx, index))
