"""Markdown to the HTML subset Qt's rich-text engine draws, with pygments-highlighted code.

Model output is untrusted text: raw HTML in it is escaped, never interpreted. Code blocks use inline
styles (Qt's rich text has no stylesheet cascade for pygments classes) inside a one-cell table,
the construct Qt reliably paints with a background.
"""

from __future__ import annotations

import html

from markdown_it import MarkdownIt
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name, guess_lexer
from pygments.util import ClassNotFound

CODE_BACKGROUND = "#f4f5f7"
_FORMATTER = HtmlFormatter(noclasses=True, nowrap=True, style="default")


def _highlight_code(code: str, lang: str, _attrs: object = None) -> str:
    lexer = None
    if lang:
        try:
            lexer = get_lexer_by_name(lang.split()[0])
        except ClassNotFound:
            lexer = None
    if lexer is None and len(code) > 40:
        try:
            lexer = guess_lexer(code)
        except ClassNotFound:
            lexer = None
    body = highlight(code, lexer, _FORMATTER) if lexer is not None else html.escape(code)
    return (
        f'<table width="100%" cellpadding="8" cellspacing="0" '
        f'style="background-color:{CODE_BACKGROUND}; margin-top:4px; margin-bottom:4px;">'
        f'<tr><td><pre style="margin:0; font-family:monospace;">{body}</pre></td></tr></table>'
    )


_MD = MarkdownIt("commonmark", {"html": False, "highlight": _highlight_code}).enable("table")


def markdown_to_html(text: str) -> str:
    return str(_MD.render(text))


def plain_to_html(text: str) -> str:
    """Escaped text with line breaks kept (thinking is shown as written, not as Markdown)."""
    return html.escape(text).replace("\n", "<br>")
