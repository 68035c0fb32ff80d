"""Scripted answers on the real model, for edit control-flow tests (named as such: not its words).

The 135M starter almost never writes an edit block, so a test of the edit path (apply, undo,
follow-ups for blocks that did not apply) cannot wait for one. `ScriptedAnswers` patches
`Engine.generate` for every engine (the CLI's, the window's on its model worker): each call runs
the real model on the real messages, cut at a few tokens, and its answer text is replaced by the
next scripted reply, streamed just before the real `done` event. Prompts are recorded.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from app.core.llm.chat_template import Message
from app.core.llm.engine import Engine, GenerationEvent, SamplingParams
from app.core.thinking.parser import Channel


class ScriptedAnswers:
    def __init__(
        self, monkeypatch: pytest.MonkeyPatch, replies: Sequence[str], real_tokens: int = 8
    ) -> None:
        self.replies = list(replies)
        self.prompts: list[list[Message]] = []
        self._lock = threading.Lock()
        real_generate = Engine.generate
        script = self

        def generate(
            engine: Engine,
            messages: Sequence[Message],
            sampling: SamplingParams | None = None,
            *args: Any,
            **kwargs: Any,
        ) -> Iterator[GenerationEvent]:
            with script._lock:
                script.prompts.append(list(messages))
                reply = script.replies.pop(0)
            short = dataclasses.replace(sampling or SamplingParams(), max_tokens=real_tokens)
            for event in real_generate(engine, messages, short, *args, **kwargs):
                if event.kind == "text" and event.channel is Channel.ANSWER:
                    continue  # the model's own words, replaced by the script
                if event.kind == "done":
                    yield GenerationEvent("text", Channel.ANSWER, reply, event.stats)
                yield event

        monkeypatch.setattr(Engine, "generate", generate)

    @property
    def asked(self) -> int:
        return len(self.prompts)
