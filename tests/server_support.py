"""A real LeanCoder API server on loopback for the server tests: uvicorn on a free port, over a
real engine on a real serialized worker (loaded with the starter, or empty for tests that never
reach the model)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import openai

from app.core.llm.engine import Engine, LoadOptions
from app.core.llm.worker import SerialWorker
from app.server.app import create_app
from app.server.config import STREAM_INTERVAL_MS, ServerConfig
from app.server.model_service import ModelService
from app.server.runner import ServerThread


@dataclass
class RunningServer:
    url: str  # .../v1
    service: ModelService
    thread: ServerThread
    # Every client made here, closed with the server (a client left to the garbage collector
    # leaves its sockets unclosed: a ResourceWarning, an error under pytest's settings).
    clients: list[openai.OpenAI] = field(default_factory=list)

    @property
    def base(self) -> str:
        return self.url.removesuffix("/v1")

    def client(self, api_key: str = "unused", **kwargs: object) -> openai.OpenAI:
        # No retries: a 503 must reach the test, not be repeated by the SDK.
        client = openai.OpenAI(base_url=self.url, api_key=api_key, max_retries=0, **kwargs)  # type: ignore[arg-type]
        self.clients.append(client)
        return client


@contextlib.contextmanager
def running_server(service: ModelService, config: ServerConfig) -> Iterator[RunningServer]:
    thread = ServerThread(create_app(service, config), config)
    url = thread.start()
    server = RunningServer(url, service, thread)
    try:
        yield server
    finally:
        for client in server.clients:
            client.close()
        assert thread.stop(), "the API server did not stop"


@contextlib.contextmanager
def model_service(
    model: Path | None,
    n_ctx: int = 1024,
    stream_interval_s: float = STREAM_INTERVAL_MS / 1000,
    n_threads: int | None = None,
) -> Iterator[ModelService]:
    """A service on its own worker; the starter loaded on that worker when `model` is given.

    Streams are paced as `leancoder serve` paces them by default."""
    engine = Engine()
    worker = SerialWorker("test-api-model")
    if model is not None:
        worker.call(engine.load, model, LoadOptions(n_ctx=n_ctx, n_threads=n_threads)).result()
    try:
        yield ModelService(engine, worker, stream_interval_s=stream_interval_s)
    finally:
        worker.call(engine.unload).result()
        assert worker.shutdown(timeout=30)


class BlockedWorker:
    """Scripted slow work (not a model reply): a job that holds the model worker until released,
    so requests pile up in the queue behind it."""

    def __init__(self, worker: SerialWorker) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.future = worker.call(self._hold)

    def _hold(self) -> None:
        self.started.set()
        self.release.wait(120)
