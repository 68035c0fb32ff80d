"""Markdown to the HTML subset Qt's rich-text engine draws, with pygments-highlighted code.

Model output is untrusted text: raw HTML in it is escaped, never interpreted. Code blocks use inline
styles (Qt's rich text has no stylesheet cascade for pygments classes) inside a one-cell table,
the construct Qt reliably paints with a background. Their lines wrap (`white-space: pre-wrap`)
rather than run past the message's right edge, where the chat pane would clip them.

`stable_prefix` says how much of a streaming reply is made of closed Markdown blocks, so the chat
can render those once and re-render only the block still being written (app/ui/markdown_stream).
"""

from __future__ import annotations

import html

from markdown_it import MarkdownIt
from pygments import highlight
from pygments.lexers import get_lexer_by_name, guess_lexer
from pygments.util import ClassNotFound

from app.ui import theme
from app.ui.code_copy import copy_link

# Guessing a lexer reads the whole block; past this size an unlabelled block stays plain.
GUESS_LIMIT = 20_000


def _highlight_code(code: str, lang: str, _attrs: object = None) -> str:
    lexer = None
    if lang:
        try:
            lexer = get_lexer_by_name(lang.split()[0])
        except ClassNotFound:
            lexer = None
    if lexer is None and 40 < len(code) <= GUESS_LIMIT:
        try:
            lexer = guess_lexer(code)
        except ClassNotFound:
            lexer = None
    # The theme's pygments style and background (app.ui.theme: readable in light and dark).
    formatter, background = theme.code_formatter(), theme.current().code_background
    body = highlight(code, lexer, formatter) if lexer is not None else html.escape(code)
    return (
        f'<table width="100%" cellpadding="8" cellspacing="0" '
        f'style="background-color:{background}; margin-top:4px; margin-bottom:4px;">'
        f'<tr><td align="right" style="padding-bottom:0;">{copy_link(code)}</td></tr>'
        f'<tr><td><pre style="margin:0; font-family:monospace; white-space:pre-wrap;">{body}'
        f"</pre></td></tr></table>"
    )


_MD = MarkdownIt("commonmark", {"html": False, "highlight": _highlight_code}).enable("table")
# A typed message: each line break the user typed is kept (Markdown would join the lines).
_TYPED = MarkdownIt(
    "commonmark", {"html": False, "breaks": True, "highlight": _highlight_code}
).enable("table")


def markdown_to_html(text: str) -> str:
    return str(_MD.render(text))


def user_markdown_to_html(text: str) -> str:
    """A user's message: Markdown (fences highlighted, their indentation kept), line breaks kept."""
    return str(_TYPED.render(text))


def stable_prefix(text: str, parser: MarkdownIt = _MD) -> int:
    """The length of `text`'s leading closed blocks: every top-level block but the last.

    Later text cannot change a block that another top-level block follows (a paragraph cannot
    become a heading, a list cannot take more items, a fence is closed), so it renders the same
    alone as in the whole. The last block may still grow or change kind, so it stays open.
    """
    starts = [
        token.map[0]
        for token in parser.parse(text)
        if token.level == 0 and token.map is not None and token.nesting in (0, 1)
    ]
    if len(starts) < 2:
        return 0
    lines = text.splitlines(keepends=True)
    return sum(len(line) for line in lines[: starts[-1]])
