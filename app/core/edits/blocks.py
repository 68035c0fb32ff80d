"""Parse a model's reply into edit blocks; a malformed block becomes a problem, never an exception.

Three kinds of edit are recognised:

- SEARCH/REPLACE blocks: the file path on a line above ``<<<<<<< SEARCH``, then the lines to find,
  ``=======``, the new lines, ``>>>>>>> REPLACE``. Markers may have 5 to 9 characters; the older
  ``ORIGINAL``/``UPDATED`` words are accepted too. The block may sit inside a code fence or not, and
  a block without a path of its own edits the previous block's file. An empty SEARCH creates a file.
- Whole-file replacement: a line holding only a file path, then a fenced code block (no markers).
- File deletion: a line ``DELETE FILE path`` outside code fences.

Near-miss markers (4 or 10+ characters, a missing divider, a block cut off at the end of the reply)
are reported as problems with the reply's line number, so the model can be told exactly what to fix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum


class BlockKind(Enum):
    SEARCH_REPLACE = "search/replace"
    WHOLE_FILE = "whole file"
    DELETE_FILE = "delete file"
    MALFORMED = "malformed"


@dataclass(frozen=True, slots=True)
class EditBlock:
    """One edit as the model wrote it. `search` and `replace` use "\\n" line ends."""

    index: int  # 1-based position among the reply's blocks (malformed ones included)
    line: int  # 1-based line of the reply where the block starts
    kind: BlockKind
    path: str | None
    search: str = ""
    replace: str = ""
    problem: str | None = None  # set for MALFORMED blocks only


_SEARCH = re.compile(r"^\s*<{5,9}\s*(?:SEARCH|ORIGINAL)\s*$")
_DIVIDER = re.compile(r"^\s*={5,9}\s*$")
_REPLACE = re.compile(r"^\s*>{5,9}\s*(?:REPLACE|UPDATED)\s*$")
# Lines that were meant as markers but are not valid ones.
_NEAR_SEARCH = re.compile(r"^\s*<{2,}\s*(?:SEARCH|ORIGINAL)\b.*$", re.IGNORECASE)
_NEAR_REPLACE = re.compile(r"^\s*>{2,}\s*(?:REPLACE|UPDATED)\b.*$", re.IGNORECASE)
_NEAR_DIVIDER = re.compile(r"^\s*(?:={3,4}|={10,})\s*$")
_FENCE = re.compile(r"^(?P<indent>\s{0,3})(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
_DELETE = re.compile(r"^\s*(?:\*\*)?DELETE[ _]FILE:?(?:\*\*)?\s*:?\s+(?P<path>.+?)\s*$")
_PATH_PREFIX = re.compile(r"^(?:file(?:name)?|path)\s*:\s*", re.IGNORECASE)
_COMMENT_PREFIX = re.compile(r"^(?:#+|//+|--|;+)\s*")
_BACKTICKED = re.compile(r"`([^`\s]+)`")
_EXTENSIONLESS_NAMES = {"Makefile", "Dockerfile", "LICENSE", "README", "Procfile", "Gemfile"}
_LOOKBACK_LINES = 3


def parse_reply(text: str) -> list[EditBlock]:
    """All edit blocks of `text`, in reply order, malformed ones included."""
    return _Parser(text).run()


def _clean_path(line: str, *, lenient: bool, bare_ok: bool = False) -> str | None:
    """The file path a line names, or None if the line is not a path line.

    Strict (whole-file edits): the line holds only a path, possibly in backticks, bold, a Markdown
    heading, or after "File:". Lenient (SEARCH/REPLACE, whose markers already show intent): a
    sentence whose one backticked token looks like a path also counts ("Change `src/a.py`:").
    """
    stripped = line.strip()
    if not stripped or _FENCE.match(line) or _is_marker_like(line):
        return None
    candidate = _COMMENT_PREFIX.sub("", stripped)  # "# a.py", "// a.js", "-- q.sql"
    candidate = _PATH_PREFIX.sub("", candidate)
    candidate = candidate.strip("*").strip().rstrip(":").strip().strip("*").strip()
    quoted = candidate.startswith("`") and candidate.endswith("`") and len(candidate) > 2
    if quoted:
        candidate = candidate[1:-1].strip()
    candidate = candidate.strip("\"'")
    if _looks_like_path(candidate, spaces=quoted):
        return candidate
    bare = bare_ok and not stripped.endswith(":")
    if bare and _looks_like_path(candidate, bare_ok=True):
        return candidate  # "Makefile", "LICENSE", "pipe": alone on the line above the block
    if lenient:
        found = [str(t) for t in _BACKTICKED.findall(stripped) if _looks_like_path(str(t))]
        if len(found) == 1:
            return found[0]
    return None


def _looks_like_path(candidate: str, *, bare_ok: bool = False, spaces: bool = False) -> bool:
    """Whether a token reads as a file path; `spaces`: it was in backticks, so spaces may be in
    the name."""
    if not candidate or len(candidate) > 400 or candidate != candidate.strip():
        return False
    if any(ch.isspace() and not (spaces and ch == " ") for ch in candidate):
        return False
    if candidate.endswith(("/", "\\")):
        return False
    name = re.split(r"[/\\]", candidate)[-1]
    has_hint = (
        "/" in candidate
        or "\\" in candidate
        or ("." in name.strip(".") and not name.endswith("."))
        or name.startswith(".")
        or name in _EXTENSIONLESS_NAMES
    )
    if not (has_hint or bare_ok):
        return False  # a bare word ("Changes", "python") is not taken for a file name
    return re.fullmatch(r"[\w.\-/\\~+@ ]+" if spaces else r"[\w.\-/\\~+@]+", candidate) is not None


def _is_marker_like(line: str) -> bool:
    return bool(
        _SEARCH.match(line)
        or _DIVIDER.match(line)
        or _REPLACE.match(line)
        or _NEAR_SEARCH.match(line)
        or _NEAR_REPLACE.match(line)
    )


def _fence_info_path(info: str) -> str | None:
    """A path given in a fence's info string: ```src/a.py, ```python src/a.py, ```python:a.py."""
    info = info.strip()
    if not info:
        return None
    for token in re.split(r"[\s:]+", info)[::-1]:
        token = token.strip("`\"'")
        if token.lower().startswith(("title=", "file=", "path=")):
            token = token.split("=", 1)[1].strip("\"'")
        if _looks_like_path(token):
            return token
    return None


class _Parser:
    def __init__(self, text: str) -> None:
        self.lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        self.blocks: list[EditBlock] = []
        self.last_path: str | None = None

    def _add(self, line_index: int, kind: BlockKind, path: str | None, **fields: str) -> None:
        self.blocks.append(
            EditBlock(
                index=len(self.blocks) + 1, line=line_index + 1, kind=kind, path=path, **fields
            )
        )

    def _malformed(self, line_index: int, path: str | None, problem: str) -> None:
        if path is not None:
            self.last_path = path  # a following block without a path line edits the same file
        self.blocks.append(
            EditBlock(
                index=len(self.blocks) + 1,
                line=line_index + 1,
                kind=BlockKind.MALFORMED,
                path=path,
                problem=problem,
            )
        )

    def run(self) -> list[EditBlock]:
        i = 0
        open_fence: str | None = None  # the fence a SEARCH/REPLACE block sits in
        while i < len(self.lines):
            line = self.lines[i]
            fence = _FENCE.match(line)
            if open_fence is not None and fence and _closes(fence, open_fence):
                open_fence = None
                i += 1
            elif _SEARCH.match(line):
                i = self._search_replace(i)
            elif _NEAR_SEARCH.match(line) or _NEAR_REPLACE.match(line):
                i = self._near_miss(i)
            elif open_fence is None and (deleted := _DELETE.match(line)):
                path = _clean_path(deleted.group("path"), lenient=False)
                if path is None:
                    self._malformed(i, None, "the DELETE FILE line names no file path")
                else:
                    self._add(i, BlockKind.DELETE_FILE, path)
                    self.last_path = path
                i += 1
            elif open_fence is None and fence:
                i, open_fence = self._fenced(i, fence)
            else:
                i += 1
        return self.blocks

    def _path_above(self, start: int) -> str | None:
        """The path on one of the few lines above `start` (fence lines skipped), if any."""
        seen = 0
        j = start - 1
        while j >= 0 and seen < _LOOKBACK_LINES:
            line = self.lines[j]
            fence = _FENCE.match(line)
            if fence:
                info_path = _fence_info_path(fence.group("info"))
                if info_path:
                    return info_path
            elif line.strip():
                if _is_marker_like(line):
                    return None  # the previous block's end: this block names no file
                path = _clean_path(line, lenient=True, bare_ok=seen == 0)
                if path:
                    return path
                seen += 1
            j -= 1
        return None

    def _search_replace(self, start: int) -> int:
        path = self._path_above(start) or self.last_path
        search: list[str] = []
        replace: list[str] = []
        section = search
        divider_seen = False
        near_divider: int | None = None  # "====" or "==========": content, unless no real one
        i = start + 1
        while i < len(self.lines):
            line = self.lines[i]
            if _REPLACE.match(line):
                if divider_seen:
                    return self._finish_search_replace(start, path, search, replace, i)
                if near_divider is not None:
                    bad = self.lines[near_divider].strip()
                    self._malformed(start, path, f"the divider {bad!r} on line {near_divider + 1} "
                                    f"has {len(bad)} characters; use ======= (5 to 9)")  # fmt: skip
                else:
                    self._malformed(start, path, "the block has no ======= line between SEARCH "
                                    "and REPLACE")  # fmt: skip
                return i + 1
            if _DIVIDER.match(line):
                if divider_seen:
                    self._malformed(start, path, "the block has a second ======= line; each block "
                                    "needs exactly one")  # fmt: skip
                    return self._skip_to_replace(i)
                divider_seen = True
                section = replace
            elif _SEARCH.match(line):
                self._malformed(start, path, "a new <<<<<<< SEARCH starts before this block's "
                                ">>>>>>> REPLACE")  # fmt: skip
                return i
            elif _NEAR_REPLACE.match(line):
                self._malformed(start, path, f"line {i + 1} looks like a marker but is not one "
                                f"({line.strip()!r}); markers have 5 to 9 characters")  # fmt: skip
                return self._skip_to_replace(i)
            else:
                if near_divider is None and not divider_seen and _NEAR_DIVIDER.match(line):
                    near_divider = i
                section.append(line)
            i += 1
        where = "after =======" if divider_seen else "before ======="
        self._malformed(start, path, f"the block is not closed by >>>>>>> REPLACE (the reply ends "
                        f"{where}; was it cut off?)")  # fmt: skip
        return i

    def _finish_search_replace(
        self, start: int, path: str | None, search: list[str], replace: list[str], end: int
    ) -> int:
        if path is None:
            self._malformed(start, None, "no file path was given on the line above <<<<<<< SEARCH")
            return end + 1
        self._add(
            start,
            BlockKind.SEARCH_REPLACE,
            path,
            search=_joined(search) if any(line.strip() for line in search) else "",
            replace=_joined(replace),
        )
        self.last_path = path
        return end + 1

    def _skip_to_replace(self, i: int) -> int:
        """After a broken block, resume after its >>>>>>> REPLACE (or at the next SEARCH)."""
        j = i + 1
        while j < len(self.lines):
            if _REPLACE.match(self.lines[j]) or _NEAR_REPLACE.match(self.lines[j]):
                return j + 1
            if _SEARCH.match(self.lines[j]):
                return j
            j += 1
        return j

    def _near_miss(self, i: int) -> int:
        line = self.lines[i].strip()
        run = re.match(r"[<>]+", line)
        count = len(run.group(0)) if run else 0
        if _NEAR_SEARCH.match(self.lines[i]):
            path = self._path_above(i) or self.last_path
            problem = (
                f"the marker {line!r} has {count} characters; use <<<<<<< SEARCH (5 to 9)"
                if count and not 5 <= count <= 9
                else f"the marker {line!r} is not understood; use <<<<<<< SEARCH alone on its line"
            )
            self._malformed(i, path, problem)
            return self._skip_to_replace(i)
        self._malformed(i, self.last_path, f"{line!r} closes no block (its <<<<<<< SEARCH is "
                        "missing or invalid)")  # fmt: skip
        return i + 1

    def _fenced(self, start: int, fence: re.Match[str]) -> tuple[int, str | None]:
        """A fenced block: it holds SEARCH/REPLACE blocks, replaces a whole file, or is prose."""
        marker = fence.group("fence")
        end = start + 1
        holds_markers = False
        while end < len(self.lines):
            inner = _FENCE.match(self.lines[end])
            if inner and _closes(inner, marker):
                break
            if _SEARCH.match(self.lines[end]) or _NEAR_SEARCH.match(self.lines[end]):
                holds_markers = True
            end += 1
        if holds_markers:
            return start + 1, marker  # parse its blocks line by line; remember to close it
        path = _fence_info_path(fence.group("info")) or self._whole_file_path(start)
        if path is None:
            return end + 1, None  # an example or a command: not an edit
        if end >= len(self.lines):
            self._malformed(start, path, f"the code block for {path} is not closed (was the reply "
                            "cut off?)")  # fmt: skip
            return end, None
        body = self.lines[start + 1 : end]
        self._add(start, BlockKind.WHOLE_FILE, path, replace=_joined(body))
        self.last_path = path
        return end + 1, None

    def _whole_file_path(self, fence_line: int) -> str | None:
        """The path on the line just above a fence (one blank line allowed), strictly a path."""
        j = fence_line - 1
        if j >= 0 and not self.lines[j].strip():
            j -= 1
        if j < 0:
            return None
        return _clean_path(self.lines[j], lenient=False)


def _closes(fence: re.Match[str], opening: str) -> bool:
    found = fence.group("fence")
    return found[0] == opening[0] and len(found) >= len(opening) and not fence.group("info").strip()


def _joined(lines: list[str]) -> str:
    return "\n".join(lines) + "\n" if lines else ""
