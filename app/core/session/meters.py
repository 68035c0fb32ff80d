"""What the meters show: where the context window goes, and where the memory goes.

Context is split by what the tokens are (system, code-folder files, earlier turns, the new message,
thinking, answer)
so a user sees what fills the window; memory shows the model and its KV cache (computed from the
model's parameters) next to what the process really holds and what the machine has left.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import psutil

from app.core.llm.chat_template import Message
from app.core.llm.engine import ModelInfo, ReplyStats
from app.core.workspace.context import FILES_HEADER


@dataclass(frozen=True, slots=True)
class ContextUsage:
    n_ctx: int
    system: int = 0
    files: int = 0  # a code folder's context (ticked files and the map)
    history: int = 0
    message: int = 0  # the new user turn
    template: int = 0  # role markers and other template text around the messages
    thinking: int = 0
    answer: int = 0

    @property
    def used(self) -> int:
        return sum(n for _name, n in self.parts())

    @property
    def fraction(self) -> float:
        return self.used / self.n_ctx if self.n_ctx else 0.0

    def parts(self) -> list[tuple[str, int]]:
        return [
            ("system", self.system),
            ("files", self.files),
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
    files: int = 0


def prompt_breakdown(
    count_tokens: Callable[[str], int], messages: Sequence[Message]
) -> PromptBreakdown:
    system = files = 0
    for m in messages:
        if m["role"] != "system":
            continue
        content = m["content"]
        start = content.find(FILES_HEADER)
        if start >= 0:  # a code folder's context, after any instructions
            files += count_tokens(content[start:])
            content = content[:start]
        system += count_tokens(content) if content.strip() else 0
    turns = [m for m in messages if m["role"] != "system"]
    message = count_tokens(turns[-1]["content"]) if turns else 0
    history = sum(count_tokens(m["content"]) for m in turns[:-1])
    return PromptBreakdown(system, history, message, files)


def context_usage(breakdown: PromptBreakdown, stats: ReplyStats, n_ctx: int) -> ContextUsage:
    """Split a reply's window: the prompt by message role, then what was generated."""
    system, history, message = breakdown.system, breakdown.history, breakdown.message
    files = breakdown.files
    template = max(0, stats.prompt_tokens - system - files - history - message)
    return ContextUsage(
        n_ctx=n_ctx,
        system=system,
        files=files,
        history=history,
        message=message,
        template=template,
        thinking=stats.thinking_tokens,
        answer=stats.answer_tokens,
    )


@dataclass(frozen=True, slots=True)
class GpuMemory:
    name: str
    free_bytes: int
    total_bytes: int


@dataclass(frozen=True, slots=True)
class MemoryUsage:
    model_bytes: int
    kv_bytes: int
    rss_bytes: int
    free_ram_bytes: int
    total_ram_bytes: int
    gpus: tuple[GpuMemory, ...] = ()  # as llama.cpp sees them; empty on a CPU-only machine


def gpu_memory() -> tuple[GpuMemory, ...]:
    """Free and total memory of each GPU llama.cpp can use (ggml's device query)."""
    from app.core.llm.devices import list_devices

    return tuple(
        GpuMemory(d.description or d.name, d.free_bytes, d.total_bytes)
        for d in list_devices()
        if d.is_gpu
    )


def memory_usage(info: ModelInfo | None, with_gpus: bool = True) -> MemoryUsage:
    vm = psutil.virtual_memory()
    return MemoryUsage(
        model_bytes=info.weights_bytes if info else 0,
        kv_bytes=info.kv_bytes if info else 0,
        rss_bytes=psutil.Process().memory_info().rss,
        free_ram_bytes=vm.available,
        total_ram_bytes=vm.total,
        gpus=gpu_memory() if with_gpus else (),
    )


