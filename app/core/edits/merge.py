"""Carry a SEARCH->REPLACE change onto the file's real lines (a small three-way merge).

The model's SEARCH is the common base; the file window it matched is one side (the truth, which may
differ from the SEARCH in whitespace, blank lines or, for fuzzy matches, a few characters); the
REPLACE is the other side (the intended change). Lines the REPLACE keeps come from the file, byte
for byte, so their trailing spaces, tabs and line endings survive; lines it changes come from the
REPLACE, re-indented by the offset between the SEARCH and the file and written in the file's
indentation style (tabs or spaces).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher

Opcode = tuple[str, int, int, int, int]
OutLine = tuple[str, int | None]  # the line's text; the index of the file line it keeps, or None

_LEADING = re.compile(r"^[ \t]*")


def content_key(line: str) -> str:
    """A line with its indentation and trailing whitespace removed."""
    return line.strip(" \t\f\v")


def edit_key(line: str, tab_size: int) -> str:
    """A line as compared between SEARCH and REPLACE: tabs expanded, trailing whitespace dropped."""
    return line.expandtabs(tab_size).rstrip()


def indent_width(line: str, tab_size: int) -> int:
    leading = _LEADING.match(line)
    return len(leading.group(0).expandtabs(tab_size)) if leading else 0


def indent_style(lines: list[str]) -> str | None:
    """ "tab" or "space": how most indented non-blank lines start; None if none is indented."""
    counts = Counter(line[0] for line in lines if line.strip() and line[0] in " \t")
    if not counts:
        return None
    return "tab" if counts["\t"] > counts[" "] else "space"


@dataclass(frozen=True, slots=True)
class Reindent:
    """How REPLACE lines are placed in the file: an indent offset and the file's style."""

    delta: int = 0
    style: str | None = None  # the file's indentation style, if known
    tab_size: int = 4

    def apply(self, line: str) -> str:
        if not line.strip():
            return "" if self.delta else line
        leading = _LEADING.match(line)
        lead = leading.group(0) if leading else ""
        if self.delta == 0 and self._fits_style(lead):
            return line
        width = max(0, len(lead.expandtabs(self.tab_size)) + self.delta)
        if self.style == "tab":
            indent = "\t" * (width // self.tab_size) + " " * (width % self.tab_size)
        else:
            indent = " " * width
        return indent + line[len(lead) :]

    def _fits_style(self, lead: str) -> bool:
        if self.style is None or not lead:
            return True
        if self.style == "space":
            return "\t" not in lead
        return re.fullmatch(rf"\t* {{0,{self.tab_size - 1}}}", lead) is not None


def opcodes_from_pairs(pairs: list[tuple[int, int]], len_a: int, len_b: int) -> list[Opcode]:
    """difflib-style opcodes from a monotonic list of matched (a, b) line pairs."""
    ops: list[Opcode] = []
    a = b = 0
    for pa, pb in [*pairs, (len_a, len_b)]:
        if pa > a or pb > b:
            tag = "replace" if pa > a and pb > b else ("delete" if pa > a else "insert")
            ops.append((tag, a, pa, b, pb))
        if (pa, pb) != (len_a, len_b):
            if ops and ops[-1][0] == "equal" and ops[-1][2] == pa and ops[-1][4] == pb:
                tag, i1, _, j1, _ = ops[-1]
                ops[-1] = ("equal", i1, pa + 1, j1, pb + 1)
            else:
                ops.append(("equal", pa, pa + 1, pb, pb + 1))
        a, b = pa + 1, pb + 1
    return ops


@dataclass(slots=True)
class _Region:
    """A stretch of the SEARCH that the file side, the edit side, or both change."""

    lo: int
    hi: int
    file_ops: list[Opcode]
    edit_ops: list[Opcode]


def _overlaps(i1: int, i2: int, region: _Region) -> bool:
    lo, hi = region.lo, region.hi
    if i1 == i2 and lo == hi:
        return i1 == lo
    if i1 == i2:
        return lo < i1 < hi
    if lo == hi:
        return i1 < lo < i2
    return i1 < hi and lo < i2


def _regions(file_ops: Sequence[Opcode], edit_ops: Sequence[Opcode]) -> list[_Region]:
    tagged = [(op, True) for op in file_ops if op[0] != "equal"]
    tagged += [(op, False) for op in edit_ops if op[0] != "equal"]
    tagged.sort(key=lambda item: (item[0][1], item[0][2]))
    regions: list[_Region] = []
    for op, from_file in tagged:
        if regions and _overlaps(op[1], op[2], regions[-1]):
            region = regions[-1]
            region.lo, region.hi = min(region.lo, op[1]), max(region.hi, op[2])
        else:
            region = _Region(op[1], op[2], [], [])
            regions.append(region)
        (region.file_ops if from_file else region.edit_ops).append(op)
    return regions


def _side_range(region: _Region, ops: list[Opcode], offset: int) -> tuple[int, int]:
    """Where a region lies on one side; outside its own changes that side equals the SEARCH."""
    if not ops:
        return region.lo + offset, region.hi + offset
    first, last = ops[0], ops[-1]
    return first[3] - (first[1] - region.lo), last[4] + (region.hi - last[2])


def merge(
    window: list[str],
    window_start: int,
    search: list[str],
    replace: list[str],
    file_ops: Sequence[Opcode],
    reindent: Reindent,
) -> list[OutLine]:
    """The file window's new lines: the REPLACE's changes applied onto the file's own lines.

    `file_ops` align the SEARCH (a) with the window (b); lines the edit keeps come from the window.
    """
    edit_ops = SequenceMatcher(
        None,
        [edit_key(line, reindent.tab_size) for line in search],
        [edit_key(line, reindent.tab_size) for line in replace],
        autojunk=False,
    ).get_opcodes()
    out: list[OutLine] = []

    def keep_file(lo: int, hi: int) -> None:
        out.extend((window[f], window_start + f) for f in range(lo, hi))

    pos = file_offset = edit_offset = 0
    for region in _regions(file_ops, edit_ops):
        keep_file(pos + file_offset, region.lo + file_offset)
        f_lo, f_hi = _side_range(region, region.file_ops, file_offset)
        e_lo, e_hi = _side_range(region, region.edit_ops, edit_offset)
        file_side = [content_key(line) for line in window[f_lo:f_hi]]
        edit_side = [content_key(line) for line in replace[e_lo:e_hi]]
        if not region.edit_ops or [k for k in file_side if k] == [k for k in edit_side if k]:
            keep_file(f_lo, f_hi)  # the edit leaves this alone, or restates what the file holds
        else:
            out.extend((reindent.apply(line), None) for line in replace[e_lo:e_hi])
        file_offset, edit_offset = f_hi - region.hi, e_hi - region.hi
        pos = region.hi
    keep_file(pos + file_offset, len(search) + file_offset)
    return out
