"""A request's thinking control: which policy and budgets one API request runs under.

Clients ask for thinking in three dialects, all accepted:
- the LeanCoder extension object `"leancoder": {"policy", "budget", "turn_budget",
  "force_thinking", "think_kv_cap"}` (policy by name, a per-block budget, a per-reply budget,
  opening a thinking span on a model whose template does not, and the thinking KV cap: a token
  count or "fit", app.core.llm.thinking_kv);
- llama.cpp's `thinking_budget_tokens`: here it bounds the whole reply, every thinking block
  together (llama.cpp re-arms it per block, so a model that reopens its thinking escapes it);
- OpenAI's `reasoning_effort` (and Ollama's `think`), mapped to presets by `EFFORT_PRESETS`.
The base policy is the extension's, else the effort's preset, else the server's default; then
`thinking_budget_tokens`, then the extension's budgets replace the base's.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from app.core.errors import LeanCoderError
from app.core.thinking.policy import (
    AGGRESSIVE,
    BALANCED,
    ThinkingPolicy,
    check_thinking_kv_cap,
    policy_by_name,
)
from app.server.errors import bad_request

MAX_BUDGET = 1_000_000

# reasoning_effort -> (base policy, tokens per thinking block, tokens for the whole reply).
EFFORT_PRESETS: dict[str, tuple[ThinkingPolicy, int | None, int | None]] = {
    "none": (AGGRESSIVE, 0, 0),  # no thinking at all: a block is closed at its first token
    "minimal": (AGGRESSIVE, 256, 256),
    "low": (AGGRESSIVE, 768, 1024),
    "medium": (BALANCED, 2048, 4096),
    "high": (BALANCED, None, None),  # filler words and loops pruned, no token cap
}
EXTENSION_KEYS = frozenset({"policy", "budget", "turn_budget", "force_thinking", "think_kv_cap"})


@dataclass(frozen=True, slots=True)
class ThinkingChoice:
    policy: ThinkingPolicy
    force_thinking: bool = False


def thinking_choice(body: dict[str, Any], default_policy: str) -> ThinkingChoice:
    """The policy a request asks for (a 400 ApiError for a bad value)."""
    ext = body.get("leancoder")
    if ext is None:
        ext = {}
    if not isinstance(ext, dict):
        raise bad_request("`leancoder` must be an object.", "leancoder")
    unknown = sorted(set(ext) - EXTENSION_KEYS)
    if unknown:
        raise bad_request(
            f"Unknown `leancoder` field(s) {', '.join(unknown)}; known: "
            f"{', '.join(sorted(EXTENSION_KEYS))}.",
            "leancoder",
        )
    # The base policy: the extension's by name, else the effort's preset, else the server's.
    effort = _effort(body)
    if "policy" in ext:
        if not isinstance(ext["policy"], str) or not ext["policy"].strip():
            raise bad_request("`leancoder.policy` must be a policy name.", "leancoder.policy")
        policy = _named_policy(ext["policy"], "leancoder.policy")
    elif effort is not None:
        base, block, turn = EFFORT_PRESETS[effort]
        policy = dataclasses.replace(
            base, budget=block, turn_budget=turn, name=f"{base.name} (effort {effort})"
        )
    else:
        policy = _named_policy(default_policy, "policy")
    # Then the budgets, the most specific last.
    tokens = _budget(body.get("thinking_budget_tokens"), "thinking_budget_tokens")
    if tokens is not None:
        policy = dataclasses.replace(
            policy, turn_budget=tokens, name=f"{policy.name} (turn budget {tokens})"
        )
    if "budget" in ext:
        policy = policy.with_budget(_budget(ext["budget"], "leancoder.budget"))
    if "turn_budget" in ext:
        turn = _budget(ext["turn_budget"], "leancoder.turn_budget")
        policy = dataclasses.replace(policy, turn_budget=turn)
    if "think_kv_cap" in ext:
        try:
            cap = check_thinking_kv_cap(ext["think_kv_cap"])
        except ValueError as exc:
            param = "leancoder.think_kv_cap"
            raise bad_request(f"`{param}`: {exc}.", param) from exc
        policy = dataclasses.replace(policy, thinking_kv_cap=cap)
    force = ext.get("force_thinking", False)
    if not isinstance(force, bool):
        raise bad_request("`leancoder.force_thinking` must be true or false.", "leancoder")
    return ThinkingChoice(policy, force)


def _named_policy(name: str, param: str) -> ThinkingPolicy:
    try:
        return policy_by_name(name)
    except LeanCoderError as exc:
        raise bad_request(str(exc), param) from exc


def _effort(body: dict[str, Any]) -> str | None:
    effort = body.get("reasoning_effort")
    reasoning = body.get("reasoning")  # the Responses API's {"effort": ...}, some clients send it
    if effort is None and isinstance(reasoning, dict):
        effort = reasoning.get("effort")
    think = body.get("think")  # Ollama: true | false | "low" | "medium" | "high"
    if effort is None and think is not None:
        if think is False:
            effort = "none"
        elif think is not True:
            effort = think
    if effort is None:
        return None
    if not isinstance(effort, str) or effort.lower() not in EFFORT_PRESETS:
        raise bad_request(
            f"reasoning_effort must be one of {', '.join(EFFORT_PRESETS)}.", "reasoning_effort"
        )
    return effort.lower()


def _budget(value: Any, param: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_BUDGET:
        raise bad_request(f"`{param}` must be a whole number from 0 to {MAX_BUDGET:,}.", param)
    return value
