"""Split a reasoning model's streamed reply into a thinking channel and an answer channel.

Models stream text token by token, and the markers that delimit thinking (``<think>``,
``[/THINK]``, gpt-oss's ``<|channel|>`` tokens) can be cut at any character by the stream. The
parser therefore holds back only the tail that could still grow into a marker and emits
everything else at once, so the UI lags the model by at most one marker length. Markers never
reach the emitted text.

Decisions worth knowing:

* Only the exact marker text is a marker. ``</thinking>`` and ``<thinking>`` are plain text:
  ``</think`` is a prefix of them, but the marker needs its ``>`` next, so they are held back
  only until the ``i`` arrives. A marker is acted on as soon as its last character arrives,
  without waiting to see what follows (tokenizers emit these as single special tokens).
* An opening marker while thinking, or a closing marker while answering, is dropped silently.
* Whitespace right after an open/close and right before a close is cosmetic noise from the
  chat format, so it is not emitted. Whitespace at the end of thinking is held back until we know
  whether a close follows; at ``flush()`` it is emitted, since the thinking never closed.
* ``flush()`` does not emit a "close" for a thinking span left open: the stream simply ended.
* ``ThinkingFormat.NONE`` recognises no markers and ignores ``start_in_thinking``.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Literal

__all__ = [
    "Channel",
    "ParseEvent",
    "ThinkingFormat",
    "ThinkingParser",
    "detect_format",
    "end_marker_for",
    "open_marker_for",
    "prompt_opens_thinking",
]


class Channel(str, enum.Enum):  # noqa: UP042 - the agreed API; str() keeps Enum behaviour
    """Where a piece of reply text belongs."""

    THINKING = "thinking"
    ANSWER = "answer"


class ThinkingFormat(str, enum.Enum):  # noqa: UP042 - the agreed API, as Channel
    """How a model marks its thinking; the value is stable for settings files."""

    NONE = "none"
    THINK_TAGS = "think"
    BRACKET = "bracket"
    GPT_OSS = "gpt-oss"


@dataclass(frozen=True, slots=True)
class ParseEvent:
    """One output of the parser: text for a channel, or a thinking span opening/closing."""

    kind: Literal["text", "open", "close"]
    channel: Channel
    text: str = ""


# --- markers -----------------------------------------------------------------------------------

_THINK_OPEN: Final = "<think>"
_THINK_CLOSE: Final = "</think>"
_BRACKET_OPEN: Final = "[THINK]"
_BRACKET_CLOSE: Final = "[/THINK]"

_H_CHANNEL: Final = "<|channel|>"
_H_MESSAGE: Final = "<|message|>"
_H_START: Final = "<|start|>"
_H_END: Final = "<|end|>"
_H_RETURN: Final = "<|return|>"
_H_CALL: Final = "<|call|>"
_H_CONSTRAIN: Final = "<|constrain|>"
_HARMONY_MARKERS: Final = (
    _H_CHANNEL,
    _H_MESSAGE,
    _H_START,
    _H_END,
    _H_RETURN,
    _H_CALL,
    _H_CONSTRAIN,
)
_HARMONY_ANALYSIS_OPENING: Final = _H_CHANNEL + "analysis" + _H_MESSAGE
_HARMONY_END_MARKER: Final = _H_END + _H_START + "assistant" + _H_CHANNEL + "final" + _H_MESSAGE

# Only the first word of a harmony header matters; cap what we keep so a header that never
# ends cannot grow without bound.
_HEADER_CAP: Final = 256

_OPEN_EVENT: Final = ParseEvent("open", Channel.THINKING)
_CLOSE_EVENT: Final = ParseEvent("close", Channel.THINKING)


class _Mode(enum.Enum):
    """Where a gpt-oss stream is; tag formats stay in BODY."""

    BODY = enum.auto()  # message text: emitted on the current channel
    HEADER = enum.auto()  # between <|channel|> and <|message|>: decides the channel, hidden
    ROLE = enum.auto()  # between <|start|> and <|channel|>/<|message|>: hidden


class ThinkingParser:
    """Incremental splitter for one streamed reply; feed it every piece, then call flush()."""

    __slots__ = (
        "_channel",
        "_events",
        "_fmt",
        "_header",
        "_markers",
        "_max_len",
        "_mode",
        "_pending",
        "_pending_open",
        "_skip_ws",
        "_start_char",
        "_thinking_blocks",
        "_ws",
    )

    def __init__(self, fmt: ThinkingFormat, start_in_thinking: bool = False) -> None:
        self._fmt = ThinkingFormat(fmt)
        self._markers: tuple[str, ...]
        if self._fmt is ThinkingFormat.THINK_TAGS:
            self._markers = (_THINK_OPEN, _THINK_CLOSE)
        elif self._fmt is ThinkingFormat.BRACKET:
            self._markers = (_BRACKET_OPEN, _BRACKET_CLOSE)
        elif self._fmt is ThinkingFormat.GPT_OSS:
            self._markers = _HARMONY_MARKERS
        else:
            self._markers = ()
        # All markers of one format share their first character, so one str.find finds them.
        self._start_char = self._markers[0][0] if self._markers else ""
        self._max_len = max((len(m) for m in self._markers), default=0)
        starts_open = start_in_thinking and self._fmt is not ThinkingFormat.NONE
        self._channel = Channel.THINKING if starts_open else Channel.ANSWER
        self._thinking_blocks = 1 if starts_open else 0
        self._pending_open = starts_open  # the "open" event goes out with the first call
        self._skip_ws = starts_open
        self._mode = _Mode.BODY
        self._header = ""
        self._pending = ""  # tail that may still become a marker
        self._ws: list[str] = []  # trailing whitespace of thinking, held until we see what follows
        self._events: list[ParseEvent] = []

    # --- public API ----------------------------------------------------------------------------

    @property
    def channel(self) -> Channel:
        """The channel that text arriving now would go to."""
        return self._channel

    @property
    def in_thinking(self) -> bool:
        """Whether a thinking span is open."""
        return self._channel is Channel.THINKING

    @property
    def thinking_blocks(self) -> int:
        """How many thinking spans have opened, counting one started by the prompt."""
        return self._thinking_blocks

    @property
    def end_marker(self) -> str:
        """Text that closes thinking in this format, e.g. to force an end when a budget runs out."""
        return end_marker_for(self._fmt)

    def feed(self, text: str) -> list[ParseEvent]:
        """Parse the next piece of the stream; returns what can be shown now."""
        self._begin()
        if not self._markers:
            self._body_text(text)
            return self._take()
        buf = self._pending + text if self._pending else text
        self._pending = ""
        self._scan(buf)
        return self._take()

    def flush(self) -> list[ParseEvent]:
        """End of stream: release held-back text as plain text of the current channel."""
        self._begin()
        if self._pending:
            pending, self._pending = self._pending, ""
            self._plain(pending)
        if self._ws and self._mode is _Mode.BODY:
            ws = "".join(self._ws)
            self._ws.clear()
            self._emit(self._channel, ws)
        return self._take()

    # --- scanning ------------------------------------------------------------------------------

    def _scan(self, buf: str) -> None:
        """Split buf into plain text and markers; keep a possible marker prefix at the end."""
        markers = self._markers
        start_char = self._start_char
        n = len(buf)
        pos = 0  # start of the plain text not yet handled
        search = 0  # where to look for the next marker start
        while True:
            i = buf.find(start_char, search)
            if i < 0:
                break
            matched = next((m for m in markers if buf.startswith(m, i)), None)
            if matched is not None:
                if i > pos:
                    self._plain(buf[pos:i])
                self._marker(matched)
                pos = search = i + len(matched)
                continue
            if n - i < self._max_len:
                tail = buf[i:]
                if any(m.startswith(tail) for m in markers):
                    if i > pos:
                        self._plain(buf[pos:i])
                    self._pending = tail
                    return
            search = i + 1
        if pos < n:
            self._plain(buf[pos:])

    def _plain(self, text: str) -> None:
        """Route non-marker text according to where we are in the format."""
        if self._mode is _Mode.BODY:
            self._body_text(text)
        elif self._mode is _Mode.HEADER and len(self._header) < _HEADER_CAP:
            self._header = (self._header + text)[:_HEADER_CAP]
        # ROLE text (e.g. "assistant") is dropped.

    def _marker(self, marker: str) -> None:
        """Apply one complete marker."""
        if marker in (_THINK_OPEN, _BRACKET_OPEN):
            if self._channel is Channel.ANSWER:
                self._open()
        elif marker in (_THINK_CLOSE, _BRACKET_CLOSE):
            if self._channel is Channel.THINKING:
                self._close()
        else:
            self._harmony_marker(marker)

    def _harmony_marker(self, marker: str) -> None:
        """Apply one gpt-oss control token."""
        if marker == _H_CONSTRAIN:
            return  # part of a header ("... <|constrain|>json"); no effect of its own
        if marker == _H_MESSAGE:
            if self._mode is _Mode.BODY:
                return  # stray: no header to end
            words = self._header.split(maxsplit=1) if self._mode is _Mode.HEADER else []
            self._mode = _Mode.BODY
            self._header = ""
            if words and words[0] == "analysis":
                if self._channel is Channel.ANSWER:
                    self._open()
            elif self._channel is Channel.THINKING:
                self._close()
            return
        # Any other token ends the current message body: its trailing whitespace is noise.
        self._ws.clear()
        if marker == _H_CHANNEL:
            self._mode = _Mode.HEADER
            self._header = ""
        elif marker == _H_START:
            self._mode = _Mode.ROLE
        else:  # <|end|>, <|return|>, <|call|>
            self._mode = _Mode.BODY
            if self._channel is Channel.THINKING:
                self._close()

    def _open(self) -> None:
        self._channel = Channel.THINKING
        self._thinking_blocks += 1
        self._ws.clear()
        self._skip_ws = True
        self._events.append(_OPEN_EVENT)

    def _close(self) -> None:
        self._channel = Channel.ANSWER
        self._ws.clear()  # whitespace before the close marker is dropped
        self._skip_ws = True
        self._events.append(_CLOSE_EVENT)

    # --- output --------------------------------------------------------------------------------

    def _body_text(self, text: str) -> None:
        """Emit message text, applying the whitespace rules around markers."""
        if not text:
            return
        if self._skip_ws:
            text = text.lstrip()
            if not text:
                return
            self._skip_ws = False
        if self._channel is Channel.ANSWER:
            self._emit(Channel.ANSWER, text)
            return
        core = text.rstrip()
        if not core:
            self._ws.append(text)
            return
        trailing = text[len(core) :]
        if self._ws:
            core = "".join(self._ws) + core
            self._ws.clear()
        self._emit(Channel.THINKING, core)
        if trailing:
            self._ws.append(trailing)

    def _emit(self, channel: Channel, text: str) -> None:
        events = self._events
        if events and events[-1].kind == "text" and events[-1].channel is channel:
            events[-1] = ParseEvent("text", channel, events[-1].text + text)
        else:
            events.append(ParseEvent("text", channel, text))

    def _begin(self) -> None:
        if self._pending_open:
            self._pending_open = False
            self._events.append(_OPEN_EVENT)

    def _take(self) -> list[ParseEvent]:
        events = self._events
        self._events = []
        return events


def detect_format(chat_template: str | None, token_texts: Iterable[str] = ()) -> ThinkingFormat:
    """Guess the thinking format from the chat template and the special tokens' texts.

    gpt-oss is checked first because its template is the most specific; a template that mentions
    ``[THINK]`` is Mistral's, and ``<think>`` covers the DeepSeek-R1/Qwen3/QwQ family.
    """
    template = chat_template or ""
    tokens = {t.strip() for t in token_texts}
    for marker, fmt in (
        (_H_CHANNEL, ThinkingFormat.GPT_OSS),
        (_BRACKET_OPEN, ThinkingFormat.BRACKET),
        (_THINK_OPEN, ThinkingFormat.THINK_TAGS),
    ):
        if marker in template or marker in tokens:
            return fmt
    return ThinkingFormat.NONE


def end_marker_for(fmt: ThinkingFormat) -> str:
    """The literal text that closes thinking in `fmt` ("" for NONE)."""
    return {
        ThinkingFormat.THINK_TAGS: _THINK_CLOSE,
        ThinkingFormat.BRACKET: _BRACKET_CLOSE,
        ThinkingFormat.GPT_OSS: _HARMONY_END_MARKER,
    }.get(ThinkingFormat(fmt), "")


def open_marker_for(fmt: ThinkingFormat) -> str:
    """What a prompt ends with to open thinking for the model ("" for NONE)."""
    return {
        ThinkingFormat.THINK_TAGS: _THINK_OPEN + "\n",
        ThinkingFormat.BRACKET: _BRACKET_OPEN,
        ThinkingFormat.GPT_OSS: _HARMONY_ANALYSIS_OPENING,
    }.get(ThinkingFormat(fmt), "")


def prompt_opens_thinking(prompt: str, fmt: ThinkingFormat) -> bool:
    """Whether the rendered prompt already opened thinking, so the reply starts inside it."""
    fmt = ThinkingFormat(fmt)
    tail = prompt.rstrip()
    if fmt is ThinkingFormat.THINK_TAGS:
        return tail.endswith(_THINK_OPEN)
    if fmt is ThinkingFormat.BRACKET:
        return tail.endswith(_BRACKET_OPEN)
    if fmt is ThinkingFormat.GPT_OSS:
        return tail.endswith(_HARMONY_ANALYSIS_OPENING)
    return False
