"""Prompt-lookup (n-gram) drafting for speculative decoding, and how long the drafts should be.

An edit reply mostly repeats code that is already in the prompt (SEARCH blocks copy the file,
REPLACE blocks copy most of it). `NgramDrafter` guesses the next tokens by finding the latest
earlier occurrence of the last few tokens in the prompt and the reply so far and proposing what
followed it; no draft model is needed. The engine's decode loop (app.core.llm.decode_loop)
verifies a draft in one batch and keeps the tokens the sampler itself picks, so the text is the
one decoding without drafts gives (up to llama.cpp's batch numerics, below); only the number of
decode passes changes.

A draft costs something even when it is rejected: evaluating 1 + k tokens takes longer than 1.
On a GPU the extra tokens are nearly free; on a CPU each costs a share of a step (about 0.5-0.7
of a step for the starter model on this project's 2-core test machine: bench/RESULTS.md).
`DraftLength` therefore adapts: it lengthens drafts while they are accepted whole, shortens them
on rejections, and in `auto` mode pauses drafting when the recent acceptance rate is below what a
drafted token costs on this kind of hardware (the break-even rate: 1 + a·k tokens for 1 + c·k
steps' time), probing again after a pause that doubles each time drafting still does not pay.

Every decision depends on the tokens only, never on timings. llama.cpp's logits for a token
depend slightly on how many tokens share its batch (bench/RESULTS.md measured up to 0.74 between
one-by-one and batched evaluation on the CPU), so a drafted reply can differ from an undrafted one
where the top two tokens are that close; deciding from the tokens alone keeps the batches, and so
the reply, the same from one run of a request to the next.

Pure Python over token ids; no llama.cpp here, so the rules are tested without a model.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

SpeculativeMode = Literal["auto", "on", "off"]
SPECULATIVE_MODES: tuple[SpeculativeMode, ...] = ("auto", "on", "off")
# What a reply uses unless told otherwise (SamplingParams, the CLI, the window's setting). Off:
# on the test machine (2 shared cores, starter model) chat replies decoded at 0.89x with `auto`,
# below the 0.97x that would make it the default (bench/RESULTS.md).
DEFAULT_SPECULATIVE: SpeculativeMode = "off"


def speculative_mode(text: object) -> SpeculativeMode:
    """A stored or typed mode name as a mode; anything else (a hand-edited settings file) is the
    default."""
    for mode in SPECULATIVE_MODES:
        if text == mode:
            return mode
    return DEFAULT_SPECULATIVE


class NgramDrafter:
    """Drafts continuations by n-gram lookup over every token seen (prompt, then reply).

    For each n from `max_ngram` down to `min_ngram` it looks up the last n tokens; the first size
    with an earlier occurrence wins, and the tokens after that occurrence's latest instance are the
    draft. The index is built incrementally (one dict entry per size and token), so a lookup costs
    the same at the start of a reply and 10,000 tokens in.
    """

    def __init__(self, tokens: Iterable[int] = (), max_ngram: int = 3, min_ngram: int = 2) -> None:
        if not 1 <= min_ngram <= max_ngram:
            raise ValueError(f"n-gram sizes must satisfy 1 <= {min_ngram} <= {max_ngram}")
        self.max_ngram = max_ngram
        self.min_ngram = min_ngram
        self._tokens: list[int] = []
        # n -> n-gram -> index just past its latest occurrence (that occurrence's end).
        self._index: dict[int, dict[tuple[int, ...], int]] = {
            n: {} for n in range(min_ngram, max_ngram + 1)
        }
        self._indexed = 0  # n-grams ending before this index are in `_index`
        self.extend(tokens)

    def __len__(self) -> int:
        return len(self._tokens)

    def extend(self, tokens: Iterable[int]) -> None:
        """Add tokens the context now holds (the prompt, then every token fed to the model)."""
        self._tokens.extend(int(t) for t in tokens)

    def draft(self, limit: int) -> list[int]:
        """Up to `limit` tokens that may follow the tokens seen so far; [] when nothing matches."""
        tokens = self._tokens
        if limit <= 0 or len(tokens) <= self.min_ngram:
            return []
        # Index every n-gram except the suffix itself, so a lookup finds an earlier occurrence.
        self._index_until(len(tokens) - 1)
        for n in range(min(self.max_ngram, len(tokens) - 1), self.min_ngram - 1, -1):
            end = self._index[n].get(tuple(tokens[-n:]))
            if end is not None:
                return tokens[end : end + limit]
        return []

    def _index_until(self, stop: int) -> None:
        """Index the n-grams that end at indexes below `stop` (exclusive end <= stop)."""
        tokens = self._tokens
        for end in range(self._indexed + 1, stop + 1):
            for n, table in self._index.items():
                if end >= n:
                    table[tuple(tokens[end - n : end])] = end
        self._indexed = max(self._indexed, stop)


@dataclass(frozen=True, slots=True)
class DraftLimits:
    """Draft lengths and costs for one kind of hardware (see `limits_for`)."""

    start: int  # the first draft's length
    longest: int  # drafts never grow past this
    # What one extra draft token costs, as a share of a one-token step: the acceptance rate below
    # which drafting loses time (1 + a·k tokens per step against 1 + c·k steps' worth of time).
    token_cost: float


# The starter model on 2 shared CPU cores: a
# batch of 1 + k tokens took 1 + (0.5 to 0.7)·k steps for k <= 16 (bench/RESULTS.md). GPUs verify a
# batch in about the time of one token (llama.cpp's docs suggest long drafts there).
CPU_LIMITS = DraftLimits(start=4, longest=8, token_cost=0.5)
GPU_LIMITS = DraftLimits(start=8, longest=16, token_cost=0.05)


def limits_for(on_gpu: bool) -> DraftLimits:
    """Short drafts on a CPU, longer ones when the model's layers sit on a GPU."""
    return GPU_LIMITS if on_gpu else CPU_LIMITS


class DraftLength:
    """How many tokens to draft next, from how the recent drafts fared.

    - Lengthen by 2 after a draft accepted whole, shorten by 1 after a rejection (the schedule
      Hugging Face's assisted generation uses), within 1..limits.longest.
    - `auto`: after every `window` drafts, if fewer than `margin` × `limits.token_cost` of the
      drafted tokens were accepted, pause for `pause` steps (doubling per failed probe, up to
      `longest_pause`), then draft again to probe. `on` never pauses; `off` never drafts.
    """

    def __init__(
        self,
        mode: SpeculativeMode,
        limits: DraftLimits,
        window: int = 8,
        pause: int = 32,
        longest_pause: int = 512,
        margin: float = 1.1,
    ) -> None:
        self.mode = mode
        self.limits = limits
        self.window = max(1, window)
        self.first_pause = max(1, pause)
        self.longest_pause = max(self.first_pause, longest_pause)
        self.margin = margin
        self.length = max(1, limits.start)
        self._recent: deque[tuple[int, int]] = deque(maxlen=self.window)
        self._next_pause = self.first_pause
        self._paused_for = 0
        self.pauses = 0  # times drafting was paused because it did not pay

    @property
    def paused(self) -> bool:
        return self._paused_for > 0

    def next_length(self) -> int:
        """The length of the next draft; 0: decode this step without one."""
        if self.mode == "off":
            return 0
        if self._paused_for > 0:
            self._paused_for -= 1
            return 0
        return self.length

    def record(self, drafted: int, accepted: int) -> None:
        """A draft of `drafted` tokens was verified and `accepted` of them were kept."""
        if drafted <= 0:
            return
        if accepted >= drafted:
            self.length = min(self.limits.longest, self.length + 2)
        else:
            self.length = max(1, self.length - 1)
        if self.mode != "auto":
            return
        self._recent.append((drafted, accepted))
        if len(self._recent) < self.window:
            return
        total = sum(d for d, _ in self._recent)
        kept = sum(a for _, a in self._recent)
        self._recent.clear()
        if kept < self.margin * self.limits.token_cost * total:
            self._paused_for = self._next_pause
            self._next_pause = min(self.longest_pause, self._next_pause * 2)
            self.pauses += 1
            self.length = max(1, self.limits.start // 2)
        else:
            self._next_pause = self.first_pause

