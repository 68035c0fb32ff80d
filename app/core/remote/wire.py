"""What goes over the wire for a remote reply, read and said: one streamed raw-completion event
(checked, since a server can send anything), the server's own meters (usage, llama-server's
`timings`), and the sentences that tell the user which thinking controls work on a server."""

from __future__ import annotations

from typing import Any

from app.core.llm.engine_types import ReplyStats
from app.core.remote.capabilities import ServerCapabilities
from app.core.remote.endpoint import RemoteProtocolError


def completion_chunk(event: dict[str, Any], host: str) -> tuple[str, str]:
    """(text, finish_reason) of one streamed raw-completion event."""
    if "error" in event:
        error = event["error"]
        message = error.get("message", "") if isinstance(error, dict) else str(error)
        raise RemoteProtocolError(f"The server at {host} reported an error mid-reply: "
                                  f"{' '.join(str(message).split())[:300]}")  # fmt: skip
    choices = event.get("choices")
    if choices == [] and "usage" in event:
        return "", ""  # the usage-only last event of stream_options.include_usage
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise RemoteProtocolError(f"The server at {host} streamed an event that is not a "
                                  "completion (no choices).")  # fmt: skip
    choice = choices[0]
    text = choice.get("text", "")
    if text is None:
        text = ""
    if not isinstance(text, str):
        raise RemoteProtocolError(f"The server at {host} streamed completion text that is not "
                                  "text.")  # fmt: skip
    finish = choice.get("finish_reason") or ""
    return text, finish if isinstance(finish, str) else "stop"


def read_meters(event: dict[str, Any], stats: ReplyStats, first_leg: bool) -> None:
    """Server-side figures, where the server sends them: usage and llama-server's timings."""
    usage = event.get("usage")
    if first_leg and isinstance(usage, dict):
        prompt = usage.get("prompt_tokens")
        if isinstance(prompt, int) and prompt > 0:
            stats.prompt_tokens = prompt
    timings = event.get("timings")
    if first_leg and isinstance(timings, dict):
        cached = timings.get("cache_n")
        if isinstance(cached, int) and cached >= 0:
            stats.cached_prompt_tokens = cached


def control_notes(caps: ServerCapabilities, template_source: str, raw: bool) -> list[str]:
    """Each thinking control in one sentence: how it works on this server, or that it cannot."""
    notes = [f"Remote engine: {caps.kind} serving {caps.model}; chat template {template_source}."]
    tokenizer = caps.tokenize != "none"
    if caps.kind == "leancoder":
        counts = "from the server's tokenizer" if tokenizer else "estimates (no tokenize endpoint)"
        notes.append(
            "Thinking control: run by the LeanCoder server itself, in its decode loop (a preset "
            "by name, the budgets, forced thinking); a policy that is no preset goes as its "
            "budgets only."
        )
        notes.append(f"Token counts for the folder context: {counts}.")
        return notes
    if raw and tokenizer:
        notes.append("Filler words: banned with logit_bias inside the thinking, token ids from "
                     "the server's tokenizer.")  # fmt: skip
    elif raw:
        notes.append("Filler words: not suppressed (the server offers no tokenize endpoint, so "
                     "the ids of its tokens are unknown).")  # fmt: skip
    else:
        notes.append("Filler words: not suppressed (without a chat template the ban would also "
                     "hit the answer).")  # fmt: skip
    if raw:
        notes.append(
            "Thinking budget, loop breaker and Stop thinking: the stream is stopped and the "
            "reply continues with a raw completion (one more request each)."
        )
    elif caps.budget_field:
        notes.append(f"Thinking budget: the server's own {caps.budget_field}; loop breaker and "
                     "Stop thinking need a chat template: give the model's GGUF.")  # fmt: skip
    else:
        notes.append("Thinking budget, loop breaker, Stop thinking and forced thinking: not "
                     "available (no chat template for raw completions, no budget field); give "
                     "the model's GGUF or pick a template.")  # fmt: skip
    notes.append("Early exit (trial answers) needs the model's probabilities: not available "
                 "over the wire.")  # fmt: skip
    if not tokenizer:
        notes.append("Token counts are estimates (about 3.5 characters a token): the server "
                     "has no tokenize endpoint.")  # fmt: skip
    return notes
