"""One request's reply, from the engine's events to OpenAI's objects, streamed or whole.

Thinking goes to the reasoning field(s) and never into the answer (the engine's parser removes
the tags; the answer is only ever the answer channel). Answer text passes the stop strings first,
then the answer filter (tool calls plug in there: app.server.hooks). A stop string ends the
generation at once (its cancel flag), reported as finish_reason "stop".
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

from app.core.errors import LeanCoderError
from app.core.llm.engine_types import GenerationEvent, ReplyStats
from app.core.storage import logs
from app.core.thinking.parser import Channel
from app.server.chat_request import ChatRequest, Common, CompletionRequest
from app.server.errors import ApiError
from app.server.hooks import AnswerFilter, Delta, PlainAnswer
from app.server.model_service import ModelService, Ticket
from app.server.responses import (
    SSE_DONE,
    StopMatcher,
    finish_reason,
    new_id,
    now,
    reasoning_delta,
    sse,
    usage,
)

log = logging.getLogger(__name__)


class Reply:
    """Shared by chat and completion replies: events -> deltas, errors, the final usage."""

    object_name = ""

    def __init__(self, common: Common, answer: AnswerFilter, fields: str, model: str) -> None:
        self.common = common
        self.answer = answer
        self.fields = fields
        self.model = model
        self.id = new_id("chatcmpl")
        self.created = now()
        self.stop = StopMatcher(common.stop)
        self.stats = ReplyStats()
        self.tool_calls = False
        self.finished = False

    # -- events to deltas -----------------------------------------------------------------------

    def deltas(self, events: list[GenerationEvent], ticket: Ticket) -> list[Delta]:
        out: list[Delta] = []
        for event in events:
            if self.finished:
                break
            if event.kind == "done":
                self.stats = event.stats
                out += self._answer(self.stop.finish()) + self.answer.finish()
                self.finished = True
            elif event.kind == "text" and event.channel is Channel.THINKING:
                delta = reasoning_delta(event.text, self.fields)
                if delta and event.text:
                    out.append(delta)
            elif event.kind == "text" and not self.stop.stopped:
                out += self._answer(self.stop.feed(event.text))
                if self.stop.stopped:
                    ticket.cancel.set()  # a stop string: end the generation now
        return out

    def _answer(self, text: str) -> list[Delta]:
        deltas = self.answer.feed(text) if text else []
        self.tool_calls = self.tool_calls or any("tool_calls" in d for d in deltas)
        return deltas

    def finish_reason(self) -> str:
        if self.tool_calls:
            return "tool_calls"
        if self.stop.stopped:
            return "stop"
        return finish_reason(self.stats)

    def error_for(self, exc: BaseException) -> ApiError:
        if isinstance(exc, ApiError):
            return exc
        if isinstance(exc, LeanCoderError):  # the prompt is too long, the template refused...
            return ApiError(400, str(exc), code="generation_failed")
        log.error("generation failed", exc_info=(type(exc), exc, exc.__traceback__))
        return ApiError(500, f"Generation failed: {type(exc).__name__}. See LeanCoder's log.")

    # -- whole ----------------------------------------------------------------------------------

    async def whole(self, ticket: Ticket, first: list[GenerationEvent] | None) -> dict[str, Any]:
        deltas: list[Delta] = []
        batch = first
        while batch is not None:
            deltas += self.deltas(batch, ticket)
            # Done is the reply's end: the engine may still be settling its KV cache.
            batch = None if self.finished else await ticket.buffer.next_batch()
        if ticket.buffer.error is not None and not self.finished:
            raise self.error_for(ticket.buffer.error)
        if ticket.buffer.overflowed:
            raise ApiError(500, "The reply outgrew the server's buffer.")
        result = self.result(deltas)
        log.info("reply (%s, %d tokens): %s", self.finish_reason(), self.stats.generated_tokens,
                 logs.content(str(result["choices"][0])))  # fmt: skip
        return result

    def result(self, deltas: list[Delta]) -> dict[str, Any]:
        raise NotImplementedError

    # -- streamed -------------------------------------------------------------------------------

    async def sse(
        self,
        ticket: Ticket,
        first: list[GenerationEvent] | None,
        watcher: asyncio.Task[None],
        service: ModelService,
    ) -> AsyncIterator[bytes]:
        try:
            yield sse(self.chunk(self.opening()))
            batch = first
            while batch is not None:
                # One write per batch: each costs the loop and the client a turn.
                data = b"".join(sse(self.chunk(delta)) for delta in self.deltas(batch, ticket))
                if data:
                    yield data
                batch = None if self.finished else await ticket.buffer.next_batch()
            if ticket.buffer.error is not None and not self.finished:
                yield sse(self.error_for(ticket.buffer.error).body())
            elif ticket.buffer.overflowed:
                log.warning("a client stopped reading its stream: dropped")
                return
            else:
                yield sse(self.chunk({}, self.finish_reason()))
                if self.common.include_usage:
                    yield sse(self.usage_chunk())
            yield SSE_DONE
        except ApiError as exc:  # the answer filter refused what the model wrote
            yield sse(exc.body())
            yield SSE_DONE
        finally:
            watcher.cancel()
            service.cancel(ticket)

    def opening(self) -> Delta:
        return {}

    def chunk(self, delta: Delta, finish: str | None = None) -> dict[str, Any]:
        raise NotImplementedError

    def usage_chunk(self) -> dict[str, Any]:
        return {**self._envelope(), "choices": [], "usage": usage(self.stats)}

    def _envelope(self) -> dict[str, Any]:
        return {"id": self.id, "object": self.object_name, "created": self.created,
                "model": self.model}  # fmt: skip


class ChatReply(Reply):
    object_name = "chat.completion.chunk"

    def __init__(self, request: ChatRequest, answer: AnswerFilter, fields: str, model: str):
        super().__init__(request.common, answer, fields, model)

    def opening(self) -> Delta:
        return {"role": "assistant", "content": ""}

    def chunk(self, delta: Delta, finish: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return {**self._envelope(), "choices": [choice]}

    def result(self, deltas: list[Delta]) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant"}
        content = "".join(d.get("content") or "" for d in deltas)
        for name in ("reasoning_content", "reasoning"):
            if any(name in d for d in deltas):
                message[name] = "".join(d.get(name, "") for d in deltas)
        calls = merge_tool_calls(deltas)
        message["content"] = content if content or not calls else None
        if calls:
            message["tool_calls"] = calls
        choice = {"index": 0, "message": message, "logprobs": None,
                  "finish_reason": self.finish_reason()}  # fmt: skip
        return {**self._envelope(), "object": "chat.completion", "choices": [choice],
                "usage": usage(self.stats)}  # fmt: skip


class CompletionReply(Reply):
    object_name = "text_completion"

    def __init__(self, request: CompletionRequest, fields: str, model: str) -> None:
        super().__init__(request.common, PlainAnswer(), fields, model)
        self.id = new_id("cmpl")

    def chunk(self, delta: Delta, finish: str | None = None) -> dict[str, Any]:
        choice: dict[str, Any] = {"index": 0, "text": delta.get("content", ""),
                                  "logprobs": None, "finish_reason": finish}  # fmt: skip
        for name in ("reasoning_content", "reasoning"):
            if name in delta:
                choice[name] = delta[name]
        return {**self._envelope(), "choices": [choice]}

    def result(self, deltas: list[Delta]) -> dict[str, Any]:
        merged: Delta = {"content": "".join(d.get("content") or "" for d in deltas)}
        for name in ("reasoning_content", "reasoning"):
            if any(name in d for d in deltas):
                merged[name] = "".join(d.get(name, "") for d in deltas)
        return {**self.chunk(merged, self.finish_reason()), "usage": usage(self.stats)}


def merge_tool_calls(deltas: list[Delta]) -> list[dict[str, Any]]:
    """Streamed tool-call deltas merged per index, as OpenAI's non-streamed message has them."""
    calls: dict[int, dict[str, Any]] = {}
    for delta in deltas:
        for part in delta.get("tool_calls") or ():
            empty = {"id": "", "type": "function", "function": {"name": "", "arguments": ""}}
            call = calls.setdefault(int(part.get("index", 0)), empty)
            call["id"] = part.get("id") or call["id"]
            function = part.get("function") or {}
            call["function"]["name"] += function.get("name") or ""
            call["function"]["arguments"] += function.get("arguments") or ""
    return [calls[i] for i in sorted(calls)]
