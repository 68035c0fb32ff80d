"""Where tool calls plug into the chat route (see the package docstring for the contract).

The defaults pass the answer through as text: a server without tool support still serves every
plain chat. `default_hooks()` is what `leancoder serve` and the window use.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from app.core.llm.engine_types import ModelInfo
from app.server.chat_request import ChatRequest

Delta = dict[str, Any]  # an OpenAI delta: {"content": ...} or {"tool_calls": [...]}


class AnswerFilter(Protocol):
    def feed(self, text: str) -> list[Delta]: ...

    def finish(self) -> list[Delta]: ...


class PlainAnswer:
    """The answer as it comes: content deltas only."""

    def feed(self, text: str) -> list[Delta]:
        return [{"content": text}] if text else []

    def finish(self) -> list[Delta]:
        return []


def _no_preparation(_request: ChatRequest) -> None:
    return None


def _plain(_request: ChatRequest) -> AnswerFilter:
    return PlainAnswer()


@dataclass(frozen=True, slots=True)
class ChatHooks:
    prepare: Callable[[ChatRequest], None] = field(default=_no_preparation)
    answer_filter: Callable[[ChatRequest], AnswerFilter] = field(default=_plain)


def default_hooks(model_info: Callable[[], ModelInfo | None]) -> ChatHooks:
    """The hooks a real server runs with (tool calls plug in here). `model_info` says what is
    loaded now (None: nothing), e.g. whether its template reads `tools`."""
    from app.server.tool_hooks import tool_call_hooks  # it builds on this module's types

    return tool_call_hooks(model_info)
