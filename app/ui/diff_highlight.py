"""Unified-diff HTML for one hunk, syntax-highlighted with pygments, for Qt's rich text.

The lexer is chosen from the file name. The old side is highlighted as the whole original file (so
a line inside a docstring is coloured as a string) and the new side as the hunk's own text. Each
diff line is one table row, the construct Qt paints with a full-width background; styles are
inline because Qt's rich text has no stylesheet cascade for pygments classes. File text is
untrusted: pygments escapes it, and nothing in it is interpreted as HTML.
"""

from __future__ import annotations

import html
from functools import lru_cache

from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexer import Lexer
from pygments.lexers import TextLexer, get_lexer_for_filename
from pygments.util import ClassNotFound

from app.core.edits import ChangeKind, FileChange, Hunk
from app.core.edits.textfile import strip_ending

ADDED_BACKGROUND = "#e6ffec"
REMOVED_BACKGROUND = "#ffebe9"
CONTEXT_COLOR = "#57606a"
NUMBER_COLOR = "#8c959f"
CONTEXT_LINES = 3
# Highlighting a huge file for one hunk is not worth the wait: plain text beyond this size.
MAX_HIGHLIGHT_CHARS = 400_000
_FORMATTER = HtmlFormatter(noclasses=True, nowrap=True, style="default")


@lru_cache(maxsize=64)
def lexer_for(path: str) -> Lexer:
    lexer: Lexer
    try:
        lexer = get_lexer_for_filename(path, stripnl=False, ensurenl=False)
    except ClassNotFound:
        lexer = TextLexer(stripnl=False, ensurenl=False)
    return lexer


def highlight_lines(path: str, lines: list[str]) -> list[str]:
    """Each line (without its ending) as highlighted HTML; always one entry per input line."""
    if not lines:
        return []
    text = "\n".join(lines)
    if len(text) > MAX_HIGHLIGHT_CHARS:
        return [html.escape(line) for line in lines]
    rendered = highlight(text, lexer_for(path), _FORMATTER).split("\n")
    if len(rendered) < len(lines):  # a lexer that swallowed a line break: fall back to plain
        return [html.escape(line) for line in lines]
    return rendered[: len(lines)]


class FileHighlighter:
    """Highlights a file's original lines once, then renders any of its hunks."""

    def __init__(self, change: FileChange) -> None:
        self.change = change
        self.old = [strip_ending(line) for line in change.original_lines]
        self._old_html: list[str] | None = None

    def old_html(self) -> list[str]:
        if self._old_html is None:
            self._old_html = highlight_lines(self.change.path, self.old)
        return self._old_html

    def hunk_html(self, hunk: Hunk, context: int = CONTEXT_LINES) -> str:
        """A table: context lines, removed lines (red), added lines (green), with line numbers."""
        old_html = self.old_html()
        new_text = [strip_ending(line) for line in hunk.new_lines]
        new_html = highlight_lines(self.change.path, new_text)
        rows: list[str] = []
        first = max(0, hunk.old_start - context)
        new_number = first + 1 + self._shift_before(hunk)
        for index in range(first, hunk.old_start):
            rows.append(_row(index + 1, new_number, " ", old_html[index], None))
            new_number += 1
        for index in range(hunk.old_start, hunk.old_end):
            rows.append(_row(index + 1, None, "-", old_html[index], REMOVED_BACKGROUND))
        for offset, line in enumerate(new_html):
            rows.append(_row(None, new_number + offset, "+", line, ADDED_BACKGROUND))
        new_number += len(new_html)
        for index in range(hunk.old_end, min(len(old_html), hunk.old_end + context)):
            rows.append(_row(index + 1, new_number, " ", old_html[index], None))
            new_number += 1
        if not rows:
            rows.append(_row(None, None, " ", "<i>(empty file)</i>", None))
        if self.change.kind is ChangeKind.DELETE:
            rows.insert(0, _note("The whole file is deleted."))
        elif self.change.kind is ChangeKind.CREATE:
            rows.insert(0, _note("A new file."))
        return (
            '<table width="100%" cellspacing="0" cellpadding="1" '
            'style="font-family: monospace;">' + "".join(rows) + "</table>"
        )

    def _shift_before(self, hunk: Hunk) -> int:
        """How many lines the hunks above this one add (for the proposed side's line numbers)."""
        shift = 0
        for other in self.change.hunks:
            if other.old_start >= hunk.old_start:
                break
            shift += len(other.new_lines) - (other.old_end - other.old_start)
        return shift


def _row(old: int | None, new: int | None, sign: str, code: str, background: str | None) -> str:
    bg = f' bgcolor="{background}"' if background else ""
    number = f'style="color:{NUMBER_COLOR};"'
    return (
        f"<tr{bg}>"
        f'<td align="right" {number}>{old if old is not None else ""}&nbsp;</td>'
        f'<td align="right" {number}>{new if new is not None else ""}&nbsp;</td>'
        f'<td style="color:{CONTEXT_COLOR};">{html.escape(sign)}&nbsp;</td>'
        f'<td width="100%" style="white-space: pre;">{code or " "}</td>'
        "</tr>"
    )


def _note(text: str) -> str:
    return f'<tr><td colspan="4"><i>{html.escape(text)}</i></td></tr>'
