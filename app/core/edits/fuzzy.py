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
# Exact similarity is costly: at most this many per search (for the closest lines: fewer).
MAX_EXACT_RATIOS = 1_500
MAX_CLOSEST_RATIOS = 150


@dataclass(frozen=True, slots=True)
class Scored:
    start: int
    end: int
    ratio: float


@dataclass(frozen=True, slots=True)
class Ranking:
    best: Scored | None
    runner_up: Scored | None  # the best window that does not overlap the best one
    complete: bool = True  # False: the work cap was hit before the answer was certain


def _text(lines: list[str]) -> str:
    return "\n".join(content_key(line) for line in lines)


def rank_windows(
    contents: list[str], search: list[str], floor: float, *, slack: bool, runner_up: bool = True
) -> Ranking:
    """The most similar window of `contents` and the runner-up (the best one not overlapping it).

    `slack`: also try windows a few lines shorter or longer than the SEARCH (a line the model left
    out or added). Exact ratios are computed in decreasing order of their cheap upper bound
    (`quick_ratio`) and the search stops once no remaining window can change the answer.
    """
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
    bounds: list[tuple[float, int, int]] = []
    for length in lengths:
        for start in range(0, n - length + 1):
            matcher.set_seq1("\n".join(keys[start : start + length]))
            if matcher.real_quick_ratio() < floor:
                continue
            bound = matcher.quick_ratio()
            if bound >= floor:
                bounds.append((bound, start, start + length))
    bounds.sort(key=lambda b: -b[0])
    scored: list[Scored] = []
    best: Scored | None = None
    second: Scored | None = None  # the best window not overlapping `best`

    def order(s: Scored) -> tuple[float, int, int]:
        return (-s.ratio, abs((s.end - s.start) - m), s.start)

    budget = MAX_EXACT_RATIOS if runner_up else MAX_CLOSEST_RATIOS
    complete = True
    for bound, start, end in bounds:
        if budget == 0:
            complete = False
            break
        budget -= 1
        if best is not None:
            needed = second.ratio if second is not None else floor
            if bound < (needed if runner_up else best.ratio):
                break  # no window left can beat what is known
        matcher.set_seq1("\n".join(keys[start:end]))
        ratio = matcher.ratio()
        if ratio < floor:
            continue
        new = Scored(start, end, ratio)
        scored.append(new)
        if best is None or order(new) < order(best):
            best = new
            apart = [s for s in scored if _apart(s, new)]
            second = min(apart, key=order) if apart else None
        elif _apart(new, best) and (second is None or order(new) < order(second)):
            second = new
    return Ranking(best, second, complete)


def _apart(a: Scored, b: Scored) -> bool:
    return a.end <= b.start or a.start >= b.end
