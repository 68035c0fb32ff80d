"""The KV cache side of `LlamaBackend` (app.core.llm.backend): sequence operations, the token
bookkeeping `Llama` keeps beside the cache, provisional evaluation (checkpoint and rewind), and
full state copies. A mixin, so callers keep one backend object; it lives apart only to keep each
module a size one can read. Every llama.cpp call checks its sequence ids first: llama.cpp aborts
the whole process on one it does not have.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import llama_cpp
import numpy as np
import numpy.typing as npt

Logits = npt.NDArray[np.float32]
TokenArray = npt.NDArray[np.intc]


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


class KvMemory:
    """KV cache operations over `self._llm` (a loaded `Llama`), for `LlamaBackend`."""

    _llm: llama_cpp.Llama
    _n_seq_max: int

    if TYPE_CHECKING:  # LlamaBackend's own

        @property
        def n_tokens(self) -> int: ...
        def n_ctx(self) -> int: ...
        def logits(self, index: int = -1) -> Logits | None: ...

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
