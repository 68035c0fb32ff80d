"""Run one prompt under two thinking policies and compare what pruning saved and what it cost.

Both runs use the same loaded model, the same seed and the same sampler, one after the other, each
starting from an empty KV cache so neither gets the other's prompt for free. With identical
policies the two replies are identical, so every difference is the policy's doing.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.core.llm.chat_template import Message
from app.core.llm.engine import CancelToken, GenerationEvent, ReplyStats, SamplingParams
from app.core.llm.engine_types import ChatEngine
from app.core.thinking.parser import Channel
from app.core.thinking.policy import ThinkingPolicy

DEFAULT_SEED = 1234


@dataclass(slots=True)
class CompareSide:
    policy: ThinkingPolicy
    thinking: str = ""
    answer: str = ""
    stats: ReplyStats = field(default_factory=ReplyStats)


@dataclass(slots=True)
class Comparison:
    prompt: str
    seed: int
    a: CompareSide
    b: CompareSide

    def answer_diff(self) -> list[str]:
        return list(
            difflib.unified_diff(
                self.a.answer.splitlines(),
                self.b.answer.splitlines(),
                fromfile=self.a.policy.name,
                tofile=self.b.policy.name,
                lineterm="",
            )
        )

    def rows(self) -> list[tuple[str, str, str, str]]:
        """(measure, A, B, change) for the table every front end shows."""
        sa, sb = self.a.stats, self.b.stats

        def change(x: float, y: float) -> str:
            return f"{(y - x) / x:+.0%}" if x else ("0%" if y == x else "n/a")

        measures: list[tuple[str, float, float, str]] = [
            ("thinking tokens", sa.thinking_tokens, sb.thinking_tokens, "{:.0f}"),
            ("answer tokens", sa.answer_tokens, sb.answer_tokens, "{:.0f}"),
            ("total tokens", sa.generated_tokens, sb.generated_tokens, "{:.0f}"),
            ("time (s)", sa.total_seconds, sb.total_seconds, "{:.2f}"),
            ("decode tokens/s", sa.decode_tokens_per_s, sb.decode_tokens_per_s, "{:.1f}"),
            ("suppressed", sa.suppressed_tokens, sb.suppressed_tokens, "{:.0f}"),
            ("forced", sa.forced_tokens, sb.forced_tokens, "{:.0f}"),
            ("loops broken", sa.loops_broken, sb.loops_broken, "{:.0f}"),
        ]
        return [(name, fmt.format(x), fmt.format(y), change(x, y)) for name, x, y, fmt in measures]

    def to_dict(self) -> dict[str, Any]:
        def side(s: CompareSide) -> dict[str, Any]:
            return {
                "policy": s.policy.to_dict(),
                "thinking": s.thinking,
                "answer": s.answer,
                "stats": s.stats.to_dict(),
            }

        return {
            "prompt": self.prompt,
            "seed": self.seed,
            "a": side(self.a),
            "b": side(self.b),
            "answer_diff": self.answer_diff(),
            "identical_answers": self.a.answer == self.b.answer,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=2)

    def to_markdown(self) -> str:
        a, b = self.a.policy.name, self.b.policy.name
        lines = [
            "# LeanCoder comparison",
            "",
            f"Prompt: {self.prompt}",
            f"Seed: {self.seed}",
            "",
            f"| measure | {a} | {b} | change |",
            "|---|---|---|---|",
        ]
        lines += [f"| {m} | {x} | {y} | {c} |" for m, x, y, c in self.rows()]
        for side in (self.a, self.b):
            lines += ["", f"## {side.policy.name}", "", "<details><summary>Thinking</summary>", ""]
            lines += [side.thinking or "(none)", "", "</details>", "", side.answer or "(no answer)"]
        diff = self.answer_diff()
        lines += ["", "## Answer diff", "", "```diff", *(diff or ["(identical)"]), "```", ""]
        return "\n".join(lines)


def run_comparison(
    engine: ChatEngine,
    messages: Sequence[Message],
    policy_a: ThinkingPolicy,
    policy_b: ThinkingPolicy,
    sampling: SamplingParams | None = None,
    *,
    force_thinking: bool = False,
    cancel: CancelToken | None = None,
    on_event: Callable[[str, GenerationEvent], None] | None = None,
) -> Comparison:
    """Run A then B; `on_event("a"|"b", event)` streams both for a live view."""
    sampling = sampling or SamplingParams(seed=DEFAULT_SEED)
    if sampling.seed is None:
        sampling = dataclasses.replace(sampling, seed=DEFAULT_SEED)
    prompt = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
    sides = {"a": CompareSide(policy_a), "b": CompareSide(policy_b)}
    for key, side in sides.items():
        if cancel is not None and cancel.is_set():
            break
        engine.reset_cache()
        thinking: list[str] = []
        answer: list[str] = []
        for event in engine.generate(
            messages, sampling, cancel, policy=side.policy, force_thinking=force_thinking
        ):
            if on_event is not None:
                on_event(key, event)
            if event.kind == "text":
                (thinking if event.channel is Channel.THINKING else answer).append(event.text)
            elif event.kind == "done":
                side.stats = event.stats
        side.thinking, side.answer = "".join(thinking), "".join(answer)
    assert sampling.seed is not None
    return Comparison(prompt, sampling.seed, sides["a"], sides["b"])
