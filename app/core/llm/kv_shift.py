"""Fast mode for spent thinking: cut the last reply's thinking out of the KV cache in place.

Chat templates drop old thinking from the history, so the next prompt is the cached tokens minus
one span (the thinking block) plus the new turn. Exact mode (the engine's default) keeps the cached
prefix up to where the thinking began and prefills everything after it again. Fast mode removes
the span from the cache (`llama_memory_seq_rm`), moves the later tokens down by the span's length
(`llama_memory_seq_add`; llama.cpp re-rotates their keys), and prefills only the new turn.

It is approximate, hence opt-in and experimental: the kept answer's keys and values were computed
while attending to the thinking, which a fresh prefill of the pruned history never saw
(bench/kv_fast_mode.py measures how far the next-token distribution moves). `Llama` only ever trims
a suffix and tracks `input_ids`/`n_tokens` itself, so the backend mirrors the edit in that
bookkeeping (`LlamaBackend.move_tokens`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from app.core.llm.backend import LlamaBackend

log = logging.getLogger(__name__)

CacheMode = Literal["exact", "fast"]
TokenIds = Sequence[int] | npt.NDArray[np.integer[Any]]
CACHE_MODES: tuple[CacheMode, ...] = ("exact", "fast")
SEQ_ID = 0  # the engine runs one sequence
# A kept run that stops short of the cache's end must be at least this long: a few tokens that
# happen to match elsewhere in the cache are a coincidence, not the previous answer.
MIN_PARTIAL_RUN = 16


@dataclass(frozen=True, slots=True)
class SpanPlan:
    """Cache positions [start, end) are dropped; [end, kept_end) move down to start."""

    start: int
    end: int
    kept_end: int

    @property
    def removed(self) -> int:
        return self.end - self.start

    @property
    def kept(self) -> int:
        return self.kept_end - self.end

    @property
    def reused(self) -> int:
        """Prompt tokens the cache holds after the shift."""
        return self.start + self.kept


@dataclass(frozen=True, slots=True)
class CacheOutcome:
    """What the last fast-mode attempt did; `mode` is "exact" when it fell back."""

    mode: CacheMode
    reused: int = 0  # prompt tokens served from the cache (fast mode)
    removed: int = 0  # tokens cut out of the middle of the cache
    shifted: int = 0  # tokens whose positions moved down
    reason: str = ""  # why fast mode was not used; empty when it was


def find_removed_span(cached: TokenIds, prompt: TokenIds) -> SpanPlan | None:
    """The one span whose removal makes the cache a prefix of `prompt`, or None.

    The kept run is the longest stretch of the cache, after the shared prefix, that continues the
    prompt; on a tie the later one wins (a model that copies its thinking into its answer repeats
    the answer's opening inside the span). The run must reach the end of the cache (or of the
    prompt), or be at least MIN_PARTIAL_RUN tokens long (the cache's tail is then dropped, as exact
    mode does). At least one prompt token is left to evaluate: sampling needs fresh logits.
    """
    cache = np.asarray(cached, dtype=np.int64)
    new = np.asarray(prompt, dtype=np.int64)
    start = common_prefix(cache, new)
    if start >= len(cache) or start >= len(new) - 1:
        return None  # nothing after the shared prefix to cut: exact mode is already optimal
    room = len(new) - 1 - start  # prompt tokens the kept run may cover
    best: SpanPlan | None = None
    best_whole = False
    candidates: list[int] = (np.nonzero(cache[start + 1 :] == new[start])[0] + start + 1).tolist()
    for end in candidates:
        length = min(len(cache) - end, len(new) - start)
        mismatch = np.nonzero(cache[end : end + length] != new[start : start + length])[0]
        run = int(mismatch[0]) if len(mismatch) else length
        whole = run == length  # the run ends with the cache (or with the prompt)
        if best is None or min(run, room) >= best.kept:
            best, best_whole = SpanPlan(start, end, end + min(run, room)), whole
    if best is None or best.kept == 0:
        return None
    if not best_whole and best.kept < MIN_PARTIAL_RUN:
        return None
    return best


def common_prefix(cached: TokenIds, prompt: TokenIds) -> int:
    """How many leading tokens the two sequences share."""
    cache = np.asarray(cached, dtype=np.int64)
    new = np.asarray(prompt, dtype=np.int64)
    limit = min(len(cache), len(new))
    differs = np.nonzero(cache[:limit] != new[:limit])[0]
    return int(differs[0]) if len(differs) else limit


def shift_out_span(backend: LlamaBackend, prompt: TokenIds) -> CacheOutcome:
    """Cut the removed span out of the backend's cache if the prompt allows; report what happened.

    On success the cache holds `outcome.reused` prompt tokens and the caller evaluates the rest.
    On a fallback nothing is changed except, rarely, a tail of the cache that exact mode would have
    removed anyway; the caller then runs exact mode.
    """
    if not backend.can_shift():
        return _fallback("this model's cache cannot shift positions")
    cached = backend.token_ids()
    plan = find_removed_span(cached, prompt)
    if plan is None:
        shared = common_prefix(cached, prompt)
        if shared >= len(cached):
            return _fallback("nothing to remove: the prompt extends the cached tokens")
        if shared >= len(prompt) - 1:
            return _fallback("nothing to remove: the cache already holds the whole prompt")
        return _fallback("the new prompt is not the cached tokens minus one span")
    if backend.pos_min(SEQ_ID) > 0:
        return _fallback(
            "the cache does not keep every earlier position (a sliding-window or recurrent model)"
        )
    if plan.kept_end < backend.n_tokens and not backend.truncate(plan.kept_end):
        return _fallback("llama.cpp refused to trim the cache's tail")
    if not backend.seq_rm(SEQ_ID, plan.start, plan.end):
        return _fallback("llama.cpp refused to drop a span from the middle of this model's cache")
    backend.seq_add(SEQ_ID, plan.end, plan.kept_end, -plan.removed)
    backend.move_tokens(plan.end, plan.kept_end, plan.start)
    top = backend.pos_max(SEQ_ID)
    if top != plan.reused - 1:
        # Never decode on top of a cache whose positions are not what `Llama` believes.
        backend.clear()
        return _fallback(f"the cache ends at position {top}, expected {plan.reused - 1}")
    log.info(
        "fast mode: removed %d cached tokens at %d, shifted %d", plan.removed, plan.start, plan.kept
    )
    return CacheOutcome("fast", reused=plan.reused, removed=plan.removed, shifted=plan.kept)


def _fallback(reason: str) -> CacheOutcome:
    log.info("fast mode not used, exact mode instead: %s", reason)
    return CacheOutcome("exact", reason=reason)
