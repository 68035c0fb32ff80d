"""Scripted model replies for session control-flow tests (named as such: not the model's words).

`ScriptedReplies` is the real `Engine` with the real starter loaded (its context size, parameter
count and tokenizer are real, so prompts are built exactly as for the model) whose `generate`
streams the given replies in turn instead of sampling, recording every prompt it was sent.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from app.core.errors import GenerationError
from app.core.llm.chat_template import Message
from app.core.llm.engine import CancelToken, Engine, GenerationEvent, ReplyStats, SamplingParams
from app.core.thinking.parser import Channel
from app.core.thinking.policy import ThinkingPolicy

FAIL = object()  # a script entry that makes the reply fail after its first piece


class ScriptedReplies(Engine):
    def __init__(self, replies: Sequence[str | object]) -> None:
        super().__init__()
        self.replies = list(replies)
        self.prompts: list[list[Message]] = []

    def generate(  # type: ignore[override]
        self,
        messages: Sequence[Message],
        sampling: SamplingParams | None = None,
        cancel: CancelToken | None = None,
        policy: ThinkingPolicy | None = None,
        stop_thinking: CancelToken | None = None,
        force_thinking: bool = False,
    ) -> Iterator[GenerationEvent]:
        self.prompts.append([dict(m) for m in messages])  # type: ignore[misc]
        reply = self.replies.pop(0)
        stats = ReplyStats(prompt_tokens=sum(self.count_tokens(m["content"]) for m in messages))
        if reply is FAIL:
            yield GenerationEvent("text", Channel.ANSWER, "half a", stats)
            raise GenerationError("The scripted model failed mid-reply.")
        assert isinstance(reply, str)
        for piece in reply.splitlines(keepends=True):
            if cancel is not None and cancel.is_set():
                stats.finish_reason = "cancelled"
                break
            stats.answer_tokens += 1
            yield GenerationEvent("text", Channel.ANSWER, piece, stats)
        else:
            stats.finish_reason = "stop"
        yield GenerationEvent("done", Channel.ANSWER, "", stats)
