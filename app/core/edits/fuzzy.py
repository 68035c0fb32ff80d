"""Similarity search: the file window most like a SEARCH text, and how clearly it wins.

Used twice: to apply a SEARCH the model misremembered slightly (only when one window is very
similar and clearly better than any other place), and, when nothing applies, to show the model the
closest real lines so its retry can quote them.
"""

from __future__ import annotations

from dataclasses import dataclass
from difflib import SequenceMatcher

from app.core.edits.merge import content_key

# Beyond this many window comparisons the search gives up (a huge file and a long SEARCH).
MAX_COMPARISONS = 60_000


@dataclass(frozen=True, slots=True)
class Scored:
    start: int
    end: int
    ratio: float


@dataclass(frozen=True, slots=True)
class Ranking:
    best: Scored | None
    runner_up: Scored | None  # the best window that does not overlap the best one


def _text(lines: list[str]) -> str:
    return "\n".join(content_key(line) for line in lines)


def rank_windows(contents: list[str], search: list[str], floor: float, *, slack: bool) -> Ranking:
    """The most similar window of `contents` and the runner-up; `slack`: also try lengths a few
    lines shorter or longer than the SEARCH (a line the model left out or added)."""
    m = len(search)
    n = len(contents)
    if m == 0 or n == 0:
        return Ranking(None, None)
    spread = max(1, m // 10) if slack else 0
    lengths = [k for k in range(m - spread, m + spread + 1) if 0 < k <= n]
    if n * len(lengths) > MAX_COMPARISONS:
        lengths = [min(m, n)]
        if n > MAX_COMPARISONS:
            return Ranking(None, None)
    keys = [content_key(line) for line in contents]
    matcher = SequenceMatcher(None, autojunk=False)
    matcher.set_seq2(_text(search))
    scored: list[Scored] = []
    for length in lengths:
        for start in range(0, n - length + 1):
            matcher.set_seq1("\n".join(keys[start : start + length]))
            if matcher.real_quick_ratio() < floor or matcher.quick_ratio() < floor:
                continue
            ratio = matcher.ratio()
            if ratio >= floor:
                scored.append(Scored(start, start + length, ratio))
    if not scored:
        return Ranking(None, None)
    scored.sort(key=lambda s: (-s.ratio, abs((s.end - s.start) - m), s.start))
    best = scored[0]
    runner_up = next((s for s in scored[1:] if s.end <= best.start or s.start >= best.end), None)
    return Ranking(best, runner_up)
