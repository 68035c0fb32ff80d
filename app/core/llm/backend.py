"""The one door to llama-cpp-python: everything LeanCoder asks of a loaded model goes through here.

`LlamaBackend` wraps one `llama_cpp.Llama` and offers what the engine, the KV fast mode and early
exit need (tokens, evaluation, logits, sampling, KV sequence operations, state), typed. It is the
only code that touches `Llama`'s private attributes (`_ctx`, `_model`, `_logits_all`,
`_batch`): when a llama-cpp-python release renames one, this module is the one to fix.
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
from typing import Any, Protocol

import llama_cpp
import numpy as np
import numpy.typing as npt
from llama_cpp import _internals as llama_internals

from app.core.llm.llama_log import clear_log, last_error_line, recent_log
from app.core.llm.load_hooks import ProgressFn, model_params_hook, refuse_chat_completion
from app.core.llm.token_pieces import TokenPieces

# llama.cpp's log is part of the door: whoever holds a backend can quote why a call failed.
__all__ = [
    "BackendState", "Checkpoint", "LlamaBackend", "Logits", "Sampler", "SamplerSettings",
    "TokenArray", "TokenPieces", "clear_log", "last_error_line", "recent_log",
    "supports_gpu_offload",
]  # fmt: skip

Logits = npt.NDArray[np.float32]
TokenArray = npt.NDArray[np.intc]


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


@dataclass(frozen=True, slots=True, eq=False)
class Checkpoint:
    """Where a provisional stretch of evaluation began (`LlamaBackend.checkpoint`)."""

    position: int
    token_ids: TokenArray  # the bookkeeping ids the provisional tokens will overwrite
    logits: Logits  # the last position's logits: what a sample taken now would see


@dataclass(frozen=True, slots=True, eq=False)
class BackendState:
    """A full copy of the context (KV cache, logits, token bookkeeping) from `save_state`."""

    state: llama_cpp.LlamaState
    model_path: str  # which model and context size it belongs to: no other can take it
    n_ctx: int
    # llama.cpp restores the KV cache but `llama_get_logits_ith(-1)` then reads another row, so
    # the last position's logits are kept here and written back (a sample after a restore).
    logits: Logits | None

    @property
    def n_tokens(self) -> int:
        return int(self.state.n_tokens)

    @property
    def size_bytes(self) -> int:
        return int(self.state.llama_state_size)


class LlamaBackend:
    """One loaded model and its context. Sequence ids are llama.cpp's; the engine runs seq 0."""

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

    # -- KV cache ------------------------------------------------------------------------------

    def _memory(self, *seqs: int, every: bool = False) -> Any:
        """The context's memory handle, once `seqs` are checked: llama.cpp aborts the whole
        process on a sequence id it does not have. `every`: -1 (all sequences) is allowed."""
        for seq in seqs:
            if not (0 <= seq < self._n_seq_max or (every and seq == -1)):
                raise ValueError(
                    f"sequence {seq} does not exist: this context has {self._n_seq_max} "
                    f"(ids 0..{self._n_seq_max - 1})"
                )
        return llama_cpp.llama_get_memory(self._llm._ctx.ctx)

    def can_shift(self) -> bool:
        """Whether cached positions can be moved (`seq_add`); not for recurrent models."""
        memory = self._memory()
        return memory is not None and bool(llama_cpp.llama_memory_can_shift(memory))

    def can_rewind(self) -> bool:
        """Whether a suffix of the cache can be dropped (speculative decoding rejects a draft's
        tail that way); not for recurrent or hybrid models, whose state cannot be rolled back."""
        model = self._llm.model
        return not (
            llama_cpp.llama_model_is_recurrent(model) or llama_cpp.llama_model_is_hybrid(model)
        )

    def seq_rm(self, seq: int, p0: int, p1: int) -> bool:
        """Drop positions [p0, p1) of `seq` (p1 < 0: to the end; seq < 0: every sequence).
        False when llama.cpp cannot (a recurrent model asked for a partial removal). The token
        bookkeeping is the caller's: see `truncate` and `move_tokens`."""
        memory = self._memory(seq, every=True)
        return memory is not None and bool(llama_cpp.llama_memory_seq_rm(memory, seq, p0, p1))

    def seq_add(self, seq: int, p0: int, p1: int, delta: int) -> None:
        """Move positions [p0, p1) of `seq` by `delta` (llama.cpp re-rotates their keys)."""
        memory = self._memory(seq)
        if memory is not None:
            llama_cpp.llama_memory_seq_add(memory, seq, p0, p1, delta)

    def seq_cp(self, src: int, dst: int, p0: int, p1: int) -> None:
        """Make positions [p0, p1) of sequence `src` also belong to `dst` (shared, not copied)."""
        memory = self._memory(src, dst)
        if memory is not None:
            llama_cpp.llama_memory_seq_cp(memory, src, dst, p0, p1)

    def pos_min(self, seq: int) -> int:
        """The lowest position `seq` holds, -1 when empty (above 0: a sliding window forgot)."""
        memory = self._memory(seq)
        return -1 if memory is None else int(llama_cpp.llama_memory_seq_pos_min(memory, seq))

    def pos_max(self, seq: int) -> int:
        """The highest position `seq` holds, -1 when empty."""
        memory = self._memory(seq)
        return -1 if memory is None else int(llama_cpp.llama_memory_seq_pos_max(memory, seq))

    def truncate(self, n: int) -> bool:
        """Keep positions 0..n-1 and forget the rest; False (nothing changed) if llama.cpp
        refused to drop the tail."""
        if not self._llm._ctx.kv_cache_seq_rm(-1, n, -1):
            return False
        self._llm.n_tokens = n
        return True

    def move_tokens(self, start: int, end: int, to: int) -> None:
        """Mirror a cache edit that moved positions [start, end) down to `to` in what `Llama`
        tracks (token ids, stored logits when it keeps them all); n_tokens becomes the moved
        run's new end. The cache edit itself is `seq_rm` + `seq_add`."""
        llm = self._llm
        kept = slice(start, end)
        target = slice(to, to + end - start)
        llm.input_ids[target] = llm.input_ids[kept].copy()
        if llm._logits_all:
            llm.scores[target, :] = llm.scores[kept, :].copy()
        llm.n_tokens = to + end - start

    def forget_tokens(self) -> None:
        """n_tokens = 0: the next evaluation starts at position 0 (and drops the old cache)."""
        self._llm.reset()  # type: ignore[no-untyped-call]

    def clear(self) -> None:
        """Forget every cached position now, not only at the next evaluation."""
        self._llm.reset()  # type: ignore[no-untyped-call]
        self._llm._ctx.kv_cache_clear()  # type: ignore[no-untyped-call]

    # -- provisional evaluation and state ------------------------------------------------------

    def checkpoint(self, room: int) -> Checkpoint | None:
        """Mark the current end so up to `room` provisional tokens can be evaluated and then
        undone by `rewind`; None when the last position has no logits to come back to."""
        logits = self.logits(-1)
        if logits is None:
            return None
        position = self.n_tokens
        ids = self._llm.input_ids[position : position + room].copy()
        return Checkpoint(position, ids, logits.copy())

    def rewind(self, mark: Checkpoint) -> None:
        """Forget every position from the checkpoint on, and put back the bookkeeping and the
        logits buffer, so a sample taken now sees exactly what it would have seen at the mark."""
        llm = self._llm
        llm._ctx.kv_cache_seq_rm(0, mark.position, -1)
        llm.n_tokens = mark.position
        llm.input_ids[mark.position : mark.position + len(mark.token_ids)] = mark.token_ids
        logits = self.logits(-1)
        if logits is not None:
            logits[:] = mark.logits

    def save_state(self) -> BackendState:
        """A copy of the whole context: KV cache, logits, token bookkeeping."""
        logits = self.logits(-1)
        return BackendState(
            self._llm.save_state(),
            self._llm.model_path,
            self.n_ctx(),
            None if logits is None else logits.copy(),
        )

    def load_state(self, state: BackendState) -> None:
        """Put back a `save_state` copy taken from this backend's model and context size
        (ValueError for any other: its bytes would not describe this context)."""
        if (state.model_path, state.n_ctx) != (self._llm.model_path, self.n_ctx()):
            raise ValueError(
                f"the state belongs to {state.model_path} at a context of {state.n_ctx}, not "
                f"to {self._llm.model_path} at {self.n_ctx()}"
            )
        self._llm.load_state(state.state)
        logits = self.logits(-1)
        if logits is not None and state.logits is not None:
            logits[:] = state.logits
