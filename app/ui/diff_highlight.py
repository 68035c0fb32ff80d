"""Unified-diff HTML for one hunk, syntax-highlighted with pygments, for Qt's rich text.

The lexer is chosen from the file name. The old side is highlighted as the whole original file (so
a line inside a docstring is coloured as a string) and the new side as the hunk's own text. Each
diff line is one table row, the construct Qt paints with a full-width background; styles are
inline because Qt's rich text has no stylesheet cascade for pygments classes. File text is
untrusted: pygments escapes it, and nothing in it is interpreted as HTML.

Two layouts: unified (old and new lines one above the other) and side by side (old on the left,
new on the right, each half wrapping its long lines). A rejected hunk is drawn muted: no colours,
its added lines struck through, so it no longer reads as a change that will happen.
"""

from __future__ import annotations

import html
from functools import lru_cache

from pygments import highlight
from pygments.lexer import Lexer
from pygments.lexers import TextLexer, get_lexer_for_filename
from pygments.util import ClassNotFound

from app.core.edits import ChangeKind, FileChange, Hunk
from app.core.edits.textfile import strip_ending
from app.ui import theme

# The light theme's diff colours; what is drawn follows the current theme (app.ui.theme).
ADDED_BACKGROUND = theme.LIGHT.diff_added
REMOVED_BACKGROUND = theme.LIGHT.diff_removed
CONTEXT_LINES = 3
# Highlighting a huge file for one hunk is not worth the wait: plain text beyond this size.
MAX_HIGHLIGHT_CHARS = 400_000


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
    rendered = str(highlight(text, lexer_for(path), theme.code_formatter())).split("\n")
    if len(rendered) < len(lines):  # a lexer that swallowed a line break: fall back to plain
        return [html.escape(line) for line in lines]
    return rendered[: len(lines)]


class FileHighlighter:
    """Highlights a file's original lines once, then renders any of its hunks."""

    def __init__(self, change: FileChange) -> None:
        self.change = change
        self.old = [strip_ending(line) for line in change.original_lines]
        self._old_html: dict[str, list[str]] = {}  # by theme: its colours are in the HTML

    def old_html(self) -> list[str]:
        name = theme.current().name
        if name not in self._old_html:
            self._old_html[name] = highlight_lines(self.change.path, self.old)
        return self._old_html[name]

    def hunk_html(
        self,
        hunk: Hunk,
        context: int = CONTEXT_LINES,
        *,
        side_by_side: bool = False,
        rejected: bool = False,
    ) -> str:
        """A table: context lines, removed lines (red), added lines (green), with line numbers.

        `rejected`: muted and unhighlighted, the added lines struck through.
        """
        if rejected:
            old_html = [html.escape(line) for line in self.old]
            new_text = [strip_ending(line) for line in hunk.new_lines]
            new_html = [f"<s>{html.escape(line)}</s>" if line else "" for line in new_text]
        else:
            old_html = self.old_html()
            new_text = [strip_ending(line) for line in hunk.new_lines]
            new_html = highlight_lines(self.change.path, new_text)
        first = max(0, hunk.old_start - context)
        new_first = first + 1 + self._shift_before(hunk)
        before = [(i + 1, old_html[i]) for i in range(first, hunk.old_start)]
        removed = [(i + 1, old_html[i]) for i in range(hunk.old_start, hunk.old_end)]
        added_first = new_first + len(before)
        added = [(added_first + k, line) for k, line in enumerate(new_html)]
        after_end = min(len(old_html), hunk.old_end + context)
        after_first = added_first + len(added)
        after = [(i + 1, old_html[i]) for i in range(hunk.old_end, after_end)]
        t = theme.current()
        removed_bg = None if rejected else t.diff_removed
        added_bg = None if rejected else t.diff_added
        rows: list[str] = []
        if side_by_side:
            for k, (number, code) in enumerate(before):
                rows.append(_pair((number, code), (new_first + k, code), None, None))
            for k in range(max(len(removed), len(added))):
                left = removed[k] if k < len(removed) else None
                right = added[k] if k < len(added) else None
                rows.append(_pair(left, right, removed_bg, added_bg))
            for k, (number, code) in enumerate(after):
                rows.append(_pair((number, code), (after_first + k, code), None, None))
        else:
            for k, (number, code) in enumerate(before):
                rows.append(_row(number, new_first + k, " ", code, None))
            rows += [_row(number, None, "-", code, removed_bg) for number, code in removed]
            rows += [_row(None, number, "+", code, added_bg) for number, code in added]
            for k, (number, code) in enumerate(after):
                rows.append(_row(number, after_first + k, " ", code, None))
        if not rows:
            rows.append(_row(None, None, " ", "<i>(empty file)</i>", None))
        if self.change.kind is ChangeKind.DELETE:
            rows.insert(0, _note("The whole file is deleted."))
        elif self.change.kind is ChangeKind.CREATE:
            rows.insert(0, _note("A new file."))
        muted = f" color:{theme.current().diff_context};" if rejected else ""
        return (
            '<table width="100%" cellspacing="0" cellpadding="1" '
            f'style="font-family: monospace;{muted}">' + "".join(rows) + "</table>"
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
    number = f'style="color:{theme.current().diff_number};"'
    return (
        f"<tr{bg}>"
        f'<td align="right" {number}>{old if old is not None else ""}&nbsp;</td>'
        f'<td align="right" {number}>{new if new is not None else ""}&nbsp;</td>'
        f'<td style="color:{theme.current().diff_context};">{html.escape(sign)}&nbsp;</td>'
        f'<td width="100%" style="white-space: pre;">{code or " "}</td>'
        "</tr>"
    )


def _pair(
    left: tuple[int, str] | None,
    right: tuple[int, str] | None,
    left_background: str | None,
    right_background: str | None,
) -> str:
    """One side-by-side row: the old line and its number, the new line and its number."""
    # Numbers never wrap: beside two 50% code cells Qt would break "12&nbsp;" over two lines.
    number = f'style="color:{theme.current().diff_number}; white-space: pre;"'
    cells = []
    for side, background in ((left, left_background), (right, right_background)):
        bg = f' bgcolor="{background}"' if background and side is not None else ""
        cells.append(
            f'<td align="right" {number}{bg}>{side[0] if side else ""} </td>'
            f'<td width="50%" style="white-space: pre-wrap;"{bg}>'
            f"{(side[1] or ' ') if side else ''}</td>"
        )
    return "<tr>" + "".join(cells) + "</tr>"


def _note(text: str) -> str:
    return f'<tr><td colspan="4"><i>{html.escape(text)}</i></td></tr>'
