"""Find where a SEARCH text is in a file and put the REPLACE there, or say precisely why not.

Stages, loosest last; the first stage that finds anything decides, and finding more than one place
is a refusal (an ambiguous edit is never guessed):

1. exact: the SEARCH lines are in the file as written;
2. whitespace: equal once trailing spaces are dropped and tabs expanded (4 or 8 columns);
3. indentation: equal but for one indent offset on every line; the REPLACE is re-indented to match;
4. blank lines: equal once blank lines are ignored (spurious or missing ones in the SEARCH);
5. elision: a SEARCH with `...` lines (or "... existing code ..." comments) is matched piece by
   piece; the REPLACE must have the same such lines, and what they stand for is kept;
6. already applied: the REPLACE is in the file and the SEARCH is not, so there is nothing to do;
7. fuzzy: one window at least 90% similar and 5 points better than any other place.

All stages compare lines (never a fragment of a line) and keep untouched lines byte for byte.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher

from app.core.edits.fuzzy import rank_windows
from app.core.edits.merge import (
    Opcode,
    OutLine,
    Reindent,
    content_key,
    indent_style,
    indent_width,
    merge,
    opcodes_from_pairs,
)
from app.core.edits.safety import is_placeholder
from app.core.edits.textfile import displayable

FUZZY_THRESHOLD = 0.9
FUZZY_MARGIN = 0.05
FUZZY_MIN_CHARS = 24
CLOSEST_FLOOR = 0.4
TAB_SIZES = (4, 8)


@dataclass(frozen=True, slots=True)
class Closest:
    """The file's lines most like a failed SEARCH, to show the model."""

    start: int  # 1-based line number
    lines: tuple[str, ...]
    similarity: float


@dataclass(frozen=True, slots=True)
class Match:
    ok: bool
    method: str  # a stage name, "no change", or "" on failure
    lines: tuple[OutLine, ...] = ()  # the whole file's new lines when ok
    reason: str = ""
    closest: Closest | None = None


@dataclass(frozen=True, slots=True)
class _Found:
    start: int
    end: int
    file_ops: Sequence[Opcode]
    reindent: Reindent


class _Refusal(Exception):
    """A stage found a reason to refuse (ambiguity, a bad elision): stop looking."""


def split_text(text: str) -> list[str]:
    if not text:
        return []
    return (text[:-1] if text.endswith("\n") else text).split("\n")


def is_elision(line: str) -> bool:
    """`...`, `# ...`, `// ... existing code ...`: a line standing for lines left out."""
    return is_placeholder(line)


def apply_search_replace(contents: list[str], search: str, replace: str) -> Match:
    """Put `replace` where `search` is in `contents` (line texts without endings)."""
    s_lines, r_lines = split_text(search), split_text(replace)
    if not any(line.strip() for line in s_lines):
        return Match(False, "", reason="the SEARCH section is empty")
    if s_lines == r_lines:
        return Match(True, "no change", _unchanged(contents))
    try:
        for method, finder in _STAGES:
            found = finder(contents, s_lines)
            if found is not None:
                return Match(True, method, _compose(contents, found, s_lines, r_lines))
        if any(is_elision(line) for line in s_lines):
            return _apply_elided(contents, s_lines, r_lines)
        if any(line.strip() for line in r_lines) and _find_strict(contents, r_lines) is not None:
            return Match(True, "already applied", _unchanged(contents))
        fuzzy = _find_fuzzy(contents, s_lines)
        if fuzzy is not None:
            return Match(True, "fuzzy", _compose(contents, fuzzy, s_lines, r_lines))
    except _Refusal as refusal:
        return Match(False, "", reason=str(refusal), closest=closest_lines(contents, s_lines))
    return Match(
        False,
        "",
        reason="the SEARCH text is not in the file",
        closest=closest_lines(contents, s_lines),
    )


def closest_lines(contents: list[str], s_lines: list[str]) -> Closest | None:
    ranking = rank_windows(contents, s_lines, CLOSEST_FLOOR, slack=False, runner_up=False)
    if ranking.best is None:
        return None
    best = ranking.best
    shown = tuple(displayable(line) for line in contents[best.start : best.end])
    return Closest(best.start + 1, shown, best.ratio)


def _unchanged(contents: list[str]) -> tuple[OutLine, ...]:
    return tuple((line, i) for i, line in enumerate(contents))


def _compose(
    contents: list[str], found: _Found, s_lines: list[str], r_lines: list[str]
) -> tuple[OutLine, ...]:
    window = contents[found.start : found.end]
    middle = merge(window, found.start, s_lines, r_lines, found.file_ops, found.reindent)
    head = [(line, i) for i, line in enumerate(contents[: found.start])]
    tail = [(line, found.end + i) for i, line in enumerate(contents[found.end :])]
    return (*head, *middle, *tail)


def _one(places: list[_Found], what: str) -> _Found | None:
    if len(places) > 1:
        lines = ", ".join(str(p.start + 1) for p in places[:5])
        raise _Refusal(
            f"the SEARCH text {what}matches {len(places)} places (lines {lines}); "
            "include more surrounding lines so it matches only one"
        )
    return places[0] if places else None


def _style(contents: list[str], start: int, end: int) -> str | None:
    return indent_style(contents[start:end]) or indent_style(contents)


def _find_exact(contents: list[str], s_lines: list[str]) -> _Found | None:
    m = len(s_lines)
    places = [
        _Found(p, p + m, [("equal", 0, m, 0, m)], Reindent())
        for p in range(len(contents) - m + 1)
        if contents[p] == s_lines[0] and contents[p : p + m] == s_lines
    ]
    return _one(places, "")


def _line_windows(contents: list[str], s_lines: list[str], tab_size: int) -> list[tuple[int, int]]:
    """(start, indent delta) of every window equal to the SEARCH up to whitespace and indent."""
    s_keys = [content_key(line) for line in s_lines]
    s_widths = [indent_width(line, tab_size) for line in s_lines]
    f_keys = [content_key(line) for line in contents]
    anchor = next(i for i, key in enumerate(s_keys) if key)
    m = len(s_lines)
    found: list[tuple[int, int]] = []
    for p in range(len(contents) - m + 1):
        if f_keys[p + anchor] != s_keys[anchor] or f_keys[p : p + m] != s_keys:
            continue
        deltas = {
            indent_width(contents[p + i], tab_size) - s_widths[i] for i in range(m) if s_keys[i]
        }
        if len(deltas) == 1:
            found.append((p, deltas.pop()))
    return found


def _find_whitespace(contents: list[str], s_lines: list[str]) -> _Found | None:
    return _find_by_indent(contents, s_lines, want_offset=False)


def _find_indented(contents: list[str], s_lines: list[str]) -> _Found | None:
    return _find_by_indent(contents, s_lines, want_offset=True)


def _find_by_indent(contents: list[str], s_lines: list[str], *, want_offset: bool) -> _Found | None:
    m = len(s_lines)
    for tab_size in TAB_SIZES:
        windows = [(p, d) for p, d in _line_windows(contents, s_lines, tab_size) if (d != 0) ==
                   want_offset]  # fmt: skip
        places = [
            _Found(
                p, p + m, [("equal", 0, m, 0, m)], Reindent(d, _style(contents, p, p + m), tab_size)
            )
            for p, d in windows
        ]
        found = _one(places, "ignoring indentation " if want_offset else "ignoring whitespace ")
        if found is not None:
            return found
    return None


def _find_blank_insensitive(contents: list[str], s_lines: list[str]) -> _Found | None:
    s_idx = [i for i, line in enumerate(s_lines) if line.strip()]
    f_idx = [i for i, line in enumerate(contents) if line.strip()]
    compact_s = [s_lines[i] for i in s_idx]
    compact_f = [contents[i] for i in f_idx]
    for tab_size in TAB_SIZES:
        places: list[_Found] = []
        for q, delta in _line_windows(compact_f, compact_s, tab_size):
            start, end = f_idx[q], f_idx[q + len(compact_s) - 1] + 1
            pairs = [(s_idx[k], f_idx[q + k] - start) for k in range(len(compact_s))]
            ops = opcodes_from_pairs(pairs, len(s_lines), end - start)
            places.append(_Found(start, end, ops, Reindent(delta, _style(contents, start, end),
                                                           tab_size)))  # fmt: skip
        found = _one(places, "ignoring blank lines ")
        if found is not None:
            return found
    return None


_STAGES = (
    ("exact", _find_exact),
    ("whitespace", _find_whitespace),
    ("indentation", _find_indented),
    ("blank lines", _find_blank_insensitive),
)


def _find_strict(contents: list[str], s_lines: list[str]) -> _Found | None:
    """The first strict stage's unique place, or None (ambiguity counts as not found here)."""
    try:
        for _, finder in _STAGES:
            found = finder(contents, s_lines)
            if found is not None:
                return found
    except _Refusal:
        return None
    return None


def _find_fuzzy(contents: list[str], s_lines: list[str]) -> _Found | None:
    if sum(len(content_key(line)) for line in s_lines) < FUZZY_MIN_CHARS:
        return None
    ranking = rank_windows(contents, s_lines, FUZZY_THRESHOLD, slack=True)
    best, runner_up = ranking.best, ranking.runner_up
    if best is None:
        return None
    if not ranking.complete:
        raise _Refusal(
            "the SEARCH text is not in the file as written, and too many places are similar to "
            "it to pick one; quote the exact lines"
        )
    if runner_up is not None and runner_up.ratio > best.ratio - FUZZY_MARGIN:
        raise _Refusal(
            f"the SEARCH text is about equally similar to lines {best.start + 1} and "
            f"{runner_up.start + 1}; quote the exact lines so it matches only one"
        )
    window = contents[best.start : best.end]
    ops = SequenceMatcher(
        None,
        [content_key(line) for line in s_lines],
        [content_key(line) for line in window],
        autojunk=False,
    ).get_opcodes()
    deltas = Counter(
        indent_width(window[j1 + k], 4) - indent_width(s_lines[i1 + k], 4)
        for tag, i1, i2, j1, _ in ops
        if tag == "equal"
        for k in range(i2 - i1)
        if s_lines[i1 + k].strip()
    )
    delta = deltas.most_common(1)[0][0] if deltas else 0
    return _Found(best.start, best.end, ops, Reindent(delta, _style(contents, best.start,
                                                                    best.end)))  # fmt: skip


def _apply_elided(contents: list[str], s_lines: list[str], r_lines: list[str]) -> Match:
    """A SEARCH with `...` lines: each piece between them is found on its own."""
    s_pieces, r_pieces = _pieces(s_lines), _pieces(r_lines)
    if len(s_pieces) != len(r_pieces):
        raise _Refusal(
            "the SEARCH has `...` lines that the REPLACE does not repeat in the same places; "
            "keep each `...` line in the REPLACE, or quote the lines in full"
        )
    found: list[tuple[_Found, list[str], list[str]]] = []
    for s_piece, r_piece in zip(s_pieces, r_pieces, strict=True):
        if not any(line.strip() for line in s_piece):
            if any(line.strip() for line in r_piece):
                raise _Refusal(
                    "new text sits next to a `...` line at the start or end of the SEARCH, so "
                    "its place is unclear; quote the lines it goes next to"
                )
            continue
        place = None
        for _, finder in _STAGES:
            place = finder(contents, s_piece)
            if place is not None:
                break
        if place is None:
            raise _Refusal(f"the part of the SEARCH starting {s_piece[0].strip()!r} is not in "
                           "the file")  # fmt: skip
        if found and place.start < found[-1][0].end:
            raise _Refusal("the parts of the SEARCH between `...` lines are not in file order")
        found.append((place, s_piece, r_piece))
    out: list[OutLine] = []
    pos = 0
    for place, s_piece, r_piece in found:
        out.extend((line, pos + i) for i, line in enumerate(contents[pos : place.start]))
        window = contents[place.start : place.end]
        out.extend(merge(window, place.start, s_piece, r_piece, place.file_ops, place.reindent))
        pos = place.end
    out.extend((line, pos + i) for i, line in enumerate(contents[pos:]))
    return Match(True, "elision", tuple(out))


def _pieces(lines: list[str]) -> list[list[str]]:
    pieces: list[list[str]] = [[]]
    for line in lines:
        if is_elision(line):
            pieces.append([])
        else:
            pieces[-1].append(line)
    return pieces
