"""One conversation, the same for every front end: the window, `leancoder ask` and `edit`, Compare.

A `ChatSession` owns a conversation's turns, its code folder and selection, the thinking policy and
whether edits are wanted. It builds the exact messages sent to the model (folder context with the
edit instructions, the user's system prompt, the history), streams a reply as one stream of
`SessionEvent`s (text, thinking opening and closing, then `done` or `failed`: an error is an
event, not a separate channel), saves the reply while it streams on its own clock (never driven by
how often a view repaints), and runs the edit feedback loop: blocks that did not apply go back to
the model at most `MAX_RETRIES` times, then the surviving proposal is an event of its own.

`send` is a plain generator: the CLI iterates it directly, the window runs it on the model worker
and forwards its events to the GUI thread. Nothing here knows which front end is asking.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from app.core.edits import ProposalBuilder, choose_edit_format, edit_system_prompt, feedback_message
from app.core.edits.feedback import MAX_RETRIES
from app.core.edits.proposal import Proposal
from app.core.errors import LeanCoderError
from app.core.llm.chat_template import Message
from app.core.llm.engine import CancelToken, GenerationEvent, ReplyStats, SamplingParams
from app.core.llm.engine_types import ChatEngine
from app.core.session.meters import PromptBreakdown, prompt_breakdown
from app.core.storage import chat_store
from app.core.storage.chat_store import ChatStore
from app.core.thinking.parser import Channel
from app.core.thinking.policy import UNPRUNED, ThinkingPolicy
from app.core.workspace.context import WorkspaceContext, build_context

log = logging.getLogger(__name__)

CONTEXT_SHARE = 0.5  # of the model's context window for the folder; the rest for the conversation
FEEDBACK_PREFIX = "[LeanCoder] "  # marks the app's own messages about edits that did not apply
SAVE_INTERVAL_S = 0.25  # a crash loses at most this much of a streaming reply
TITLE_LENGTH = 60

SessionEventKind = Literal[
    "user",  # a user turn was added (typed, or the app's feedback): `text`
    "context",  # the folder context built for this request: `context`
    "prompt",  # what the prompt is made of, before the first token: `breakdown`
    "reply_start",  # an assistant turn begins
    "text",  # a piece of the reply on `channel`
    "thinking_open",
    "thinking_close",
    "done",  # the reply ended (`stats.finish_reason` says how, "cancelled" included)
    "failed",  # the reply failed: `text` is a message for the user
    "feedback",  # blocks did not apply; `text` goes back to the model as round `round`
    "proposal",  # the edits to review: `proposal`
    "no_edits",  # edits were asked for and the reply (`text`) had none: `proposal` is empty
]


@dataclass(frozen=True, slots=True)
class SessionEvent:
    kind: SessionEventKind
    text: str = ""
    channel: Channel = Channel.ANSWER
    stats: ReplyStats | None = None
    context: WorkspaceContext | None = None
    breakdown: PromptBreakdown | None = None
    proposal: Proposal | None = None
    round: int = 0


@dataclass(frozen=True, slots=True)
class FolderChoice:
    """A code folder as context: the scan's files, those sent in full, secrets the user allowed."""

    root: Path
    files: tuple[str, ...]
    selected: tuple[str, ...] = ()
    allow_secrets: tuple[str, ...] = ()


@dataclass(slots=True)
class Turn:
    role: str
    content: str
    thinking: str = ""
    status: str = chat_store.COMPLETE
    message_id: int | None = None
    stats: dict[str, Any] = field(default_factory=dict)


class ChatSession:
    """One conversation. With a `store`, every turn is saved (a reply while it streams)."""

    def __init__(self, store: ChatStore | None = None, chat_id: int | None = None) -> None:
        self.store = store
        self.chat_id = chat_id
        self.turns: list[Turn] = []
        self.system_prompt: str | None = None
        self.folder: FolderChoice | None = None
        self.propose_edits = False
        self.policy: ThinkingPolicy = UNPRUNED
        self.force_thinking = False
        self.model_name = ""
        if store is not None and chat_id is not None:
            self.turns = [
                Turn(m.role, m.content, m.thinking, m.status, m.id, m.stats)
                for m in store.messages(chat_id)
            ]

    # -- the prompt ----------------------------------------------------------------------------

    def history(self) -> list[Message]:
        """What the model sees of the turns: roles and answers. Old thinking stays out, as the
        templates themselves do; a reply stopped before it said anything is left out."""
        return [
            {"role": t.role, "content": t.content}
            for t in self.turns
            if not (t.role == "assistant" and not t.content.strip())
        ]

    def build_messages(
        self, engine: ChatEngine, history: Sequence[Message] | None = None
    ) -> tuple[list[Message], WorkspaceContext | None]:
        """The exact messages for the next request, and the folder context they carry."""
        info = engine.info
        if info is None:
            raise LeanCoderError("No model is loaded.")
        messages: list[Message] = []
        context = None
        if self.folder is not None:
            context = build_context(
                self.folder.root,
                self.folder.files,
                self.folder.selected,
                int(info.n_ctx * CONTEXT_SHARE),
                engine.count_tokens,
                allow_secrets=self.folder.allow_secrets,
            )
            parts = [context.text]
            if self.propose_edits:
                sizes = [_size(self.folder.root / item.path) for item in context.included]
                parts.insert(0, edit_system_prompt(choose_edit_format(info.n_params, sizes)))
            messages.append({"role": "system", "content": "\n\n".join(parts)})
        if self.system_prompt:
            messages.append({"role": "system", "content": self.system_prompt})
        messages.extend(self.history() if history is None else history)
        return messages, context

    # -- a request -----------------------------------------------------------------------------

    def send(
        self,
        engine: ChatEngine,
        text: str,
        sampling: SamplingParams | None = None,
        *,
        cancel: CancelToken | None = None,
        stop_thinking: CancelToken | None = None,
    ) -> Iterator[SessionEvent]:
        """Add a user turn and stream the reply; in edit mode, run the feedback loop after it."""
        yield self._add_user(text)
        builder: ProposalBuilder | None = None
        round_number = 0
        while True:
            try:
                messages, context = self.build_messages(engine)
                if context is not None:
                    yield SessionEvent("context", context=context)
                yield SessionEvent(
                    "prompt", breakdown=prompt_breakdown(engine.count_tokens, messages)
                )
            except LeanCoderError as exc:
                yield SessionEvent("failed", text=str(exc))
                return
            reply = yield from self._stream_reply(engine, messages, sampling, cancel, stop_thinking)
            if reply.status != chat_store.COMPLETE or not self.propose_edits or not self.folder:
                return
            builder = builder or ProposalBuilder(self.folder.root)
            feedback = feedback_message(builder.add_reply(reply.content, round_number))
            if feedback is not None and round_number < MAX_RETRIES:
                round_number += 1
                yield SessionEvent("feedback", text=feedback, round=round_number)
                yield self._add_user(FEEDBACK_PREFIX + feedback)
                continue
            proposal = builder.build()
            if proposal.files or proposal.blocks:
                yield SessionEvent("proposal", proposal=proposal, round=round_number)
            else:
                yield SessionEvent(
                    "no_edits", text=reply.content, proposal=proposal, round=round_number
                )
            return

    def _add_user(self, text: str) -> SessionEvent:
        turn = Turn("user", text)
        if self.store is not None:
            if self.chat_id is None:
                self.chat_id = self.store.create_chat(text.splitlines()[0][:TITLE_LENGTH])
            turn.message_id = self.store.add_message(self.chat_id, "user", text)
        self.turns.append(turn)
        return SessionEvent("user", text=text)

    def _stream_reply(
        self,
        engine: ChatEngine,
        messages: list[Message],
        sampling: SamplingParams | None,
        cancel: CancelToken | None,
        stop_thinking: CancelToken | None,
    ) -> Generator[SessionEvent, None, Turn]:
        turn = Turn("assistant", "", status=chat_store.STREAMING)
        self.turns.append(turn)
        saver = _ReplySaver(self, turn)
        yield SessionEvent("reply_start")
        answer: list[str] = []
        thinking: list[str] = []
        try:
            events = engine.generate(
                messages,
                sampling,
                cancel,
                policy=self.policy,
                stop_thinking=stop_thinking,
                force_thinking=self.force_thinking,
            )
            for event in events:
                if event.kind == "done":
                    turn.content, turn.thinking = "".join(answer), "".join(thinking)
                    cancelled = event.stats.finish_reason == "cancelled"
                    turn.status = chat_store.CANCELLED if cancelled else chat_store.COMPLETE
                    turn.stats = event.stats.to_dict()
                    saver.save(final=True)
                    yield SessionEvent("done", stats=event.stats)
                    # Run the engine's generator out: after "done" it puts the reply's last
                    # tokens into the KV cache (DecodeLoop._settle) for the next turn.
                    try:
                        for _ in events:
                            pass
                    except Exception:  # the reply is saved and shown: only the cache is lost
                        log.warning("settling the KV cache after a reply failed", exc_info=True)
                    return turn
                if event.kind == "text":
                    (thinking if event.channel is Channel.THINKING else answer).append(event.text)
                    if saver.due():
                        turn.content, turn.thinking = "".join(answer), "".join(thinking)
                        saver.save()
                yield _from_engine(event)
        except LeanCoderError as exc:
            message = str(exc)
        except Exception as exc:  # the front end must hear about it, and the log keeps it
            log.exception("generation failed")
            message = f"Generation failed unexpectedly: {exc}"
        else:
            message = "The reply ended without finishing."
        turn.content, turn.thinking = "".join(answer), "".join(thinking)
        turn.status = chat_store.FAILED
        saver.save(final=True)
        yield SessionEvent("failed", text=message)
        return turn


class _ReplySaver:
    """Saves a streaming reply at most every SAVE_INTERVAL_S, and once more at its end."""

    def __init__(self, session: ChatSession, turn: Turn) -> None:
        self._session, self._turn = session, turn
        self._last = time.monotonic()
        store = session.store
        if store is not None and session.chat_id is not None:
            meta = {"model": session.model_name, "policy": session.policy.to_dict()}
            turn.message_id = store.add_message(
                session.chat_id, "assistant", status=chat_store.STREAMING, meta=meta
            )

    def due(self) -> bool:
        return time.monotonic() - self._last >= SAVE_INTERVAL_S

    def save(self, final: bool = False) -> None:
        self._last = time.monotonic()
        store, turn = self._session.store, self._turn
        if store is None or turn.message_id is None:
            return
        store.update_message(
            turn.message_id,
            content=turn.content,
            thinking=turn.thinking,
            status=turn.status if final else None,
            stats=turn.stats if final and turn.stats else None,
        )


def _from_engine(event: GenerationEvent) -> SessionEvent:
    return SessionEvent(event.kind, text=event.text, channel=event.channel, stats=event.stats)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
