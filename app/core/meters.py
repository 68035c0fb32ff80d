"""What the meters show: where the context window goes, and where the memory goes.

Context is split by what the tokens are (system, earlier turns, the new message, thinking, answer)
so a user sees what fills the window; memory shows the model and its KV cache (computed from the
model's parameters) next to what the process really holds and what the machine has left.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import psutil

from app.core.chat_template import Message
from app.core.engine import ModelInfo, ReplyStats


@dataclass(frozen=True, slots=True)
class ContextUsage:
    n_ctx: int
    system: int = 0
    history: int = 0
    message: int = 0  # the new user turn
    template: int = 0  # role markers and other template text around the messages
    thinking: int = 0
    answer: int = 0

    @property
    def used(self) -> int:
        return (
            self.system + self.history + self.message + self.template + self.thinking + self.answer
        )

    @property
    def fraction(self) -> float:
        return self.used / self.n_ctx if self.n_ctx else 0.0

    def parts(self) -> list[tuple[str, int]]:
        return [
            ("system", self.system),
            ("history", self.history),
            ("message", self.message),
            ("template", self.template),
            ("thinking", self.thinking),
            ("answer", self.answer),
        ]


@dataclass(frozen=True, slots=True)
class PromptBreakdown:
    """Tokens of the prompt's messages by role, counted once before a reply (model thread)."""

    system: int
    history: int
    message: int


def prompt_breakdown(
    count_tokens: Callable[[str], int], messages: Sequence[Message]
) -> PromptBreakdown:
    system = sum(count_tokens(m["content"]) for m in messages if m["role"] == "system")
    turns = [m for m in messages if m["role"] != "system"]
    message = count_tokens(turns[-1]["content"]) if turns else 0
    history = sum(count_tokens(m["content"]) for m in turns[:-1])
    return PromptBreakdown(system, history, message)


def context_usage(breakdown: PromptBreakdown, stats: ReplyStats, n_ctx: int) -> ContextUsage:
    """Split a reply's window: the prompt by message role, then what was generated."""
    system, history, message = breakdown.system, breakdown.history, breakdown.message
    template = max(0, stats.prompt_tokens - system - history - message)
    return ContextUsage(
        n_ctx=n_ctx,
        system=system,
        history=history,
        message=message,
        template=template,
        thinking=stats.thinking_tokens,
        answer=stats.answer_tokens,
    )


@dataclass(frozen=True, slots=True)
class MemoryUsage:
    model_bytes: int
    kv_bytes: int
    rss_bytes: int
    free_ram_bytes: int
    total_ram_bytes: int


def memory_usage(info: ModelInfo | None) -> MemoryUsage:
    vm = psutil.virtual_memory()
    return MemoryUsage(
        model_bytes=info.weights_bytes if info else 0,
        kv_bytes=info.kv_bytes if info else 0,
        rss_bytes=psutil.Process().memory_info().rss,
        free_ram_bytes=vm.available,
        total_ram_bytes=vm.total,
    )


def format_bytes(n: int) -> str:
    for unit, size in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"
