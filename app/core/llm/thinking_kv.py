"""Compact the thinking span in the KV cache while the model reasons (a thinking KV cap).

When the open thinking block held in the cache would pass the cap, tokens from its middle are
evicted and the later positions shifted down, with the KV operations fast mode uses
(app.core.llm.kv_shift: `seq_rm`, `seq_add` re-rotating keys, `move_tokens` mirroring the edit in
`Llama`'s bookkeeping). Kept always: the prompt, the first SINK_TOKENS of the block (attention
sinks, StreamingLLM), a recent window, and what the importance rule
(app.core.thinking.importance) marks, as long as the cap allows; unmarked tokens go first, oldest
first. Only tokens of the current thinking block are ever evicted: the prompt, an earlier block
and every answer token stay. The cap counts the block's tokens in the cache plus those about to be
evaluated, so it holds at every step.

The same mechanism rescues a reply whose context fills while it thinks: then the cap is what the
context leaves (minus an answer reserve in "fit" mode), and the loop reports it in the done event.

The engine's own record (`kept`: the reply ordinals held, cell `prompt_len + i` holding
`kept[i]`) is checked against llama.cpp after each edit (pos_min/pos_max and the token ids):
a mismatch stops the reply rather than decoding on a cache whose positions are not what `Llama`
believes. Approximate by nature: kept tokens were computed while attending to the evicted ones
(bench/thinking_kv.py measures the drift). Not thread-safe: the engine's worker owns it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from app.core.llm.backend import LlamaBackend
from app.core.llm.engine_types import ReplyStats
from app.core.storage.logs import content
from app.core.thinking.importance import ImportanceMarks, ImportanceRuleName
from app.core.thinking.parser import ThinkingFormat
from app.core.thinking.policy import ThinkingKVCap, ThinkingPolicy, check_thinking_kv_cap

log = logging.getLogger(__name__)

SEQ_ID = 0
SINK_TOKENS = 4
# A compacted reply without max_tokens stops after this many contexts' worth of tokens: a model
# that never closes its thinking must not run forever.
MAX_COMPACTED_REPLY_CONTEXTS = 16
SAMPLE_CHARS = 80


@dataclass(frozen=True, slots=True)
class Eviction:
    """One compaction: cache runs [start, end) removed (positions before the edit)."""

    runs: tuple[tuple[int, int], ...]
    count: int
    reason: Literal["cap", "context"]
    held_after: int


def thinking_compactor(
    backend: LlamaBackend,
    prompt_len: int,
    policy: ThinkingPolicy,
    fmt: ThinkingFormat,
    stats: ReplyStats,
) -> ThinkingCompactor | None:
    """The compactor for one reply under `policy`, or None when the policy has no thinking KV
    cap or this model cannot do it (logged: the reply then runs as without a cap)."""
    if policy.thinking_kv_cap is None:
        return None
    why = ""
    if fmt is ThinkingFormat.NONE:
        why = "the model has no thinking format"
    elif not (backend.can_shift() and backend.can_rewind()):
        why = "this model's cache cannot shift positions (a recurrent or hybrid model)"
    elif backend.pos_min(SEQ_ID) > 0:
        why = "the cache does not keep every earlier position (a sliding-window model)"
    if why:
        log.info("thinking KV cap not used: %s", why)
        return None
    return ThinkingCompactor(
        backend, prompt_len, policy.thinking_kv_cap, policy.thinking_kv_rule, stats
    )


class ThinkingCompactor:
    """Tracks the reply's tokens in the cache and evicts thinking from the middle when asked."""

    def __init__(
        self,
        backend: LlamaBackend,
        prompt_len: int,
        cap: ThinkingKVCap,
        rule: ImportanceRuleName,
        stats: ReplyStats,
    ) -> None:
        self.backend = backend
        self.prompt_len = prompt_len
        self.cap = check_thinking_kv_cap(cap)
        self.marks = ImportanceMarks(rule)
        self.stats = stats
        self.tokens: list[int] = []  # every reply token, by ordinal
        self.thinking: list[bool] = []  # whether that token belongs to a thinking span
        self.kept: list[int] = []  # ordinals held, in cache order (the tail may be pending)
        self.block_start: int | None = None  # the last thinking block's first ordinal
        self.block_end: int | None = None  # the first ordinal after it; None while it is open
        self.evictions: list[Eviction] = []
        self.context_rescues = 0  # compactions made because the context was full
        n_ctx = backend.n_ctx()
        self.answer_reserve = max(16, (n_ctx - prompt_len) // 4) if cap == "fit" else 0

    @property
    def wants_entropy(self) -> bool:
        return self.marks.wants_entropy

    def note(self, token: int, thinking: bool, text: str, entropy: float | None) -> None:
        """One reply token fed to the loop (it will be, or already was, evaluated)."""
        ordinal = len(self.tokens)
        self.tokens.append(token)
        self.thinking.append(thinking)
        self.kept.append(ordinal)
        if not thinking:
            if self.block_start is not None and self.block_end is None:
                self.block_end = ordinal
            return
        if self.block_start is None or self.block_end is not None:
            self.block_start, self.block_end = ordinal, None
            self.marks.forget_before(ordinal)
        self.marks.observe(ordinal, text, entropy)
        self.stats.thinking_held_tokens += 1

    def cached_ordinals(self, pending: int) -> list[int]:
        """The ordinals of the reply tokens the cache holds, pending ones left out."""
        return self.kept[: len(self.kept) - pending]

    def compact(self, pending: int) -> Eviction | None:
        """Before `pending` fed tokens are evaluated: evict if the block would pass the cap or
        the context would overflow. Returns what was evicted, if anything."""
        backend = self.backend
        cached = len(self.kept) - pending
        if backend.n_tokens != self.prompt_len + cached:
            raise RuntimeError(
                f"the KV cache holds {backend.n_tokens} tokens but the compactor's record says "
                f"{self.prompt_len + cached}"
            )
        if not self._block_open(pending):
            return None
        first, held, cap, context_cap, pending_block = self._measure(pending)
        if held <= cap:
            return None
        reason: Literal["cap", "context"] = (
            "cap" if isinstance(self.cap, int) and self.cap <= context_cap else "context"
        )
        target = cap - max(1, cap // 8)  # a chunk at a time: not one edit per token
        # The recent window shrinks when many tokens are pending (a forced budget message), so
        # the cap still holds whenever the sinks and the pending tokens fit in it.
        window = max(1, min(max(8, cap // 4), target - SINK_TOKENS - pending_block))
        middle = list(range(first + SINK_TOKENS, cached - window))
        if not middle or target < 0:
            return None  # nothing evictable: the loop's context check decides
        marked = self.marks.marked
        order = [i for i in middle if self.kept[i] not in marked]
        order += [i for i in middle if self.kept[i] in marked]
        chosen = sorted(order[: held - target])
        runs = _runs([self.prompt_len + i for i in chosen])
        self._edit(runs)
        sample = "".join(
            self.backend.pieces(self.tokens[self.kept[i]]).decode("utf-8", "replace")
            for i in chosen[:24]
        )[:SAMPLE_CHARS]
        for i in reversed(chosen):
            del self.kept[i]
        self._verify(pending)
        eviction = Eviction(tuple(runs), len(chosen), reason, held - len(chosen))
        self.evictions.append(eviction)
        self.stats.thinking_evicted_tokens += len(chosen)
        self.stats.thinking_held_tokens -= len(chosen)
        self.stats.kv_compactions += 1
        if reason == "context":
            self.context_rescues += 1
        log.info(
            "thinking KV compaction (%s): evicted %d thinking tokens in %d runs from positions "
            "%d..%d, %d held; sample: %s",
            reason, len(chosen), len(runs), runs[0][0], runs[-1][1] - 1, eviction.held_after,
            content(sample),
        )  # fmt: skip
        return eviction

    def room(self, pending: int) -> int:
        """How many more tokens fit after `pending` before the next compaction is due (a
        speculative draft is kept within it, so the cap holds at every verified position)."""
        if not self._block_open(pending):
            return self.backend.n_ctx()
        _first, held, cap, _context_cap, _pending_block = self._measure(pending)
        return max(0, cap - held)

    def _block_open(self, pending: int) -> bool:
        """Whether the last thinking block is open or still has tokens waiting to be evaluated
        (a forced close and the answer's first tokens can arrive in one batch)."""
        if self.block_start is None:
            return False
        return self.block_end is None or self.block_end > len(self.tokens) - pending

    def _measure(self, pending: int) -> tuple[int, int, int, int, int]:
        """(the block's first cached index into `kept`, block tokens held with pending ones,
        the cap in force, what the context leaves the block, pending block tokens)."""
        assert self.block_start is not None
        cached = len(self.kept) - pending
        start = self.block_start
        first = next((i for i in range(cached) if self.kept[i] >= start), cached)
        block_cached = cached - first
        end = self.block_end if self.block_end is not None else len(self.tokens)
        pending_block = sum(1 for o in self.kept[cached:] if start <= o < end)
        held = block_cached + pending_block
        outside = self.backend.n_tokens - block_cached + (pending - pending_block)
        context_cap = self.backend.n_ctx() - outside - 1 - self.answer_reserve
        cap = context_cap if self.cap in (None, "fit") else min(int(self.cap), context_cap)
        return first, held, cap, context_cap, pending_block

    def _edit(self, runs: Sequence[tuple[int, int]]) -> None:
        """Remove each run and shift what follows it down, top run first (so the positions of
        the runs below stay valid)."""
        backend = self.backend
        for start, end in reversed(runs):
            top = backend.n_tokens
            if not backend.seq_rm(SEQ_ID, start, end):
                raise RuntimeError("llama.cpp refused to evict thinking tokens from the KV cache")
            backend.seq_add(SEQ_ID, end, top, start - end)
            backend.move_tokens(end, top, start)

    def _verify(self, pending: int) -> None:
        backend = self.backend
        n = backend.n_tokens
        expected = self.prompt_len + len(self.kept) - pending
        lo, hi = backend.pos_min(SEQ_ID), backend.pos_max(SEQ_ID)
        ids = backend.token_ids()[self.prompt_len :].tolist()
        record = [self.tokens[o] for o in self.cached_ordinals(pending)]
        if n != expected or lo != 0 or hi != n - 1 or ids != record:
            backend.clear()  # never decode on a cache whose positions are not the record's
            raise RuntimeError(
                f"after a thinking compaction the KV cache holds positions {lo}..{hi} of "
                f"{n}; the record expects 0..{expected - 1}"
            )

    def context_note(self) -> str:
        """What the done event says when the context filled while thinking; empty otherwise."""
        if not self.context_rescues:
            return ""
        return (
            f"The context filled while thinking: {self.stats.thinking_evicted_tokens:,} thinking "
            f"tokens were evicted from the KV cache ({self.stats.kv_compactions} compactions) "
            "so the reply could go on."
        )


def _runs(positions: Sequence[int]) -> list[tuple[int, int]]:
    """Sorted positions grouped into [start, end) runs."""
    runs: list[tuple[int, int]] = []
    for p in positions:
        if runs and runs[-1][1] == p:
            runs[-1] = (runs[-1][0], p + 1)
        else:
            runs.append((p, p + 1))
    return runs
