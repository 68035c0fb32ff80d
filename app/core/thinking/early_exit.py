"""Early exit on confidence (DEER, arXiv 2504.15895): stop thinking once the answer is settled.

At a reflection point in the thinking (a word such as "Wait" or "But" at a word start, or a
paragraph break), the model is asked for a trial answer: the format's own closing, then
"**Final Answer**", decoded greedily for a few tokens. If the mean of each step's top probability
is above the policy's threshold, the thinking is closed there (the same forced closing the budget
uses); otherwise the trial is rolled back out of the KV cache and decoding goes on exactly where
it was, as if no trial had been made.

The trial never goes through the sampler chain: it reads the logits and takes their argmax, so the
sampler's RNG and penalty history are untouched, and a run whose probes all fail samples the same
tokens as a run without probes (tests/test_early_exit.py checks this).

The model is reached through `TrialModel`, the few operations a trial needs; the engine passes its
`app.core.llm.backend.LlamaBackend`, so this package never imports llama.cpp.

Off by default: DEER's savings were measured on large reasoning models; on the starter model here
they cannot be shown at equal accuracy (bench/RESULTS.md, "Early exit").
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from app.core.thinking.filler_words import normalise_words, scan_vocabulary
from app.core.thinking.parser import ThinkingFormat, end_marker_for
from app.core.thinking.policy import ThinkingPolicy

# Where a reasoning model reconsiders: DEER probes at "Wait"; these are its siblings from the
# NoWait list that start a new line of thought (not "any" or "now", which are ordinary words).
DEFAULT_REFLECTION_WORDS: tuple[str, ...] = (
    "wait", "alternatively", "hmm", "but", "however", "verify", "check", "double-check", "oh",
)  # fmt: skip
# DEER's trial-answer cue; it follows the format's own end marker so the trial is an answer.
TRIAL_ANSWER_CUE = "**Final Answer**\n"

_reflection_cache: weakref.WeakKeyDictionary[Any, dict[tuple[str, ...], frozenset[int]]] = (
    weakref.WeakKeyDictionary()
)

Logits = npt.NDArray[np.float32]


class TrialMark(Protocol):
    """Where a trial began; what `TrialModel.rewind` needs to undo it."""

    @property
    def position(self) -> int: ...


class TrialModel(Protocol):
    """What a trial answer asks of the loaded model (`app.core.llm.backend.LlamaBackend`)."""

    @property
    def n_tokens(self) -> int: ...
    def n_ctx(self) -> int: ...
    def n_vocab(self) -> int: ...
    def evaluate(self, tokens: Sequence[int]) -> None: ...
    def logits(self, index: int = -1) -> Logits | None: ...
    def is_eog(self, token: int) -> bool: ...
    def checkpoint(self, room: int) -> TrialMark | None: ...
    def rewind(self, mark: Any) -> None: ...  # takes the mark its own checkpoint() returned


@dataclass(frozen=True, slots=True)
class ProbeResult:
    confidence: float  # mean over the trial tokens of the top token's probability
    tokens: tuple[int, ...]  # the greedy trial answer
    evaluated: int  # tokens evaluated for the trial, all rolled back
    seconds: float


def trial_prefix(fmt: ThinkingFormat) -> str:
    """What is written after the thinking so far to ask for a trial answer."""
    return f"{end_marker_for(fmt)}\n\n{TRIAL_ANSWER_CUE}"


def reflection_token_ids(
    model: TrialModel,
    pieces: Callable[[int], bytes],
    words: Iterable[str] = DEFAULT_REFLECTION_WORDS,
) -> frozenset[int]:
    """Tokens that spell a reflection word at a word start (memoized per loaded model)."""
    key = normalise_words(words)
    per_model = _reflection_cache.setdefault(model, {})
    ids = per_model.get(key)
    if ids is None:
        ids = frozenset(m.token_id for m in scan_vocabulary(model.n_vocab(), pieces, key))
        per_model[key] = ids
    return ids


def _top(logits: Logits) -> tuple[int, float]:
    """(argmax token, its softmax probability at temperature 1)."""
    values = logits.astype(np.float64)
    best = int(np.argmax(values))
    return best, float(1.0 / np.exp(values - values[best]).sum())


def probe_confidence(
    model: TrialModel,
    prefix: Sequence[int],
    max_tokens: int,
    stop_at_end: bool = False,
) -> ProbeResult | None:
    """Decode a greedy trial answer after `prefix`, then roll it all back.

    `stop_at_end` ends the trial at an end-of-generation token (`model.is_eog`). Returns None when
    the context has no room for the trial. Afterwards the KV cache, the token positions and the
    last position's logits are what they were before the call.
    """
    max_tokens = max(1, max_tokens)
    start_pos = model.n_tokens
    if not prefix or start_pos == 0 or start_pos + len(prefix) + max_tokens > model.n_ctx():
        return None
    start = time.perf_counter()
    mark = model.checkpoint(len(prefix) + max_tokens)
    if mark is None:  # nothing evaluated with logits since the last reset
        return None
    probabilities: list[float] = []
    trial: list[int] = []
    try:
        model.evaluate(list(prefix))
        while True:
            logits = model.logits(-1)
            assert logits is not None  # every evaluation above computes the last position's
            token, probability = _top(logits)
            probabilities.append(probability)
            trial.append(token)
            if len(trial) >= max_tokens or (stop_at_end and model.is_eog(token)):
                break
            model.evaluate([token])
    finally:
        evaluated = model.n_tokens - start_pos
        # The trial's decodes overwrote the logits buffer; the rewind puts back the distribution
        # the caller sampled from, so a sample taken now sees what it would have without the trial.
        model.rewind(mark)
    return ProbeResult(
        confidence=sum(probabilities) / len(probabilities),
        tokens=tuple(trial),
        evaluated=evaluated,
        seconds=time.perf_counter() - start,
    )


class EarlyExit:
    """Decides, token by token inside one thinking block, when to probe (the policy's knobs).

    `probe()` runs a trial answer against the current KV cache (see `probe_confidence`).
    """

    def __init__(
        self,
        reflection_ids: frozenset[int],
        probe: Callable[[], ProbeResult | None],
        min_tokens: int = 64,
        interval: int = 32,
    ) -> None:
        self._reflection_ids = reflection_ids
        self._probe = probe
        self._min_tokens = max(0, min_tokens)
        self._interval = max(1, interval)
        self.reset()

    def reset(self) -> None:
        """A new thinking block: probe again from its own start."""
        self._last_probe: int | None = None
        self._last_text = ""

    def is_reflection_point(self, token: int, text: str) -> bool:
        if token in self._reflection_ids:
            return True
        return "\n\n" in text or (self._last_text.endswith("\n") and text.startswith("\n"))

    def check(self, token: int, text: str, block_tokens: int) -> ProbeResult | None:
        """Probe when `token` (sampled, not yet evaluated) opens a reflection; else None."""
        reflecting = self.is_reflection_point(token, text)
        self._last_text = text
        if not reflecting or block_tokens < self._min_tokens:
            return None
        if self._last_probe is not None and block_tokens - self._last_probe < self._interval:
            return None
        self._last_probe = block_tokens
        return self._probe()


def early_exit_for(
    model: TrialModel,
    pieces: Callable[[int], bytes],
    fmt: ThinkingFormat,
    encode: Callable[[str], list[int]],
    policy: ThinkingPolicy,
) -> EarlyExit | None:
    """The engine's early-exit helper for one reply, or None when the policy does not ask."""
    if not policy.early_exit or fmt is ThinkingFormat.NONE:
        return None
    prefix = encode(trial_prefix(fmt))
    max_tokens = policy.early_exit_probe_tokens
    return EarlyExit(
        reflection_token_ids(model, pieces),
        lambda: probe_confidence(model, prefix, max_tokens, stop_at_end=True),
        min_tokens=policy.early_exit_min_tokens,
        interval=policy.early_exit_interval,
    )
