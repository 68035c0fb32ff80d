"""OpenAI's response shapes, built from the engine's statistics; stop strings.

Usage follows OpenAI (`completion_tokens_details.reasoning_tokens`,
`prompt_tokens_details.cached_tokens`) and adds `usage.leancoder`: the thinking controller's
counters and the policy, which no other server reports.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

from app.core.llm.engine import Engine
from app.core.llm.engine_types import GenerationEvent, ReplyStats
from app.core.thinking.parser import Channel
from app.server.model_service import Generation

FINISH_REASONS = {"stop": "stop", "length": "length", "context": "length", "cancelled": "stop"}


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


def now() -> int:
    return int(time.time())


def usage(stats: ReplyStats) -> dict[str, Any]:
    completion = stats.generated_tokens
    return {
        "prompt_tokens": stats.prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": stats.prompt_tokens + completion,
        "prompt_tokens_details": {"cached_tokens": stats.cached_prompt_tokens},
        "completion_tokens_details": {"reasoning_tokens": stats.thinking_tokens},
        "leancoder": {
            "policy": stats.policy,
            "thinking_tokens": stats.thinking_tokens,
            "answer_tokens": stats.answer_tokens,
            "suppressed_tokens": stats.suppressed_tokens,
            "forced_tokens": stats.forced_tokens,
            "budget_hits": stats.budget_hits,
            "loops_broken": stats.loops_broken,
            "hints_injected": stats.hints_injected,
            "early_exits": stats.early_exits,
            "cached_prompt_tokens": stats.cached_prompt_tokens,
            "time_to_first_token_s": round(stats.time_to_first_token_s, 4),
            "prompt_tokens_per_s": round(stats.prompt_tokens_per_s, 2),
            "decode_tokens_per_s": round(stats.decode_tokens_per_s, 2),
            "finish_reason": stats.finish_reason,
        },
    }


def finish_reason(stats: ReplyStats) -> str:
    return FINISH_REASONS.get(stats.finish_reason, "stop")


def sse(data: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(data, ensure_ascii=False).encode() + b"\n\n"


SSE_DONE = b"data: [DONE]\n\n"


def reasoning_delta(text: str, fields: str) -> dict[str, Any]:
    """Thinking text under the field names the server is set to use ({} for "none")."""
    if fields == "both":
        return {"reasoning_content": text, "reasoning": text}
    if fields == "none":
        return {}
    return {fields: text}


class StopMatcher:
    """Finds the first stop string in streamed text, holding back a tail that may start one."""

    def __init__(self, stops: tuple[str, ...]) -> None:
        self._stops = stops
        self._hold = max((len(s) for s in stops), default=1) - 1
        self._buffer = ""
        self.stopped = False

    def feed(self, text: str) -> str:
        """The text safe to emit now; sets `stopped` (and emits up to the match) on a match."""
        if not self._stops:
            return text
        if self.stopped:
            return ""
        self._buffer += text
        cut = min((i for s in self._stops if (i := self._buffer.find(s)) >= 0), default=-1)
        if cut >= 0:
            self.stopped = True
            out, self._buffer = self._buffer[:cut], ""
            return out
        keep = self._safe_tail(self._buffer)
        out, self._buffer = self._buffer[: len(self._buffer) - keep], self._buffer[
            len(self._buffer) - keep :
        ]
        return out

    def finish(self) -> str:
        out, self._buffer = ("" if self.stopped else self._buffer), ""
        return out

    def _safe_tail(self, text: str) -> int:
        """How many trailing characters might be the start of a stop string."""
        for n in range(min(self._hold, len(text)), 0, -1):
            tail = text[-n:]
            if any(s.startswith(tail) for s in self._stops):
                return n
        return 0


def stopping_at(generation: Generation, stops: tuple[str, ...]) -> Generation:
    """The generation, cancelled on the worker as soon as its answer shows a stop string.

    The reply's own matcher (on the request's task) cuts the text the client gets; it sees a
    paced stream's text up to an interval late, and the model would decode on meanwhile.
    """
    if not stops:
        return generation

    def run(engine: Engine, cancel: threading.Event) -> Iterator[GenerationEvent]:
        watch = StopMatcher(stops)
        for event in generation(engine, cancel):
            if event.kind == "text" and event.channel is Channel.ANSWER and not watch.stopped:
                watch.feed(event.text)
                if watch.stopped:
                    cancel.set()  # the engine checks it before its next token
            yield event

    return run
