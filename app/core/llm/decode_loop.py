"""The engine's decode loop for one reply: evaluate, sample, steer, stream, with optional
prompt-lookup speculative decoding.

Each step of the loop is one method, in this order:

1. `_stop_reason`: cancelled, or the token limit reached.
2. `_draft`: up to k tokens guessed by n-gram lookup over the prompt and the reply so far
   (app.core.llm.speculative); none when speculation is off, paused or has no match.
3. `_evaluate`: the pending tokens (the last sampled token, or forced ones), with the draft after
   them in the same batch and logits at every draft position.
4. `_verify`: at each position, sample with the real chain at that batch index (so penalties and
   the RNG advance exactly as without a draft), let the thinking controller act, and keep going
   while the sampled token equals the drafted one. The first position where they differ, where
   the controller acts or where the reply ends closes the step: the rest of the draft is removed
   from the KV cache (a suffix trim that also fixes `Llama`'s bookkeeping) and the sampled or
   forced tokens become the next pending ones.

Without a draft, steps 3 and 4 are exactly the loop the engine always ran (one position, the
last). With one, every sampled token and every controller decision is the one the plain loop
would make from the same logits, so the text and the events are the same; only the number of
decode passes changes. One caveat is llama.cpp's: a position's logits differ slightly when it is
evaluated inside a batch rather than alone (on the CPU up to 0.74 for the starter model, the same
as a prompt prefill against one-by-one decoding), so where the top two tokens are closer than that
a drafted reply can take the other one (bench/speculative.py counts such replies).
Early exit's trial answers read the KV cache, so inside thinking with early exit on the draft is
dropped before the controller is asked: a trial then sees the cache the plain loop would have.

Everything reaches llama.cpp through `LlamaBackend`. Not thread-safe: the engine's worker owns it.
"""

from __future__ import annotations

import codecs
import time
from collections.abc import Callable, Generator, Iterator, Sequence

from app.core.llm.backend import LlamaBackend, Sampler
from app.core.llm.engine_types import (
    CancelToken,
    EventKind,
    GenerationEvent,
    ReplyStats,
    stats_with_counters,
)
from app.core.llm.speculative import DraftLength, NgramDrafter
from app.core.llm.thinking_kv import ThinkingCompactor
from app.core.thinking.control import ThinkingController
from app.core.thinking.importance import entropy_of
from app.core.thinking.parser import ParseEvent, ThinkingParser


class DecodeLoop:
    """Decodes one reply after its prompt; `run` yields its events, the last one "done"."""

    def __init__(
        self,
        backend: LlamaBackend,
        prompt_tokens: Sequence[int],
        *,
        parser: ThinkingParser,
        control: ThinkingController,
        stats: ReplyStats,
        limit: int,
        reason_at_limit: str,
        samplers: tuple[Sampler, Sampler | None],
        cancel: CancelToken | None = None,
        draft_length: DraftLength | None = None,
        early_exit: bool = False,
        compactor: ThinkingCompactor | None = None,
        asked_at: float | None = None,
    ) -> None:
        self.backend = backend
        # When the reply was asked for (perf_counter): time to first token counts from there,
        # the template and the tokenizer included; prompt_seconds counts the prefill only.
        self._asked_at = asked_at
        self.parser = parser
        self.control = control
        self.stats = stats
        self.limit = limit
        self.reason = reason_at_limit
        self._reason_at_limit = reason_at_limit
        self.cancel = cancel
        self._plain, self._pruning = samplers  # pruning: the filler bias, used inside thinking
        self._lengths = draft_length
        self._drafter = NgramDrafter(prompt_tokens) if draft_length is not None else None
        self._early_exit = early_exit
        self._compactor = compactor
        self._entropy: float | None = None  # of the last sampled token's distribution
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._n_ctx = backend.n_ctx()
        self._base: int | None = None  # where the verified batch begins, while it has a draft
        self._start = 0.0
        self._first = 0.0
        self._unevaluated: list[int] = []  # fed to the reply but not yet in the KV cache

    # -- the loop ------------------------------------------------------------------------------

    def run(self, prepare_cache: Callable[[], list[int]]) -> Iterator[GenerationEvent]:
        """Stream the reply; `prepare_cache()` readies the KV cache and returns what to evaluate."""
        self._start = time.perf_counter()
        yield from self._publish(self.parser.feed(""))  # a prompt that opened thinking says so
        self.control.in_thinking = self.parser.in_thinking
        pending: list[int] | None = prepare_cache()
        first = True  # the first pending tokens are the prompt's, not the reply's
        while pending is not None:
            stop = self._stop_reason()
            if stop is None and not first:
                stop = self._make_room(pending)
            if stop is not None:
                self.reason = stop
                self._unevaluated = [] if first else list(pending)
                break
            first = False
            draft = self._draft(pending)
            self._evaluate(pending, draft)
            pending = yield from self._verify(draft)
        tail = self.parser.feed(self._decoder.decode(b"", final=True)) + self.parser.flush()
        self.stats.total_seconds = time.perf_counter() - (self._asked_at or self._start)
        self.stats.finish_reason = self.reason
        yield from self._publish(tail)
        note = self._compactor.context_note() if self._compactor is not None else ""
        final = stats_with_counters(self.stats, self.control)
        yield GenerationEvent("done", self.parser.channel, note, final)
        self._settle()

    def _settle(self) -> None:
        """Put the reply's last tokens into the KV cache, after "done" reached the consumer.

        A reply cut at the token limit (or stopped) ends with tokens that were sampled and shown
        but never evaluated; the next turn resends them, and without this the prompt cache would
        prefill them again (one token a turn: 6% of a short API turn). Evaluating them here costs
        the same decode step, but after the reply is out, so nobody waits for it. Runs only when
        the consumer asks past "done" (a for loop does; a closed generator skips it)."""
        tokens, self._unevaluated = self._unevaluated, []
        if tokens and self.backend.n_tokens + len(tokens) <= self._n_ctx:
            self.backend.evaluate(tokens)

    def _stop_reason(self) -> str | None:
        if self.cancel is not None and self.cancel.is_set():
            return "cancelled"
        if self.stats.generated_tokens >= self.limit:
            return self._reason_at_limit
        return None

    def _make_room(self, pending: Sequence[int]) -> str | None:
        """Compact the thinking KV cache if it would pass its cap (before any draft, so the
        draft is placed after the edited cache); "context" when the pending tokens still do
        not fit. Only with a compactor: without one the token limit stops at the context."""
        if self._compactor is None:
            return None
        self._compactor.compact(len(pending))
        if self.backend.n_tokens + len(pending) > self._n_ctx:
            return "context"
        return None

    def _draft(self, pending: Sequence[int]) -> list[int]:
        if self._lengths is None or self._drafter is None:
            return []
        wanted = self._lengths.next_length()
        # Never past the token limit, the context or one batch: every drafted position that
        # could be kept is one the plain loop could have reached.
        room = min(
            wanted,
            self.limit - self.stats.generated_tokens - 1,
            self.backend.n_batch - 1,
            self._n_ctx - self.backend.n_tokens - len(pending) - 1,
            self._compactor.room(len(pending)) if self._compactor is not None else wanted,
        )
        return self._drafter.draft(room) if room > 0 else []

    def _evaluate(self, pending: Sequence[int], draft: Sequence[int]) -> None:
        if not draft:
            self.backend.evaluate(pending)
            return
        if len(pending) > 1:  # a prompt or forced tokens: only the last one needs logits
            self.backend.evaluate(pending[:-1])
        self._base = self.backend.n_tokens
        self.backend.evaluate_all([pending[-1], *draft])
        self.stats.drafted_tokens += len(draft)

    def _verify(
        self, draft: Sequence[int]
    ) -> Generator[GenerationEvent, None, list[int] | None]:
        """Sample each position of the last batch; return the next pending tokens, or None
        when the reply ends. A generator function: `yield from` it for its events."""
        backend, control = self.backend, self.control
        for i in range(len(draft) + 1):
            # Batch index i predicts what follows position base + i; without a draft the only
            # position with logits is the last one.
            index = i if draft else -1
            if i > 0 and (stop := self._stop_reason()) is not None:
                self.reason = stop
                self._drop_draft(self._position(i) + 1)  # draft[i-1] was fed: it stays cached
                return None
            token = self._sample(index)
            self._clock()
            if backend.is_eog(token):
                self.reason = "stop"
                self._drop_draft(self._position(i) + 1)
                return None
            if self._early_exit and control.in_thinking:
                self._drop_draft(self._position(i) + 1)  # a trial answer must see this cache
            action = (  # only thinking is steered: skip the work for answer tokens
                control.step(token, self._piece_text(token), bool(self._decoder.getstate()[0]))
                if control.in_thinking
                else None
            )
            if action is None and self._base is not None and i < len(draft) and token == draft[i]:
                self.stats.accepted_tokens += 1
                yield from self._feed([token])
                continue
            self._drop_draft(self._position(i) + 1)
            if self._lengths is not None and draft:
                self._lengths.record(len(draft), i)
            if action is None:
                pending = [token]
            elif action.replace:
                pending = action.tokens
                self._entropy = None  # the sampled token is not fed
            else:
                pending = [token, *action.tokens]
            if self._compactor is None:  # a compactor makes room, or stops at "context"
                pending = pending[: max(1, self._n_ctx - backend.n_tokens - 1)]
            yield from self._feed(pending)
            return pending
        raise AssertionError("unreachable: the last position always ends the step")

    # -- helpers -------------------------------------------------------------------------------

    def _position(self, i: int) -> int:
        """The cache position of draft[i-1] (i >= 1), or of the last pending token (i = 0)."""
        return (self._base if self._base is not None else self.backend.n_tokens - 1) + i

    def _drop_draft(self, keep: int) -> None:
        """Forget the unverified rest of the batch: positions from `keep` on."""
        if self._base is None:
            return
        self._base = None
        if self.backend.n_tokens > keep and not self.backend.truncate(keep):
            # can_rewind() is checked before drafting; a refusal here would decode on a wrong cache.
            raise RuntimeError("llama.cpp refused to drop a rejected draft from the KV cache")

    def _sample(self, index: int) -> int:
        compactor = self._compactor
        if compactor is not None and compactor.wants_entropy and self.control.in_thinking:
            logits = self.backend.logits(index)
            self._entropy = None if logits is None else entropy_of(logits)
        if self._pruning is not None and self.control.in_thinking:
            self.control.note_top_token(self.backend.top_token(index))
            return self.backend.sample(self._pruning, index)
        return self.backend.sample(self._plain, index)

    def _clock(self) -> None:
        now = time.perf_counter()
        if not self._first:
            self._first = now
            self.stats.prompt_seconds = now - self._start
            self.stats.time_to_first_token_s = now - (self._asked_at or self._start)
        self.stats.decode_seconds = now - self._first

    def _piece_text(self, token: int) -> str:
        return self.backend.pieces(token).decode("utf-8", errors="ignore")

    def _feed(self, token_ids: Sequence[int]) -> Iterator[GenerationEvent]:
        """Decode, parse and count tokens that will be evaluated; yield their events."""
        parser, stats = self.parser, self.stats
        if self._drafter is not None:
            self._drafter.extend(token_ids)
        for token in token_ids:
            was_thinking = parser.in_thinking
            piece = self.backend.pieces(token)
            events = parser.feed(self._decoder.decode(piece))
            thinking = was_thinking or parser.in_thinking
            if thinking:
                stats.thinking_tokens += 1
            else:
                stats.answer_tokens += 1
            if self._compactor is not None:
                text = piece.decode("utf-8", errors="ignore")
                self._compactor.note(token, thinking, text, self._entropy)
                self._entropy = None  # forced tokens after it were not sampled
            self.control.in_thinking = parser.in_thinking
            if events:
                yield from self._publish(events)

    def _publish(self, events: Sequence[ParseEvent]) -> Iterator[GenerationEvent]:
        shot = stats_with_counters(self.stats, self.control)
        for ev in events:
            if ev.kind == "open":
                self.control.on_block_open()
            kind: EventKind = "text" if ev.kind == "text" else f"thinking_{ev.kind}"  # type: ignore[assignment]
            yield GenerationEvent(kind, ev.channel, ev.text, shot)
