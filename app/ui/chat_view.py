"""The chat pane: one widget per message, Markdown answers and messages, collapsible thinking.

Streaming text is accumulated cheaply as it arrives and shown on a timer whose interval grows with
the render time. Each render appends: closed Markdown blocks are rendered once, only the block
still being written is rendered again (app/ui/markdown_stream), so a render costs the same at the
3,000th token as at the 30th and a long reply never turns into a stream of event-loop stalls.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import QSize, Qt, QTimer, QUrl
from PySide6.QtGui import QDesktopServices, QResizeEvent
from PySide6.QtWidgets import (
    QFrame,
    QLabel,
    QScrollArea,
    QSizePolicy,
    QTextBrowser,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.core.llm.engine import ReplyStats
from app.core.storage import chat_store
from app.core.storage.chat_store import StoredMessage
from app.ui.code_copy import copy_clicked
from app.ui.markdown_html import user_markdown_to_html
from app.ui.markdown_stream import MarkdownStream, PlainStream

MIN_RENDER_INTERVAL_MS = 40


class AutoHeightBrowser(QTextBrowser):
    """A read-only rich-text view as tall as its content (the scroll area does the scrolling)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setOpenLinks(False)
        self.anchorClicked.connect(self._open_link)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.document().setDocumentMargin(2)
        self.document().documentLayout().documentSizeChanged.connect(self._fit)
        self.setFixedHeight(8)

    @staticmethod
    def _open_link(url: QUrl) -> None:
        # A click is the user's own request; nothing is fetched unless they click.
        if copy_clicked(url):  # a code block's Copy link
            return
        if url.scheme() in ("http", "https"):
            QDesktopServices.openUrl(url)

    def _fit(self, size: object = None) -> None:
        height = int(self.document().size().height()) + 2 * self.frameWidth() + 2
        if height != self.height():
            self.setFixedHeight(height)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        # Only when the width changed: setTextWidth lays the whole document out again, and the
        # height changes with every streamed line (that relayout grew with the reply: 0.4 s a
        # render at 3,000 tokens under load, where appending one block costs milliseconds).
        width = self.viewport().width()
        if self.document().textWidth() != width:
            self.document().setTextWidth(width)
        self._fit()

    def sizeHint(self) -> QSize:
        return QSize(400, self.height())


class ThinkingSection(QWidget):
    """'Thought for N tokens, S s' over the thinking text, collapsed unless the user opens it."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.toggle = QToolButton(self)
        self.toggle.setCheckable(True)
        self.toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.toggle.setArrowType(Qt.ArrowType.RightArrow)
        self.toggle.setAutoRaise(True)
        self.toggle.toggled.connect(self._set_expanded)
        self.body = AutoHeightBrowser(self)
        self.body.setStyleSheet("color: palette(placeholder-text);")  # the theme's muted text
        self.body.hide()
        self.stream = PlainStream(self.body.document())
        layout.addWidget(self.toggle)
        layout.addWidget(self.body)
        self.hide()

    def _set_expanded(self, expanded: bool) -> None:
        self.toggle.setArrowType(Qt.ArrowType.DownArrow if expanded else Qt.ArrowType.RightArrow)
        self.body.setVisible(expanded)

    @property
    def expanded(self) -> bool:
        return self.toggle.isChecked()

    def update_content(self, text: str, tokens: int, seconds: float, live: bool) -> None:
        if not text and not tokens:
            self.hide()
            return
        self.show()
        if live:
            self.toggle.setText(f"Thinking… {tokens} tokens")
        elif seconds > 0:
            self.toggle.setText(f"Thought for {tokens} tokens, {seconds:.1f} s")
        else:  # a time not known (a reply stored without its statistics)
            self.toggle.setText(f"Thought for {tokens} tokens")
        if self.body.isVisible() or not live:
            self.stream.update(text)


class MessageWidget(QFrame):
    """One chat message. Assistant messages stream: call `append`, then `finish`."""

    def __init__(self, role: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.role = role
        self.answer = ""
        self.thinking = ""
        self.thinking_tokens = 0
        self.thinking_seconds = 0.0
        self.live = False
        self.started_at = 0.0  # when the reply began streaming (monotonic); 0.0: not yet
        self._thinking_started = 0.0
        self.setObjectName("userMessage" if role == "user" else "assistantMessage")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 6, 10, 6)
        self.header = QLabel("You" if role == "user" else "LeanCoder", self)
        self.header.setStyleSheet("font-weight: bold;")
        self.thinking_section = ThinkingSection(self)
        self.body = AutoHeightBrowser(self)
        self.answer_stream = MarkdownStream(self.body.document())
        self.footer = QLabel("", self)
        self.footer.setWordWrap(True)  # a long footer wraps; it never widens the message
        self.footer.setStyleSheet("color: palette(placeholder-text); font-size: 11px;")
        self.footer.hide()
        layout.addWidget(self.header)
        layout.addWidget(self.thinking_section)
        layout.addWidget(self.body)
        layout.addWidget(self.footer)

    def set_content(self, answer: str, thinking: str = "", thinking_tokens: int = 0) -> None:
        self.answer, self.thinking, self.thinking_tokens = answer, thinking, thinking_tokens
        self.refresh()

    def start_live(self) -> None:
        """The reply starts streaming now. Thinking is timed from here: text arrives in batches,
        and a short thinking block that came in one batch would otherwise read 0.0 s."""
        self.live = True
        self.started_at = time.monotonic()
        self._thinking_started = 0.0

    def append(self, channel: str, text: str) -> None:
        if channel == "thinking":
            if not self.thinking:
                self._thinking_started = self.started_at or time.monotonic()
            self.thinking += text
            self.thinking_seconds = time.monotonic() - self._thinking_started
        else:
            self.answer += text

    def refresh(self) -> None:
        self.thinking_section.update_content(
            self.thinking, self.thinking_tokens, self.thinking_seconds, self.live
        )
        if self.role == "user":
            self.body.setHtml(user_markdown_to_html(self.answer))
        else:
            self.answer_stream.update(self.answer, final=not self.live)

    def rerender(self) -> None:
        """Render the whole message again (after a theme switch): the stream keeps closed blocks
        as they were drawn."""
        self.answer_stream.reset()
        self.refresh()

    def set_footer(self, text: str) -> None:
        self.footer.setText(text)
        self.footer.setVisible(bool(text))


class ChatView(QScrollArea):
    """A vertical list of messages that follows the bottom while a reply streams."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWidgetResizable(True)
        self._container = QWidget(self)
        self._layout = QVBoxLayout(self._container)
        self._layout.setSpacing(8)
        self._layout.addStretch(1)
        self.setWidget(self._container)
        self.messages: list[MessageWidget] = []
        self.notices: list[QWidget] = []  # the app's own lines between messages
        self._live: MessageWidget | None = None
        self._dirty = False
        self._last_render_ms = 0.0
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._render_live)
        self.verticalScrollBar().rangeChanged.connect(self._follow_bottom)
        self._at_bottom = True
        self.verticalScrollBar().valueChanged.connect(self._track_bottom)

    def clear(self) -> None:
        self._timer.stop()
        self._live = None
        for widget in [*self.messages, *self.notices]:
            self._layout.removeWidget(widget)
            widget.deleteLater()
        self.messages.clear()
        self.notices.clear()

    def show_stored(self, messages: Sequence[StoredMessage]) -> None:
        """Replace the view with a stored conversation, each reply with its footer."""
        self.clear()
        for message in messages:
            widget = self.add_message(message.role)
            widget.thinking_tokens = int(message.stats.get("thinking_tokens", 0))
            widget.thinking_seconds = stored_thinking_seconds(message.stats)
            widget.set_content(message.content, message.thinking, widget.thinking_tokens)
            if message.role == "assistant":
                footer = format_stats(ReplyStats.from_dict(message.stats))
                if message.status == chat_store.INTERRUPTED:
                    footer = "interrupted (the app closed while this reply was streaming)"
                elif message.status == chat_store.FAILED:
                    footer = "failed"
                widget.set_footer(footer if message.stats or message.status != "complete" else "")

    def add_message(self, role: str) -> MessageWidget:
        widget = MessageWidget(role, self._container)
        self._layout.insertWidget(self._layout.count() - 1, widget)
        self.messages.append(widget)
        self._at_bottom = True
        return widget

    def add_notice(self, widget: QWidget) -> None:
        """A line from the app itself (not a message), after the last message."""
        self._layout.insertWidget(self._layout.count() - 1, widget)  # reparents it, shown
        self.notices.append(widget)
        self._at_bottom = True

    def begin_live(self, widget: MessageWidget) -> None:
        widget.start_live()
        self._live = widget
        widget.refresh()

    def mark_dirty(self) -> None:
        """New text for the live message; render soon, no more often than rendering allows."""
        self._dirty = True
        if not self._timer.isActive():
            interval = max(MIN_RENDER_INTERVAL_MS, int(self._last_render_ms * 4))
            self._timer.start(interval)

    def end_live(self) -> None:
        widget = self._live
        self._timer.stop()
        self._live = None
        if widget is not None:
            widget.live = False
            self._dirty = True
            self._render(widget)

    def _render_live(self) -> None:
        if self._live is not None and self._dirty:
            self._render(self._live)

    def _render(self, widget: MessageWidget) -> None:
        started = time.perf_counter()
        widget.refresh()
        self._dirty = False
        self._last_render_ms = (time.perf_counter() - started) * 1000

    def _track_bottom(self, value: int) -> None:
        bar = self.verticalScrollBar()
        self._at_bottom = value >= bar.maximum() - 4

    def _follow_bottom(self, _min: int, maximum: int) -> None:
        if self._at_bottom:
            self.verticalScrollBar().setValue(maximum)


def warm_up_rendering() -> None:
    """Pay the first-use costs (PySide's lazy enum classes, pygments lexers, font metrics)
    while the window opens, not as a 30-70 ms stall on the user's first Send."""
    widget = MessageWidget("assistant")
    widget.set_content("Warm *up*:\n\n```python\ndef f(x):\n    return x\n```\n")
    widget.resize(600, 200)
    widget.body.document().setTextWidth(widget.body.viewport().width())
    widget.thinking_section.update_content("warm", 1, 0.1, live=False)
    widget.deleteLater()


def stored_thinking_seconds(stats: dict[str, Any]) -> float:
    """How long a stored reply thought: its decode time shared out by tokens (the stored
    statistics hold no separate thinking time). 0.0 when the statistics are missing."""
    try:
        reply = ReplyStats.from_dict(stats)
        if reply.generated_tokens <= 0 or reply.decode_seconds <= 0:
            return 0.0
        return float(reply.decode_seconds * reply.thinking_tokens / reply.generated_tokens)
    except (TypeError, ValueError):  # a damaged record: no time rather than a crash
        return 0.0


def format_stats(stats: ReplyStats) -> str:
    parts = [f"{stats.generated_tokens} tokens", f"{stats.decode_tokens_per_s:.1f} tok/s"]
    parts.append(f"first token {stats.time_to_first_token_s * 1000:.0f} ms")
    if stats.thinking_tokens:
        parts.append(f"{stats.thinking_tokens} thinking")
    if stats.drafted_tokens:
        parts.append(f"{stats.accepted_tokens} of {stats.drafted_tokens} drafted accepted")
    if stats.early_exits:
        parts.append("thinking closed early (confident trial answer)")
    if stats.thinking_tokens and not stats.answer_tokens and stats.finish_reason == "stop":
        parts.append("no answer: the model stopped while thinking")
    if stats.finish_reason == "cancelled":
        parts.append("stopped")
    elif stats.finish_reason in ("length", "context"):
        parts.append(
            "cut off: " + ("context full" if stats.finish_reason == "context" else "limit")
        )
    return " · ".join(parts)
