"""The one model behind the API: a bounded queue in front of the serialized model worker.

One generation runs at a time (llama.cpp's context is single-threaded; see
app.core.llm.worker); at most `queue_limit` requests wait behind it, and one more is refused
(`QueueFull`, a 503 with Retry-After) rather than held for minutes. Every request has its own
cancel flag, checked by the engine once per token: a client that disconnects stops its generation
within one token, and one still waiting leaves the queue without touching the model.

Events go from the worker thread to the request's asyncio task through a `ReplyBuffer`: text is
merged while the client has not read it, and the worker never waits for a client. When a client
stops reading and its unread text passes `max_pending_chars`, the client is dropped: its
generation is cancelled and the request ends (a slow client costs its own reply, never the
model's time for others).

`ServerActivity` is the observable state a window shows: busy, waiting, requests served, the
client being served (its User-Agent). Listeners are called on the worker or server thread; a GUI
marshals them to its own thread.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass

from app.core.llm.engine import Engine
from app.core.llm.engine_types import GenerationEvent, ReplyStats
from app.core.llm.worker import SerialWorker
from app.server.config import RETRY_AFTER_S
from app.server.errors import ApiError

log = logging.getLogger(__name__)

# What a request runs on the worker thread: the engine's event stream under a cancel flag.
Generation = Callable[[Engine, threading.Event], Iterator[GenerationEvent]]


@dataclass(frozen=True, slots=True)
class ActivitySnapshot:
    busy: bool = False
    waiting: int = 0
    served: int = 0
    client: str = ""  # the User-Agent of the request being served ("" when idle)
    last_reply: ReplyStats | None = None  # the statistics of the last reply that ended
    # Tokens the model still produced after the last reply was cancelled (its client left, a
    # stop string matched): the engine checks the flag per token, so 0 or 1.
    tokens_after_cancel: int = 0


class ServerActivity:
    """Busy/waiting/served/client, with listeners told of every change."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state = ActivitySnapshot()
        self._listeners: list[Callable[[ActivitySnapshot], None]] = []

    def snapshot(self) -> ActivitySnapshot:
        with self._lock:
            return self._state

    def subscribe(self, listener: Callable[[ActivitySnapshot], None]) -> Callable[[], None]:
        """Call `listener(snapshot)` on every change; returns the function that unsubscribes."""
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    def _change(self, update: Callable[[ActivitySnapshot], ActivitySnapshot]) -> None:
        with self._lock:
            self._state = state = update(self._state)
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(state)
            except Exception:  # a broken display must not break serving
                log.exception("a server activity listener failed")


class ReplyBuffer:
    """Events from the worker thread to one request's asyncio task, merged while unread.

    With a stream interval the reader takes at most one batch per interval (the first at once):
    every batch becomes an SSE write that the server's loop and the client each spend about half
    a millisecond of CPU on, and where llama.cpp's threads fill every core that time comes out of
    decoding (bench/server_overhead.py). While the reader paces itself the worker never wakes it;
    the reply's end ("done", or the buffer's end) wakes it at once.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        cancel: threading.Event,
        limit: int,
        interval_s: float = 0.0,
    ) -> None:
        self._loop = loop
        self._cancel = cancel
        self._limit = limit
        self._interval_s = interval_s
        self._lock = threading.Lock()
        self._events: list[GenerationEvent] = []
        self._pending_chars = 0
        self._ended = False
        self.error: BaseException | None = None
        self.overflowed = False
        self._wake = asyncio.Event()
        self._wake_due = False  # the reader will look without a wake-up: none to send
        self._handed_at: float | None = None  # loop time the reader took its last batch
        self._ending = False  # "done" is in, or the buffer ended: no more pacing

    # -- the worker thread ----------------------------------------------------------------------

    def push(self, event: GenerationEvent) -> None:
        with self._lock:
            last = self._events[-1] if self._events else None
            if (
                last is not None
                and event.kind == "text"
                and last.kind == "text"
                and last.channel is event.channel
            ):
                self._events[-1] = dataclasses.replace(last, text=last.text + event.text)
            else:
                self._events.append(event)
            self._pending_chars += len(event.text)
            if self._pending_chars > self._limit and not self.overflowed:
                self.overflowed = True
                self._cancel.set()  # the client stopped reading: drop it, free the model
            # One wake-up per batch the reader takes, not one per token: each costs the loop a
            # self-pipe write and a turn, on the cores llama.cpp decodes on.
            due, self._wake_due = self._wake_due, True
            self._ending = self._ending or event.kind == "done"
        if not due or self._ending:
            self._notify()

    def end(self, error: BaseException | None = None) -> None:
        with self._lock:
            self._ended = True
            self._ending = True
            self.error = error
        self._notify()

    def _notify(self) -> None:
        try:
            self._loop.call_soon_threadsafe(self._wake.set)
        except RuntimeError:  # the server's loop is gone: nobody will read this reply
            self._cancel.set()

    # -- the request's task ---------------------------------------------------------------------

    async def next_batch(self) -> list[GenerationEvent] | None:
        """The events since the last call, waiting for one; None once the reply has ended."""
        await self._pace()
        while True:
            with self._lock:
                events, self._events = self._events, []
                self._pending_chars = 0
                ended = self._ended
                self._wake.clear()
                # Pacing, the reader comes back by itself after a batch: no wake-up needed.
                self._wake_due = bool(events) and self._interval_s > 0
            if events:
                self._handed_at = self._loop.time()
                return events
            if ended:
                return None
            await self._wake.wait()

    async def _pace(self) -> None:
        if self._handed_at is None or self._interval_s <= 0:
            return
        deadline = self._handed_at + self._interval_s
        # A wake-up sent before the last batch was taken may still arrive: only the deadline
        # or the reply's end stops the wait.
        while not self._ending and (remaining := deadline - self._loop.time()) > 0:
            timer = self._loop.call_later(remaining, self._wake.set)
            try:
                await self._wake.wait()
            finally:
                timer.cancel()
            self._wake.clear()


@dataclass(slots=True)
class Ticket:
    """One request's place in the queue: its cancel flag, its buffer and its worker job."""

    cancel: threading.Event
    buffer: ReplyBuffer
    future: Future[None] | None = None


class ModelService:
    """The engine on its worker, shared by every request (and by the window, when it owns them)."""

    def __init__(
        self,
        engine: Engine,
        worker: SerialWorker,
        *,
        queue_limit: int = 16,
        max_pending_chars: int = 1024 * 1024,
        stream_interval_s: float = 0.0,
        model_id: str | None = None,
    ) -> None:
        self.engine = engine
        self.stream_interval_s = stream_interval_s
        self.worker = worker
        self.queue_limit = queue_limit
        self.max_pending_chars = max_pending_chars
        self._model_id = model_id
        self.activity = ServerActivity()
        self._lock = threading.Lock()
        self._waiting = 0

    @property
    def model_id(self) -> str:
        """The id clients name the model by: the file's stem unless one was given."""
        if self._model_id:
            return self._model_id
        info = self.engine.info
        return info.path.stem if info is not None else "none"

    def start(self, generation: Generation, client: str) -> Ticket:
        """Queue a generation; QueueFull-as-ApiError(503) when `queue_limit` already wait."""
        if not self.engine.loaded:
            raise ApiError(503, "No model is loaded yet.", code="model_not_loaded",
                           headers={"Retry-After": str(RETRY_AFTER_S)})  # fmt: skip
        with self._lock:
            if self._waiting >= self.queue_limit:
                raise ApiError(
                    503,
                    f"The model is busy and {self._waiting} requests are waiting; retry shortly.",
                    code="queue_full",
                    headers={"Retry-After": str(RETRY_AFTER_S)},
                )
            self._waiting += 1
            waiting = self._waiting
        self.activity._change(lambda s: dataclasses.replace(s, waiting=waiting))
        cancel = threading.Event()
        buffer = ReplyBuffer(asyncio.get_running_loop(), cancel, self.max_pending_chars,
                             self.stream_interval_s)  # fmt: skip
        ticket = Ticket(cancel, buffer)
        ticket.future = self.worker.call(self._run, ticket, generation, client)
        return ticket

    def cancel(self, ticket: Ticket) -> None:
        """Stop a request: a waiting one leaves the queue, a running one stops at its next token."""
        ticket.cancel.set()
        future = ticket.future  # cancel() is True again for a cancelled future: count it once
        if future is not None and not future.cancelled() and future.cancel():  # never ran
            waiting = self._left_queue()
            self.activity._change(lambda s: dataclasses.replace(s, waiting=waiting))
            ticket.buffer.end()

    def _left_queue(self) -> int:
        with self._lock:
            self._waiting -= 1
            waiting = self._waiting
        return waiting

    def _run(self, ticket: Ticket, generation: Generation, client: str) -> None:
        waiting = self._left_queue()
        if ticket.cancel.is_set():
            self.activity._change(lambda s: dataclasses.replace(s, waiting=waiting))
            ticket.buffer.end()
            return
        self.activity._change(
            lambda s: dataclasses.replace(s, busy=True, waiting=waiting, client=client)
        )
        error: BaseException | None = None
        last: ReplyStats | None = None
        at_cancel: int | None = None  # tokens generated when the cancel flag was first seen
        try:
            for event in generation(self.engine, ticket.cancel):
                if at_cancel is None and ticket.cancel.is_set():
                    at_cancel = event.stats.generated_tokens
                last = event.stats
                ticket.buffer.push(event)
        except Exception as exc:  # reported to the client by the route; bugs are logged there
            error = exc
        finally:
            ticket.buffer.end(error)
            after = last.generated_tokens - at_cancel if last and at_cancel is not None else 0
            if at_cancel is not None:
                log.info("reply cancelled; %d more token(s) after the cancel", after)
            self.activity._change(lambda s: dataclasses.replace(
                s, busy=False, client="", served=s.served + 1, last_reply=last,
                tokens_after_cancel=after))  # fmt: skip
