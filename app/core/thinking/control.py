"""Steers a reasoning model's thinking while it samples, per a `ThinkingPolicy`.

The engine asks the controller about every sampled token *before* that token is evaluated, so the
controller can replace it (close the thinking now) or add tokens after it (a wrap-up hint). It only
ever acts inside the thinking span; the answer is never touched.

Closing follows llama.cpp's reasoning-budget sampler (IDLE -> COUNTING -> FORCING -> DONE, re-armed
for every thinking block) with one improvement: at the budget it lets the model finish the word it
is writing (up to a few tokens) and a pending UTF-8 character, then writes the policy's message and
the format's own end marker, so the closing reads as the model's own sentence. A policy's
`turn_budget` bounds all thinking blocks of a reply together: it is never re-armed, so once it is
spent a block the model reopens is closed at its first token.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from app.core.thinking.early_exit import EarlyExit
from app.core.thinking.parser import ThinkingFormat, end_marker_for
from app.core.thinking.policy import ThinkingPolicy

# At the budget, how many more tokens the model may take to reach the end of a word.
MAX_WORD_FINISH_TOKENS = 6
_BOUNDARY_END = (" ", "\n", "\t", ".", ",", ";", ":", "!", "?", ")", "]")


@dataclass(slots=True)
class ThinkingCounters:
    suppressed: int = 0  # sampling steps where a filler word was the model's top choice
    forced_tokens: int = 0  # tokens LeanCoder wrote into the thinking (closings, hints)
    budget_hits: int = 0  # closings at a budget, per block or per turn
    turn_budget_hits: int = 0  # of those, closings because the reply's turn budget was spent
    loops_broken: int = 0
    hints: int = 0
    stopped_by_user: int = 0
    early_exit_probes: int = 0  # trial answers tried (and rolled back) at reflection points
    early_exits: int = 0  # thinking blocks closed because a trial answer was confident
    early_exit_probe_tokens: int = 0  # tokens evaluated by the trials: their cost
    early_exit_probe_seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class Action:
    """`replace`: drop the sampled token and evaluate `tokens` instead; else evaluate both."""

    replace: bool
    tokens: list[int]
    reason: str


class LoopDetector:
    """A loop: the same `n` tokens, or the same paragraph, seen `repeats` times in one block."""

    MIN_PARAGRAPH = 24

    def __init__(self, n: int, repeats: int) -> None:
        self.n = max(2, n)
        self.repeats = max(2, repeats)
        self.reset()

    def reset(self) -> None:
        self._tokens: list[int] = []
        self._ngrams: dict[tuple[int, ...], int] = {}
        self._paragraphs: dict[str, int] = {}
        self._current: list[str] = []

    def add(self, token: int, text: str) -> bool:
        self._tokens.append(token)
        looped = False
        if len(self._tokens) >= self.n:
            key = tuple(self._tokens[-self.n :])
            count = self._ngrams.get(key, 0) + 1
            self._ngrams[key] = count
            looped = count >= self.repeats
        if "\n" in text:
            head, _, tail = text.rpartition("\n")
            self._current.append(head)
            paragraph = " ".join("".join(self._current).split()).lower()
            self._current = [tail]
            if len(paragraph) >= self.MIN_PARAGRAPH:
                count = self._paragraphs.get(paragraph, 0) + 1
                self._paragraphs[paragraph] = count
                looped = looped or count >= self.repeats
        else:
            self._current.append(text)
        return looped


class ThinkingController:
    def __init__(
        self,
        policy: ThinkingPolicy,
        fmt: ThinkingFormat,
        encode: Callable[[str], list[int]],
        filler_ids: Sequence[int] = (),
        stop_now: Any = None,
        early_exit: EarlyExit | None = None,
    ) -> None:
        self.policy = policy
        self.fmt = fmt
        self.counters = ThinkingCounters()
        self.in_thinking = False  # kept current by the engine after every evaluated token
        self._encode = encode
        self._stop_now = stop_now
        self._early_exit = early_exit
        self._filler_ids = sorted({int(i) for i in filler_ids})
        self._filler_set = frozenset(self._filler_ids)
        self._loop = LoopDetector(policy.loop_ngram, policy.loop_repeats)
        self._end = end_marker_for(fmt)
        self._block_tokens = 0
        self._turn_tokens = 0  # thinking tokens of every block of this reply (never re-armed)
        self._hinted = False
        self._looping = False
        self._finishing = 0
        self._last_text = ""

    @property
    def active(self) -> bool:
        return self.fmt is not ThinkingFormat.NONE

    @property
    def block_tokens(self) -> int:
        return self._block_tokens

    @property
    def turn_tokens(self) -> int:
        return self._turn_tokens

    def on_block_open(self) -> None:
        """A thinking block began: re-arm the budget, the hint and the loop detector."""
        self._block_tokens = 0
        self._hinted = False
        self._looping = False
        self._finishing = 0
        self._loop.reset()
        if self._early_exit is not None:
            self._early_exit.reset()

    # -- logits ----------------------------------------------------------------------------------

    def logit_bias(self) -> dict[int, float] | None:
        """Bias for filler tokens while thinking (-inf bans); None when nothing is suppressed.

        The engine applies it only while `in_thinking`: the answer is sampled without it.
        """
        if not (self.active and self.policy.suppress_fillers and self._filler_ids):
            return None
        penalty = self.policy.filler_penalty
        value = float("-inf") if penalty is None else -abs(penalty)
        return dict.fromkeys(self._filler_ids, value)

    def note_top_token(self, token: int) -> None:
        """Count a thinking step whose top choice was a suppressed filler word."""
        if token in self._filler_set:
            self.counters.suppressed += 1

    # -- per token -------------------------------------------------------------------------------

    def step(self, token: int, text: str, utf8_pending: bool) -> Action | None:
        """Decide about a sampled token while thinking. None: evaluate it as sampled."""
        if not (self.active and self.in_thinking):
            return None
        reason = self._closing_reason()
        if reason is not None:
            at_boundary = (
                reason == "user"
                or self._block_tokens == 0
                or self._finishing >= MAX_WORD_FINISH_TOKENS
                or (
                    not utf8_pending
                    and (text[:1].isspace() or self._last_text.endswith(_BOUNDARY_END))
                )
            )
            if at_boundary:
                return self._close(reason)
            self._finishing += 1
        elif self._early_exit is not None and self._confident_trial(token, text):
            return self._close("early_exit")
        self._block_tokens += 1
        self._turn_tokens += 1
        self._last_text = text
        if self.policy.loop_breaker and self._loop.add(token, text):
            self._looping = True
        return self._maybe_hint(text)

    def _confident_trial(self, token: int, text: str) -> bool:
        """At a reflection point, probe a trial answer; True when it is confident enough."""
        assert self._early_exit is not None
        trial = self._early_exit.check(token, text, self._block_tokens)
        if trial is None:
            return False
        self.counters.early_exit_probes += 1
        self.counters.early_exit_probe_tokens += trial.evaluated
        self.counters.early_exit_probe_seconds += trial.seconds
        return trial.confidence > self.policy.early_exit_threshold

    def _closing_reason(self) -> str | None:
        if self._stop_now is not None and self._stop_now.is_set():
            return "user"
        budget = self.policy.budget
        if budget is not None and self._block_tokens >= budget:
            return "budget"
        turn_budget = self.policy.turn_budget
        if turn_budget is not None and self._turn_tokens >= turn_budget:
            return "turn_budget"
        if self._looping:
            return "loop"
        return None

    def _close(self, reason: str) -> Action:
        if reason == "budget":
            self.counters.budget_hits += 1
            message = self.policy.budget_message if self.policy.budget else ""
        elif reason == "turn_budget":
            self.counters.budget_hits += 1
            # Only the first closing explains itself: a reopened block is closed silently.
            first = self.counters.turn_budget_hits == 0
            self.counters.turn_budget_hits += 1
            message = self.policy.budget_message if first and self.policy.turn_budget else ""
        elif reason == "loop":
            self.counters.loops_broken += 1
            message = self.policy.loop_message
        elif reason == "early_exit":
            self.counters.early_exits += 1
            message = ""  # as DEER: the reflection word gives way to the answer
        else:
            self.counters.stopped_by_user += 1
            message = ""
        text = f"\n{message}\n{self._end}\n\n" if message else f"{self._end}\n\n"
        tokens = self._encode(text)
        self.counters.forced_tokens += len(tokens)
        self._finishing = 0
        self._looping = False
        return Action(replace=True, tokens=tokens, reason=reason)

    def _maybe_hint(self, text: str) -> Action | None:
        fraction = self.policy.soft_budget_fraction
        budget = self.policy.budget
        if fraction is None or not budget or self._hinted:
            return None
        if self._block_tokens < fraction * budget or not text.endswith(_BOUNDARY_END):
            return None
        self._hinted = True
        tokens = self._encode(f" {self.policy.soft_hint}\n")
        self.counters.hints += 1
        self.counters.forced_tokens += len(tokens)
        return Action(replace=False, tokens=tokens, reason="hint")
