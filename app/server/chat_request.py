"""Validate what a client sends: chat and completion requests, as the engine will run them.

Everything that crosses the boundary is checked here (types, ranges, sizes) and refused with a
400 naming the field; fields the server does not use (penalties, `user`, `metadata`...) are
accepted and ignored, as clients send many of them. Messages keep every field a client sent
(tool calls, tool results) for the chat template; only `content` is normalised to text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.core.llm.engine_types import SamplingParams
from app.server.errors import bad_request
from app.server.thinking_options import ThinkingChoice, thinking_choice

ROLES = ("system", "user", "assistant", "tool")
MAX_MESSAGES = 10_000
MAX_STOPS = 16
MAX_STOP_CHARS = 256
MAX_TOKENS = 1_000_000
COMPLETION_DEFAULT_MAX_TOKENS = 16  # OpenAI's default for /v1/completions


@dataclass(slots=True)
class Common:
    """What chat and completion requests share."""

    model: str
    sampling: SamplingParams
    stream: bool
    include_usage: bool
    stop: tuple[str, ...]
    thinking: ThinkingChoice


@dataclass(slots=True)
class ChatRequest:
    body: dict[str, Any]  # the whole JSON body, for hooks (tools, tool_choice)
    messages: list[dict[str, Any]]
    common: Common
    template_vars: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class CompletionRequest:
    body: dict[str, Any]
    prompt: str
    common: Common


def parse_chat_request(body: Any, default_policy: str) -> ChatRequest:
    body = _object(body)
    raw = body.get("messages")
    if not isinstance(raw, list) or not raw:
        raise bad_request("`messages` must be a non-empty list.", "messages")
    if len(raw) > MAX_MESSAGES:
        raise bad_request(f"At most {MAX_MESSAGES:,} messages are accepted.", "messages")
    messages = [_message(m, i) for i, m in enumerate(raw)]
    request = ChatRequest(body, messages, _common(body, default_policy, None))
    kwargs = body.get("chat_template_kwargs")  # e.g. Qwen3's {"enable_thinking": false}
    if kwargs is not None:
        if not isinstance(kwargs, dict) or not all(
            isinstance(k, str) and k.isidentifier() and _scalar(v) for k, v in kwargs.items()
        ):
            raise bad_request(
                "`chat_template_kwargs` must map names to strings, numbers or booleans.",
                "chat_template_kwargs",
            )
        reserved = {"messages", "tools", "add_generation_prompt", "bos_token", "eos_token"}
        if reserved & set(kwargs):
            raise bad_request(
                f"`chat_template_kwargs` cannot set {', '.join(sorted(reserved & set(kwargs)))}.",
                "chat_template_kwargs",
            )
        request.template_vars.update(kwargs)
    return request


def parse_completion_request(body: Any, default_policy: str) -> CompletionRequest:
    body = _object(body)
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if not isinstance(prompt, str) or not prompt:
        raise bad_request("`prompt` must be one non-empty string.", "prompt")
    for name in ("echo", "suffix", "best_of"):
        if body.get(name) not in (None, False, 1):
            raise bad_request(f"`{name}` is not supported by this server.", name)
    return CompletionRequest(
        body, prompt, _common(body, default_policy, COMPLETION_DEFAULT_MAX_TOKENS)
    )


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    return body


def _common(body: dict[str, Any], default_policy: str, default_max: int | None) -> Common:
    if body.get("n", 1) != 1:
        raise bad_request("Only `n`: 1 is supported (one model, one reply).", "n")
    if body.get("logprobs") not in (None, False) or body.get("top_logprobs") not in (None, 0):
        raise bad_request("`logprobs` are not supported by this server.", "logprobs")
    fmt = body.get("response_format")
    if fmt is not None and (not isinstance(fmt, dict) or fmt.get("type") != "text"):
        raise bad_request(
            'Only `response_format` {"type": "text"} is supported.', "response_format"
        )
    model = body.get("model", "")
    if not isinstance(model, str):
        raise bad_request("`model` must be a string.", "model")
    stream = _bool(body, "stream")
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise bad_request("`stream_options` must be an object.", "stream_options")
    include_usage = bool(options and options.get("include_usage") is True)
    max_tokens = _int(body, "max_completion_tokens", 1, MAX_TOKENS)
    if max_tokens is None:
        max_tokens = _int(body, "max_tokens", 1, MAX_TOKENS)
    seed = _int(body, "seed", -(2**63), 2**64)
    defaults = SamplingParams()
    sampling = SamplingParams(
        temperature=_float(body, "temperature", 0.0, 2.0, defaults.temperature),
        top_p=_float(body, "top_p", 0.0, 1.0, defaults.top_p),
        top_k=_int(body, "top_k", 0, 1_000_000) or defaults.top_k,
        min_p=_float(body, "min_p", 0.0, 1.0, defaults.min_p),
        repeat_penalty=_float(body, "repeat_penalty", 0.0, 10.0, defaults.repeat_penalty),
        max_tokens=max_tokens if max_tokens is not None else default_max,
        seed=None if seed is None else seed & 0x7FFFFFFF,  # llama.cpp takes a 32-bit seed
    )
    return Common(
        model=model,
        sampling=sampling,
        stream=stream,
        include_usage=include_usage,
        stop=_stops(body.get("stop")),
        thinking=thinking_choice(body, default_policy),
    )


def _message(raw: Any, index: int) -> dict[str, Any]:
    param = f"messages[{index}]"
    if not isinstance(raw, dict):
        raise bad_request(f"{param} must be an object.", param)
    role = raw.get("role")
    if role == "developer":  # OpenAI's newer name for system; templates know only system
        role = "system"
    if role not in ROLES:
        raise bad_request(f"{param}.role must be one of {', '.join(ROLES)}.", f"{param}.role")
    message = {k: v for k, v in raw.items() if isinstance(k, str)}
    message["role"] = role
    message["content"] = _content(raw.get("content"), role, raw, f"{param}.content")
    return message


def _content(content: Any, role: str, raw: dict[str, Any], param: str) -> str:
    if isinstance(content, str):
        return content
    if content is None:
        if role == "assistant" or raw.get("tool_calls"):
            return ""
        raise bad_request(f"{param} is missing.", param)
    if isinstance(content, list):
        texts: list[str] = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") not in ("text", "input_text"):
                kind = part.get("type") if isinstance(part, dict) else type(part).__name__
                raise bad_request(
                    f"{param} has a part of type {kind!r}: this model reads text only.", param
                )
            text = part.get("text")
            if not isinstance(text, str):
                raise bad_request(f"{param}: a text part needs a `text` string.", param)
            texts.append(text)
        return "".join(texts)
    raise bad_request(f"{param} must be a string or a list of text parts.", param)


def _stops(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    stops = [value] if isinstance(value, str) else value
    if (
        not isinstance(stops, list)
        or len(stops) > MAX_STOPS
        or not all(isinstance(s, str) and 0 < len(s) <= MAX_STOP_CHARS for s in stops)
    ):
        raise bad_request(
            f"`stop` must be a string or a list of at most {MAX_STOPS} non-empty strings of at "
            f"most {MAX_STOP_CHARS} characters.",
            "stop",
        )
    return tuple(stops)


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _bool(body: dict[str, Any], name: str) -> bool:
    value = body.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise bad_request(f"`{name}` must be true or false.", name)
    return value


def _int(body: dict[str, Any], name: str, lo: int, hi: int) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise bad_request(f"`{name}` must be a whole number from {lo:,} to {hi:,}.", name)
    return value


def _float(body: dict[str, Any], name: str, lo: float, hi: float, default: float) -> float:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
        raise bad_request(f"`{name}` must be a number from {lo} to {hi}.", name)
    return float(value)
