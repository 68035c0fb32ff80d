"""Similarity search: the file window most like a SEARCH text, and how clearly it wins.

Used twice: to apply a SEARCH the model misremembered slightly (only when one window is very
similar and clearly better than any other place), and, when nothing applies, to show the model the
closest real lines so its retry can quote them.

The similarity is difflib's `SequenceMatcher.ratio` over the window's text, which costs
milliseconds per window; a 20,000-line file has 60,000 windows. So windows are filtered by two
cheap upper bounds of that ratio, loosest first, and the exact ratio is computed only where a
bound says the window could still win:

1. a character-count bound (difflib's `quick_ratio`, or looser), for every window at once with
   prefix sums over per-line character counts (numpy);
2. the longest common subsequence (rapidfuzz's Indel similarity, in C, microseconds): the
   matching blocks behind `ratio` are a common subsequence, so `2 * LCS / total` bounds it.

Each stage has a work budget counted in characters, not seconds, so the result does not depend on
the machine's speed; running out makes the ranking `complete=False` (the caller refuses a fuzzy
match then, rather than guess).
"""

from __future__ import annotations

from dataclasses import dataclass
from difflib import SequenceMatcher

import numpy as np
from rapidfuzz.distance import Indel

from app.core.edits.merge import content_key

# Beyond this many windows the search gives up (a huge file and a long SEARCH).
MAX_COMPARISONS = 60_000
# Characters tracked one by one in the count bound; rarer ones share one bucket (still a bound).
MAX_TRACKED_CHARS = 96
# Work for the LCS bound, in (window characters / 64) x SEARCH characters: about a second in C.
MAX_LCS_WORK = 400_000_000
# Exact ratios are costly: at most this many per search, and at most this much work in window
# characters x SEARCH characters (for the closest lines, which are only shown: fewer).
MAX_EXACT_RATIOS = 200
MAX_EXACT_WORK = 3_000_000
MAX_CLOSEST_RATIOS = 20
MAX_CLOSEST_WORK = 1_000_000


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


def count_bounds(
    keys: list[str], search_text: str, lengths: list[int], floor: float
) -> list[tuple[float, int, int]]:
    """(bound, start, end) of every window whose character-count bound reaches `floor`.

    The bound is 2 * (characters the window and the SEARCH have in common, as multisets) / their
    total length: difflib's `quick_ratio` when the SEARCH has at most MAX_TRACKED_CHARS distinct
    characters, and never below it otherwise (rare characters are pooled).
    """
    n = len(keys)
    m = search_text.count("\n") + 1
    s_len = len(search_text)
    text = "\n".join(keys)
    codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    line_of = np.concatenate(([0], np.cumsum(codes == 10)[:-1])) if len(codes) else codes
    tracked, pooled = _alphabet(search_text)
    k = len(tracked) + 1  # the last bucket pools every other SEARCH character
    bucket = np.full(len(codes), -1, dtype=np.int64)
    if len(tracked):
        at = np.minimum(np.searchsorted(tracked, codes), len(tracked) - 1)
        hit = tracked[at] == codes
        bucket[hit] = at[hit]
    if len(pooled):
        bucket[np.isin(codes, pooled) & (bucket < 0)] = k - 1
    keep = (bucket >= 0) & (codes != 10)
    flat = np.bincount(line_of[keep] * k + bucket[keep], minlength=n * k)
    per_line = flat[: n * k].reshape(n, k).astype(np.int32)
    prefix = np.zeros((n + 1, k), dtype=np.int32)
    np.cumsum(per_line, axis=0, out=prefix[1:])
    chars = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.fromiter((len(key) for key in keys), dtype=np.int64, count=n), out=chars[1:])
    s_counts = _search_counts(search_text, tracked, pooled)
    out: list[tuple[float, int, int]] = []
    for length in lengths:
        w_len = chars[length:] - chars[:-length] + (length - 1)
        total = w_len + s_len
        # difflib's real_quick_ratio (lengths only) first: it drops most windows for nothing.
        rough = np.minimum(w_len, s_len) * 2.0 / total
        starts = np.nonzero(rough >= floor)[0]
        if not len(starts):
            continue
        window = prefix[starts + length] - prefix[starts]
        common = np.minimum(window, s_counts).sum(axis=1) + min(length - 1, m - 1)
        bound = 2.0 * common / total[starts]
        passed = bound >= floor
        out.extend(
            (b, start, start + length)
            for b, start in zip(bound[passed].tolist(), starts[passed].tolist(), strict=True)
        )
    return out


def _alphabet(search_text: str) -> tuple[np.ndarray, np.ndarray]:
    """The SEARCH's commonest characters (tracked one by one) and the rest (pooled), as codes."""
    counts: dict[int, int] = {}
    for ch in search_text:
        if ch != "\n":
            code = ord(ch)
            counts[code] = counts.get(code, 0) + 1
    ranked = sorted(counts, key=lambda c: -counts[c])
    tracked = np.array(sorted(ranked[:MAX_TRACKED_CHARS]), dtype=np.uint32)
    pooled = np.array(sorted(ranked[MAX_TRACKED_CHARS:]), dtype=np.uint32)
    return tracked, pooled


def _search_counts(search_text: str, tracked: np.ndarray, pooled: np.ndarray) -> np.ndarray:
    index = {int(code): i for i, code in enumerate(tracked.tolist())}
    pooled_set = set(pooled.tolist())
    counts = np.zeros(len(tracked) + 1, dtype=np.int32)
    for ch in search_text:
        code = ord(ch)
        if code in index:
            counts[index[code]] += 1
        elif code in pooled_set:
            counts[-1] += 1
    return counts


def rank_windows(
    contents: list[str], search: list[str], floor: float, *, slack: bool, runner_up: bool = True
) -> Ranking:
    """The most similar window of `contents` and the runner-up (the best one not overlapping it).

    `slack`: also try windows a few lines shorter or longer than the SEARCH (a line the model left
    out or added). Exact ratios are computed in decreasing order of the LCS bound and the search
    stops once no remaining window can change the answer. `runner_up=False` (the closest lines,
    shown to the model) looks only for the best window, with a smaller budget.
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
    search_text = _text(search)
    s_len = len(search_text)
    candidates = count_bounds(keys, search_text, lengths, floor)
    candidates.sort(key=lambda b: -b[0])
    complete = True
    bounds: list[tuple[float, int, int]] = []
    work = 0
    for _, start, end in candidates:
        window = "\n".join(keys[start:end])
        total = len(window) + s_len
        work += (len(window) // 64 + 1) * s_len
        if work > MAX_LCS_WORK:
            complete = False
            break
        cutoff = int(floor * total)  # rapidfuzz answers 0 below it; int() rounds down: no loss
        common = Indel.similarity(window, search_text, score_cutoff=cutoff)
        bound = common / total if total else 1.0
        if bound >= floor:
            bounds.append((bound, start, end))
    bounds.sort(key=lambda b: -b[0])
    best, second, exact_complete = _exact(keys, search_text, m, bounds, floor, runner_up)
    return Ranking(best, second, complete and exact_complete)


def _exact(
    keys: list[str],
    search_text: str,
    m: int,
    bounds: list[tuple[float, int, int]],
    floor: float,
    runner_up: bool,
) -> tuple[Scored | None, Scored | None, bool]:
    """Exact ratios in decreasing order of their bound, until no remaining window can matter."""
    matcher = SequenceMatcher(None, autojunk=False)
    matcher.set_seq2(search_text)
    scored: list[Scored] = []
    best: Scored | None = None
    second: Scored | None = None  # the best window not overlapping `best`

    def order(s: Scored) -> tuple[float, int, int]:
        return (-s.ratio, abs((s.end - s.start) - m), s.start)

    count = MAX_EXACT_RATIOS if runner_up else MAX_CLOSEST_RATIOS
    work_left = MAX_EXACT_WORK if runner_up else MAX_CLOSEST_WORK
    for bound, start, end in bounds:
        if best is not None:
            needed = second.ratio if second is not None else floor
            if bound < (needed if runner_up else best.ratio):
                break  # no window left can beat what is known
        window = "\n".join(keys[start:end])
        count -= 1
        work_left -= len(window) * len(search_text)
        if count < 0 or work_left < 0:
            return best, second, False
        matcher.set_seq1(window)
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
    return best, second, True


def _apart(a: Scored, b: Scored) -> bool:
    return a.end <= b.start or a.start >= b.end
