"""Which thinking tokens matter: cheap importance rules for compacting the thinking's KV cache.

Methods such as DynTS, R-KV or H2O rank cached tokens by the attention they receive, which
llama.cpp does not expose. These rules use only what the public API gives per position, the
token's text and the logits it was sampled from:

- "structural": lines that state something the rest of the thinking builds on (results and
  equations, code, a conclusion after "so"/"therefore"/"thus"/"hence") are marked whole, when
  the line (or sentence) ends.
- "entropy": a token sampled where the model's next-token entropy dropped sharply (the model
  decided something) is marked, with the token after it.

Marks are reply-level ordinals of thinking tokens (the n-th thinking token of the reply), so the
rule never needs to know cache positions: the compactor (app.core.llm.thinking_kv) maps ordinals
to cells. Both rules are bounded: a line longer than MAX_LINE_TOKENS is judged and dropped, and
marks older than the current thinking block are forgotten (`forget_before`).
"""

from __future__ import annotations

import math
import re
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

ImportanceRuleName = Literal["structural", "entropy"]
IMPORTANCE_RULES: tuple[ImportanceRuleName, ...] = ("structural", "entropy")
MAX_LINE_TOKENS = 256  # a "line" longer than this is judged as it stands
ENTROPY_DROP = 1.5  # nats: the entropy fell by at least this much from the previous token ...
DECISIVE_ENTROPY = 0.5  # ... to at most this much: the model has just decided

_CONCLUSION = re.compile(r"\b(so|therefore|thus|hence|answer|result)\b", re.IGNORECASE)
_EQUATION = re.compile(r"[=≈<>≤≥]|\d\s*[-+*/×÷^]\s*\d")
_CODE = re.compile(r"`|\bdef\b|\breturn\b|\bclass\b|\bimport\b|[{};]|\w\(.*\)|^\s{4,}\S")
_SENTENCE_END = re.compile(r"[.!?](\s|$)")


def states_a_result(line: str) -> bool:
    """Whether a line or sentence of thinking states a result, an equation, code or a
    conclusion (the structural rule's test)."""
    text = line.strip()
    if not text:
        return False
    return bool(_CONCLUSION.search(text) or _EQUATION.search(text) or _CODE.search(text))


def entropy_of(logits: npt.NDArray[Any]) -> float:
    """The natural-log entropy of softmax(logits) (a numpy vector)."""
    values = np.asarray(logits, dtype=np.float64)
    top = float(values.max())
    weights = np.exp(values - top)
    total = float(weights.sum())
    probs = weights / total
    nonzero = probs[probs > 0]
    return float(-(nonzero * np.log(nonzero)).sum())


class ImportanceMarks:
    """Marks thinking tokens as they are generated; `marked` holds their ordinals."""

    def __init__(self, rule: ImportanceRuleName) -> None:
        if rule not in IMPORTANCE_RULES:
            raise ValueError(f"unknown importance rule {rule!r}; choose one of {IMPORTANCE_RULES}")
        self.rule: ImportanceRuleName = rule
        self.marked: set[int] = set()
        self._line: list[int] = []
        self._text: list[str] = []
        self._last_entropy = math.nan
        self._mark_next = False

    @property
    def wants_entropy(self) -> bool:
        """Whether `observe` needs the entropy (computing it costs a pass over the vocabulary)."""
        return self.rule == "entropy"

    def observe(self, ordinal: int, text: str, entropy: float | None = None) -> None:
        """One thinking token: its ordinal, its text and the entropy it was sampled at (None for
        forced tokens, which were not sampled)."""
        if self.rule == "entropy":
            self._observe_entropy(ordinal, entropy)
        else:
            self._observe_structure(ordinal, text)

    def forget_before(self, ordinal: int) -> None:
        """Drop marks below `ordinal` (a finished thinking block is never compacted again)."""
        self.marked = {m for m in self.marked if m >= ordinal}

    def _observe_entropy(self, ordinal: int, entropy: float | None) -> None:
        if self._mark_next:
            self.marked.add(ordinal)
            self._mark_next = False
        if entropy is None:
            return
        previous, self._last_entropy = self._last_entropy, entropy
        if previous - entropy >= ENTROPY_DROP and entropy <= DECISIVE_ENTROPY:
            self.marked.add(ordinal)
            self._mark_next = True

    def _observe_structure(self, ordinal: int, text: str) -> None:
        self._line.append(ordinal)
        self._text.append(text)
        ends_line = "\n" in text
        ends_sentence = bool(_SENTENCE_END.search(text)) or ends_line
        if ends_sentence or len(self._line) >= MAX_LINE_TOKENS:
            if states_a_result("".join(self._text)):
                self.marked.update(self._line)
            self._line, self._text = [], []
