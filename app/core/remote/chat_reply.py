"""A remote reply without a chat template: one streamed `/v1/chat/completions` request.

The server renders the prompt, so LeanCoder cannot continue a cut reply; what it can do is send
the server's own thinking budget field (llama-server `thinking_budget_tokens`, vLLM
`thinking_token_budget`) and sort the stream into thinking and answer: reasoning arrives as
`delta.reasoning_content` (llama.cpp, DeepSeek) or `delta.reasoning` (vLLM, Ollama), or inline in
the content between `<think>` tags. The engine's notes say which controls this leaves off.

LeanCoder's own server is asked this way on purpose: it runs the policy in its decode loop (exact,
no extra requests), told through its `leancoder` request extension, and reports the controller's
counters in `usage.leancoder`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from app.core.llm.chat_template import Message
from app.core.llm.engine_types import CancelToken, GenerationEvent, ReplyStats, SamplingParams
from app.core.remote.endpoint import RemoteDroppedError, RemoteError, RemoteProtocolError
from app.core.remote.http import EventStream
from app.core.remote.wire import completion_chunk
from app.core.thinking.parser import Channel, ThinkingFormat, ThinkingParser
from app.core.thinking.policy import PRESETS, ThinkingPolicy

if TYPE_CHECKING:
    from app.core.remote.engine import RemoteEngine


def stream_chat_reply(
    engine: RemoteEngine,
    messages: Sequence[Message],
    sampling: SamplingParams,
    cancel: CancelToken | None,
    policy: ThinkingPolicy,
    force_thinking: bool = False,
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
    if caps.kind == "leancoder":
        body["leancoder"] = _leancoder_extension(policy, force_thinking)
    elif caps.budget_field and policy.budget is not None:
        body[caps.budget_field] = policy.budget
    if caps.kind in ("llama-server", "vllm", "leancoder"):
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
            if "error" in event:
                completion_chunk(event, client.spec.host)  # raises with the server's sentence
            usage = event.get("usage")
            if isinstance(usage, dict):
                _read_usage(usage, stats)
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
                if "stream_options" in body:  # the usage event follows the finish
                    for usage in _trailing_usage(stream, cancel):
                        _read_usage(usage, stats)
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


_COUNTERS = ("suppressed_tokens", "forced_tokens", "budget_hits", "loops_broken",
             "hints_injected", "early_exits", "cached_prompt_tokens")  # fmt: skip


def _trailing_usage(stream: EventStream, cancel: CancelToken | None) -> Iterator[dict[str, Any]]:
    """The usage objects among the few events after the finish; a fault there costs nothing."""
    for _ in range(4):
        try:
            event = stream.next_event(cancel)
        except RemoteError:
            return
        if event is None or event is EventStream.CANCELLED:
            return
        if isinstance(event.get("usage"), dict):
            yield event["usage"]


def _read_usage(usage: dict[str, Any], stats: ReplyStats) -> None:
    """Prompt tokens from OpenAI's usage; the thinking controller's counters from LeanCoder's."""
    if isinstance(usage.get("prompt_tokens"), int):
        stats.prompt_tokens = usage["prompt_tokens"]
    own = usage.get("leancoder")
    if not isinstance(own, dict):
        return
    for key in _COUNTERS:
        value = own.get(key)
        if isinstance(value, int) and value >= 0:
            setattr(stats, key, value)
    for key in ("thinking_tokens", "answer_tokens"):  # the server's exact token counts
        value = own.get(key)
        if isinstance(value, int) and value >= 0:
            setattr(stats, key, value)


def _leancoder_extension(policy: ThinkingPolicy, force_thinking: bool) -> dict[str, Any]:
    """The policy as LeanCoder's server takes it: a preset by name, the budgets, forced thinking.
    A policy that is no preset goes as its budgets only (its word list stays here: see notes)."""
    base = policy.name.split(" (budget")[0]
    ext: dict[str, Any] = {"force_thinking": force_thinking}
    if base in PRESETS:
        ext["policy"] = base
    if policy.budget is not None:
        ext["budget"] = policy.budget
    if policy.turn_budget is not None:
        ext["turn_budget"] = policy.turn_budget
    return ext
