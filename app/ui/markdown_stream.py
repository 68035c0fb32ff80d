"""Streaming text into a QTextDocument without re-rendering what is already shown.

Re-rendering a whole reply on every update costs time in proportion to its length, so a
3,000-token answer turned each render into a visible stall. `MarkdownStream` renders each closed
Markdown block once and appends it; only the open last block (found by `stable_prefix`) is
removed and rendered again on the next update. `PlainStream` appends new plain text (thinking)
as characters, which keeps its spaces and line breaks exactly.

Both fall back to a full render when the new text does not extend what was shown (a message
replaced by another), so they are always right, only faster when the text grows.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtGui import QTextBlockFormat, QTextCharFormat, QTextCursor, QTextDocument

from app.ui.markdown_html import markdown_to_html, stable_prefix


class MarkdownStream:
    """The Markdown `text` shown in `document`; `update(text)` appends, `final` closes it."""

    def __init__(
        self, document: QTextDocument, render: Callable[[str], str] | None = None
    ) -> None:
        self._document = document
        self._render = render  # None: markdown_to_html, looked up at each call (benches time it)
        self.text = ""
        self._closed_chars = 0  # characters of `text` shown as closed blocks
        self._closed_position = 0  # where the open block begins in the document
        self.rendered_chars = 0  # characters rendered by the last update (for tests, benches)

    def reset(self) -> None:
        self._document.clear()
        self.text = ""
        self._closed_chars = self._closed_position = 0

    def update(self, text: str, final: bool = False) -> None:
        if not text.startswith(self.text[: self._closed_chars]):
            self.reset()
        tail = text[self._closed_chars :]
        closed = len(tail) if final else stable_prefix(tail)
        cursor = QTextCursor(self._document)
        cursor.setPosition(self._closed_position)
        cursor.movePosition(QTextCursor.MoveOperation.End, QTextCursor.MoveMode.KeepAnchor)
        cursor.removeSelectedText()
        self.rendered_chars = 0
        if closed:
            self._insert(cursor, tail[:closed])
            self._closed_chars += closed
            self._closed_position = cursor.position()
        open_block = tail[closed:]
        if open_block.strip():
            self._insert(cursor, open_block)
        self.text = text

    def _insert(self, cursor: QTextCursor, markdown: str) -> None:
        self.rendered_chars += len(markdown)
        html = (self._render or markdown_to_html)(markdown).strip()
        if not html:
            return
        # A fragment merges into the block the cursor is in: start a fresh, unformatted block
        # (not the previous heading's or list item's). Lists make their own blocks.
        if not self._document.isEmpty() and not html.startswith(("<ul", "<ol")):
            cursor.insertBlock(QTextBlockFormat(), QTextCharFormat())
        cursor.insertHtml(html)


class PlainStream:
    """Plain text shown exactly (spaces, tabs, line breaks); growing text is appended."""

    def __init__(self, document: QTextDocument) -> None:
        self._document = document
        self.text = ""

    def update(self, text: str) -> None:
        cursor = QTextCursor(self._document)
        if not text.startswith(self.text):
            self._document.clear()
            self.text = ""
        cursor.movePosition(QTextCursor.MoveOperation.End)
        cursor.insertText(text[len(self.text) :])
        self.text = text
