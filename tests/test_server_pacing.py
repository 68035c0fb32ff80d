"""Streamed replies go out paced (`--stream-interval`): at most one batch per interval, the first
at once, the reply's end at once, and the same text as unpaced. The buffer is tested with a
scripted token cadence on a real event loop; the server with the real starter model and the
official `openai` client, paced and unpaced on one engine."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from app.core.llm.engine_types import GenerationEvent, ReplyStats
from app.core.thinking.parser import Channel
from app.server.config import ServerConfig
from app.server.model_service import ModelService, ReplyBuffer
from tests.server_support import model_service, running_server

INTERVAL_S = 0.5  # long beside a thread wake-up even on a loaded machine
TOKENS = 40
CADENCE_S = 0.025  # one scripted token every 25 ms: 1 s of tokens, about 2 intervals


def _paced_batches(interval_s: float) -> tuple[list[tuple[float, str]], float, float]:
    """(hand-out time, text) per batch, when the first token was pushed, when "done" was."""
    pushed: dict[str, float] = {}

    async def scenario() -> list[tuple[float, str]]:
        loop = asyncio.get_running_loop()
        buffer = ReplyBuffer(loop, threading.Event(), limit=1 << 20, interval_s=interval_s)
        stats = ReplyStats()

        def worker() -> None:  # scripted tokens at a fixed cadence, then done, then the end
            for i in range(TOKENS):
                pushed.setdefault("first", time.monotonic())
                buffer.push(GenerationEvent("text", Channel.ANSWER, f"t{i} ", stats))
                time.sleep(CADENCE_S)
            pushed["done"] = time.monotonic()
            buffer.push(GenerationEvent("done", Channel.ANSWER, "", stats))
            time.sleep(interval_s * 2)  # the engine settling its cache: the reader must not wait
            buffer.end()

        thread = threading.Thread(target=worker)
        thread.start()
        batches: list[tuple[float, str]] = []
        while (batch := await buffer.next_batch()) is not None:
            text = "".join(e.text for e in batch) + ("<done>" if batch[-1].kind == "done" else "")
            batches.append((time.monotonic(), text))
            if batch[-1].kind == "done":
                break  # as the server does: the response ends at done
        thread.join(10)
        return batches

    batches = asyncio.run(scenario())
    return batches, pushed["first"], pushed["done"]


def test_a_paced_buffer_hands_out_one_batch_per_interval() -> None:
    batches, first_push, done_push = _paced_batches(INTERVAL_S)
    text = "".join(t for _, t in batches)
    assert text == "".join(f"t{i} " for i in range(TOKENS)) + "<done>", "every token, in order"
    times = [at for at, _ in batches]
    assert times[0] - first_push < INTERVAL_S / 2, "the first token goes out at once"
    gaps = [b - a for a, b in itertools.pairwise(times[:-1])]  # the last is the end's own
    assert all(gap >= INTERVAL_S - 0.01 for gap in gaps), gaps
    assert len(batches) <= 2 + (done_push - first_push) / INTERVAL_S + 1
    assert times[-1] - done_push < INTERVAL_S / 2, "done goes out at once, not at the next tick"


def test_an_unpaced_buffer_hands_out_tokens_as_they_come() -> None:
    batches, _, _ = _paced_batches(0.0)
    assert "".join(t for _, t in batches).endswith("t39 <done>")
    assert len(batches) >= TOKENS // 2, "a reader that keeps up sees (nearly) every token alone"


@pytest.fixture(scope="module")
def service(starter_path: Path) -> Iterator[ModelService]:
    # Pinned threads: the two replies compared must not differ by llama.cpp's summation order
    # (automatic counts follow other programs' load).
    with model_service(starter_path, stream_interval_s=INTERVAL_S, n_threads=2) as svc:
        yield svc


def _stream(url: str) -> tuple[list[str], int]:
    client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0, timeout=120)
    pieces: list[str] = []
    tokens = 0
    try:
        stream = client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "Write a short story about a cat."}],
            stream=True, max_tokens=96, temperature=0, seed=1,
            stream_options={"include_usage": True},
        )  # fmt: skip
        for chunk in stream:
            for choice in chunk.choices:
                if choice.delta.content:
                    pieces.append(choice.delta.content)
            if chunk.usage is not None:
                tokens = chunk.usage.completion_tokens
    finally:
        client.close()
    return pieces, tokens


def test_the_server_streams_the_same_reply_in_fewer_events(service: ModelService) -> None:
    unpaced = ModelService(service.engine, service.worker, stream_interval_s=0.0)
    with running_server(unpaced, ServerConfig(port=0)) as srv:
        each, tokens = _stream(srv.url)
    with running_server(service, ServerConfig(port=0)) as srv:
        paced, paced_tokens = _stream(srv.url)
    assert tokens == paced_tokens == 96
    assert "".join(paced) == "".join(each), "pacing changes when text goes out, not the text"
    assert len(each) >= tokens * 0.8, "unpaced, the client sees about one event per token"
    # 96 tokens take over a second here even on a busy machine: a few paced events at most.
    assert len(paced) < len(each) / 2, (len(paced), len(each))
