"""A remote reply without a chat template: one streamed `/v1/chat/completions` request.

The server renders the prompt, so LeanCoder cannot continue a cut reply; what it can do is send
the server's own thinking budget field (llama-server `thinking_budget_tokens`, vLLM
`thinking_token_budget`) and sort the stream into thinking and answer: reasoning arrives as
`delta.reasoning_content` (llama.cpp, DeepSeek) or `delta.reasoning` (vLLM, Ollama), or inline in
the content between `<think>` tags. The engine's notes say which controls this leaves off.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from app.core.llm.chat_template import Message
from app.core.llm.engine_types import CancelToken, GenerationEvent, ReplyStats, SamplingParams
from app.core.remote.endpoint import RemoteDroppedError, RemoteProtocolError
from app.core.remote.http import EventStream
from app.core.thinking.parser import Channel, ThinkingFormat, ThinkingParser
from app.core.thinking.policy import ThinkingPolicy

if TYPE_CHECKING:
    from app.core.remote.engine import RemoteEngine


def stream_chat_reply(
    engine: RemoteEngine,
    messages: Sequence[Message],
    sampling: SamplingParams,
    cancel: CancelToken | None,
    policy: ThinkingPolicy,
) -> Iterator[GenerationEvent]:
    client, caps = engine._client, engine.caps
    assert client is not None and caps is not None
    body: dict[str, Any] = {
        "model": caps.model,
        "messages": [dict(m) for m in messages],
        "stream": True,
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
    }
    if sampling.max_tokens:
        body["max_tokens"] = sampling.max_tokens
    if sampling.seed is not None:
        body["seed"] = sampling.seed
    if caps.budget_field and policy.budget is not None:
        body[caps.budget_field] = policy.budget
    if caps.kind in ("llama-server", "vllm"):
        body["stream_options"] = {"include_usage": True}
    stats = ReplyStats(policy=policy.name, requests=1)
    parser = ThinkingParser(ThinkingFormat.THINK_TAGS)
    reasoning_open = False
    start = time.perf_counter()
    first = 0.0
    finished = ""
    with client.stream("/v1/chat/completions", body) as stream:
        while True:
            event = stream.next_event(cancel)
            if event is EventStream.CANCELLED:
                finished = "cancelled"
                break
            if event is None:
                break
            usage = event.get("usage")
            if isinstance(usage, dict) and isinstance(usage.get("prompt_tokens"), int):
                stats.prompt_tokens = usage["prompt_tokens"]
            choices = event.get("choices")
            if choices == []:
                continue
            if not isinstance(choices, list) or not isinstance(choices[0], dict):
                raise RemoteProtocolError(f"The server at {client.spec.host} streamed an event "
                                          "that is not a chat completion.")  # fmt: skip
            delta = choices[0].get("delta") or {}
            reasoning = delta.get("reasoning_content") or delta.get("reasoning") or ""
            content = delta.get("content") or ""
            if not isinstance(reasoning, str) or not isinstance(content, str):
                raise RemoteProtocolError(f"The server at {client.spec.host} streamed text that "
                                          "is not text.")  # fmt: skip
            if reasoning or content:
                now = time.perf_counter()
                if not first:
                    first = now
                    stats.prompt_seconds = stats.time_to_first_token_s = now - start
                stats.decode_seconds = now - first
            if reasoning:
                if not reasoning_open:
                    reasoning_open = True
                    yield GenerationEvent("thinking_open", Channel.THINKING, "", stats)
                stats.thinking_tokens += 1
                yield GenerationEvent("text", Channel.THINKING, reasoning, stats)
            if content:
                if reasoning_open:
                    reasoning_open = False
                    yield GenerationEvent("thinking_close", Channel.THINKING, "", stats)
                was = parser.in_thinking
                for ev in parser.feed(content):
                    kind = "text" if ev.kind == "text" else f"thinking_{ev.kind}"
                    yield GenerationEvent(kind, ev.channel, ev.text, stats)  # type: ignore[arg-type]
                if was or parser.in_thinking:
                    stats.thinking_tokens += 1
                else:
                    stats.answer_tokens += 1
            finish = choices[0].get("finish_reason")
            if finish:
                finished = "length" if finish == "length" else "stop"
                break
    if not finished:
        raise RemoteDroppedError(
            f"The server at {client.spec.host} ended the reply without saying it was finished. "
            "What arrived so far is kept."
        )
    for ev in parser.flush():
        kind = "text" if ev.kind == "text" else f"thinking_{ev.kind}"
        yield GenerationEvent(kind, ev.channel, ev.text, stats)  # type: ignore[arg-type]
    stats.total_seconds = time.perf_counter() - start
    stats.finish_reason = finished
    yield GenerationEvent("done", parser.channel, "", stats)
