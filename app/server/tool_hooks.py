"""Function calling plugged into the chat route (the `ChatHooks` seam in app/server/__init__.py).

`ToolCallHooks.prepare` checks `tools`/`tool_choice`, turns tool history into what templates read
and hands the tools to the model's chat template; a model whose template never reads `tools` gets
a 400 saying so, because rendering without them would silently leave the model unaware of the
functions the client thinks it offered. `answer_filter` gives each request a `ToolCallFilter`
that streams text as `content` deltas and each finished call as one `tool_calls` delta.

A call the model wrote but LeanCoder cannot read is an error the client sees (HTTP 500, code
`tool_call_parse_error`, the model's words quoted), not text: with `x-should-retry: false`, since
the official SDKs otherwise repeat a 5xx request and the model would run the whole turn again.

`tool_call_hooks(model_info)` is the `ChatHooks` a real server runs with.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.core.llm.engine_types import ModelInfo
from app.server.chat_request import ChatRequest
from app.server.errors import ApiError, bad_request
from app.server.hooks import AnswerFilter, ChatHooks, PlainAnswer
from app.server.tool_calls import (
    ToolCall,
    ToolCallFormatError,
    ToolCallStream,
    ToolRequest,
    ToolRequestError,
    template_messages,
)

Delta = dict[str, Any]
PARSE_ERROR_CODE = "tool_call_parse_error"


class ToolCallFilter:
    """The answer of one request with tools: text and calls as OpenAI deltas, in order."""

    def __init__(self, tools: ToolRequest) -> None:
        self.stream = ToolCallStream(tools)

    def feed(self, text: str) -> list[Delta]:
        return self._deltas(self.stream.feed, text)

    def finish(self) -> list[Delta]:
        return self._deltas(lambda _: self.stream.finish(), "")

    @staticmethod
    def _deltas(step: Callable[[str], list[str | ToolCall]], text: str) -> list[Delta]:
        try:
            pieces = step(text)
        except ToolCallFormatError as exc:
            raise ApiError(
                500, str(exc), code=PARSE_ERROR_CODE, headers={"x-should-retry": "false"}
            ) from None
        return [
            {"content": piece} if isinstance(piece, str) else {"tool_calls": [piece.delta_form()]}
            for piece in pieces
        ]


class ToolCallHooks:
    """`model_info` says what is loaded now (None: nothing), for whether its template reads
    `tools`."""

    def __init__(self, model_info: Callable[[], ModelInfo | None]) -> None:
        self._model_info = model_info

    def prepare(self, request: ChatRequest) -> None:
        tools = _tool_request(request)
        try:
            request.messages = template_messages(request.messages)
        except ToolRequestError as exc:
            raise bad_request(str(exc), exc.param) from None
        if tools is None or tools.template_tools is None:
            return
        info = self._model_info()
        if info is not None and not info.supports_tools:
            raise bad_request(
                f"The loaded model's chat template ({info.template_name}) does not support tools, "
                "so the model would never see them. Load a model trained for function calling "
                '(e.g. Qwen3 or Qwen3-Coder), or send `tool_choice: "none"`.',
                "tools",
            )
        request.template_vars["tools"] = tools.template_tools

    def answer_filter(self, request: ChatRequest) -> AnswerFilter:
        tools = _tool_request(request)
        if tools is None or not tools.render:
            return PlainAnswer()
        return ToolCallFilter(tools)


def tool_call_hooks(model_info: Callable[[], ModelInfo | None]) -> ChatHooks:
    """The chat route's hooks with function calling: `model_info` is what is loaded now,
    e.g. `lambda: service.engine.info`."""
    hooks = ToolCallHooks(model_info)
    return ChatHooks(prepare=hooks.prepare, answer_filter=hooks.answer_filter)


def _tool_request(request: ChatRequest) -> ToolRequest | None:
    try:
        return ToolRequest.from_body(request.body)
    except ToolRequestError as exc:
        raise bad_request(str(exc), exc.param) from None
