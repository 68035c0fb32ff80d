"""The remote engine against llama.cpp's own llama-server (the C++ peer), where it has been built
(bench/vs_llama_cpp.py builds it from the llama.cpp sources in llama-cpp-python's sdist into the
user cache; about 13 minutes, so the test is skipped on a machine that has not built it).

llama-server publishes what llama-cpp-python's server does not: `/props` (n_ctx, the chat
template), `/tokenize`, per-request `timings`, and usage on streams; the engine must find and use
each of them."""

from __future__ import annotations

import importlib.metadata
import threading
from collections.abc import Iterator
from pathlib import Path

import platformdirs
import pytest

from app.core.llm.engine_types import SamplingParams
from app.core.remote.endpoint import parse_endpoint
from app.core.remote.engine import RemoteEngine, RemoteOptions
from app.core.thinking.parser import Channel
from app.core.thinking.policy import ThinkingPolicy
from tests.remote_fault_server import unused_port
from tests.server_process import healthy_server

pytestmark = pytest.mark.model
VERSION = importlib.metadata.version("llama-cpp-python")
BINARY = (
    Path(platformdirs.user_cache_dir("leancoder")) / f"llama.cpp-{VERSION}" / "build" / "bin"
    / "llama-server"
)  # fmt: skip
QUESTION = [{"role": "user", "content": "Explain why the sky is blue."}]


@pytest.fixture(scope="module")
def server_url(starter_path: Path) -> Iterator[str]:
    if not BINARY.is_file():
        pytest.skip(f"llama-server is not built here ({BINARY}); bench/vs_llama_cpp.py builds it")
    port = unused_port()
    command = [str(BINARY), "-m", str(starter_path), "--port", str(port), "--host", "127.0.0.1",
               "-c", "2048", "-t", "1", "--alias", "starter"]  # fmt: skip
    with healthy_server(command, port, "llama-server", 120):
        yield f"http://127.0.0.1:{port}/v1#starter"


@pytest.fixture
def remote(server_url: str, data_dir: Path) -> Iterator[RemoteEngine]:
    engine = RemoteEngine()
    engine.connect(parse_endpoint(server_url), RemoteOptions())
    yield engine
    engine.unload()


def test_llama_server_publishes_context_template_and_tokenizer(remote: RemoteEngine) -> None:
    assert remote.caps is not None and remote.info is not None
    assert remote.caps.kind == "llama-server" and remote.caps.tokenize == "llama-server"
    assert remote.info.n_ctx == 2048  # from /props, no --ctx given
    assert remote.caps.chat_template and "im_start" in remote.caps.chat_template
    assert remote.info.template_name.startswith("published by")
    assert not any("does not publish its context" in n for n in remote.info.notes)


def test_budget_ban_and_meters_over_llama_server(remote: RemoteEngine) -> None:
    words = ("the", "a", "and", "is", "of")
    banned = {m.text for m in remote.filler_matches(words)}
    assert {" the", " and"} <= banned
    policy = ThinkingPolicy(name="ban + budget 24", suppress_fillers=True, filler_words=words,
                            budget=24)  # fmt: skip
    stop = threading.Event()
    sampling = SamplingParams(temperature=0.7, seed=5, max_tokens=100)
    events = list(remote.generate(QUESTION, sampling, policy=policy, stop_thinking=stop,
                                  force_thinking=True))  # fmt: skip
    stats = events[-1].stats
    pieces = [e.text for e in events if e.kind == "text" and e.channel is Channel.THINKING]
    assert stats.budget_hits == 1 and stats.requests >= 2
    sampled_pieces = pieces[: 24]
    assert not banned & set(sampled_pieces)
    assert stats.prompt_tokens > 0 and stats.decode_tokens_per_s > 0
    assert stats.cached_prompt_tokens >= 0
