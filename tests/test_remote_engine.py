"""A remote engine against llama-cpp-python's own OpenAI-compatible server (`python -m
llama_cpp.server`, a real subprocess on loopback) serving the starter model, with an API key.

The starter has no thinking format of its own, so these tests force thinking open (`<think>`
after the rendered prompt): the server then continues inside a thinking span, which is exactly
where LeanCoder's controls act."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from app.core.llm.engine_types import GenerationEvent, SamplingParams
from app.core.remote.endpoint import RemoteAuthError, parse_endpoint
from app.core.remote.engine import RemoteEngine, RemoteOptions
from app.core.session.chat import ChatSession
from app.core.thinking.control import MAX_WORD_FINISH_TOKENS
from app.core.thinking.parser import Channel
from app.core.thinking.policy import UNPRUNED, ThinkingPolicy
from tests.remote_fault_server import unused_port

pytestmark = pytest.mark.model
API_KEY = "test-key-1234"
QUESTION = [{"role": "user", "content": "Explain why the sky is blue."}]
COMMON_WORDS = ("the", "a", "and", "is", "of", "to", "in", "it")


@pytest.fixture(scope="module")
def server_url(starter_path: Path) -> Iterator[str]:
    port = unused_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(starter_path), "--port",
         str(port), "--host", "127.0.0.1", "--n_ctx", "2048", "--api_key", API_KEY],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        with httpx2.Client() as client:
            while True:
                try:
                    headers = {"Authorization": f"Bearer {API_KEY}"}
                    if client.get(f"{url}/models", headers=headers).status_code == 200:
                        break
                except httpx2.TransportError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("llama_cpp.server did not start")
                time.sleep(0.3)
        yield f"{url}#{starter_path}"
    finally:
        process.kill()
        process.wait(timeout=10)


@pytest.fixture
def remote(server_url: str, data_dir: Path) -> Iterator[RemoteEngine]:
    engine = RemoteEngine()
    engine.connect(parse_endpoint(server_url), RemoteOptions(api_key=API_KEY, n_ctx=2048))
    yield engine
    engine.unload()


def run(engine: RemoteEngine, policy: ThinkingPolicy, **kwargs: object) -> list[GenerationEvent]:
    sampling = SamplingParams(temperature=0.7, seed=11, max_tokens=kwargs.pop("max_tokens", 60))  # type: ignore[arg-type]
    return list(engine.generate(QUESTION, sampling, policy=policy, force_thinking=True, **kwargs))  # type: ignore[arg-type]


def thinking_pieces(events: list[GenerationEvent]) -> list[str]:
    return [e.text for e in events if e.kind == "text" and e.channel is Channel.THINKING]


def test_connect_detects_the_server_and_names_each_control(remote: RemoteEngine) -> None:
    assert remote.caps is not None and remote.info is not None
    assert remote.caps.kind == "llama-cpp-python" and remote.caps.tokenize == "extras"
    assert remote.info.n_ctx == 2048 and remote.info.n_ctx_train == 8192  # GGUF header
    notes = "\n".join(remote.info.notes)
    assert "does not publish its context size: 2,048 tokens (your figure)" in notes
    assert "chat template from SmolLM2" in notes
    assert "logit_bias" in notes and "raw completion" in notes


def test_banned_filler_ids_never_appear_in_the_thinking(remote: RemoteEngine) -> None:
    matches = remote.filler_matches(COMMON_WORDS)
    banned = {m.text for m in matches}
    assert {" the", " and", " is"} <= banned and "the" not in banned  # the rules of filler_words
    # Each streamed piece is one token: the unpruned run uses these words, the pruned one never.
    free = thinking_pieces(run(remote, UNPRUNED))
    assert banned & set(free)
    ban = ThinkingPolicy(name="ban", suppress_fillers=True, filler_words=COMMON_WORDS)
    events = run(remote, ban)
    pruned = thinking_pieces(events)
    assert len(pruned) >= 20 and not banned & set(pruned)
    assert events[-1].stats.requests == 1  # the ban needs no extra request


def test_budget_holds_through_cancel_and_continue(remote: RemoteEngine) -> None:
    policy = ThinkingPolicy(name="budget 16", budget=16)
    events = run(remote, policy, max_tokens=120)
    stats = events[-1].stats
    assert stats.budget_hits == 1
    sampled = stats.thinking_tokens - stats.forced_tokens
    assert 16 <= sampled <= 16 + MAX_WORD_FINISH_TOKENS
    assert stats.requests == 2 and stats.resent_prompt_tokens >= stats.prompt_tokens + sampled
    thinking = "".join(thinking_pieces(events))
    assert thinking.rstrip().endswith(policy.budget_message)
    assert any(e.kind == "thinking_close" for e in events)
    assert stats.answer_tokens > 0  # the continuation answered after the closing


def test_stop_thinking_closes_the_thinking_and_the_reply_goes_on(remote: RemoteEngine) -> None:
    stop = threading.Event()
    events: list[GenerationEvent] = []
    sampling = SamplingParams(temperature=0.7, seed=11, max_tokens=80)
    for event in remote.generate(QUESTION, sampling, stop_thinking=stop, force_thinking=True):
        events.append(event)
        if len(thinking_pieces(events)) == 5:
            stop.set()
    stats = events[-1].stats
    assert any(e.kind == "thinking_close" for e in events)
    assert stats.requests == 2
    assert stats.forced_tokens == len(remote._require_tokenizer().tokenize("</think>\n\n"))
    assert 5 <= stats.thinking_tokens - stats.forced_tokens <= 6


def test_usage_and_meters_are_filled(remote: RemoteEngine) -> None:
    events = run(remote, UNPRUNED, max_tokens=24)
    stats = events[-1].stats
    prompt = remote.render_prompt(QUESTION) + "<think>\n"
    assert stats.prompt_tokens == len(remote._require_tokenizer().tokenize(prompt))
    assert stats.generated_tokens == 24 and stats.finish_reason == "length"
    assert stats.time_to_first_token_s > 0 and stats.decode_tokens_per_s > 0
    assert stats.total_seconds >= stats.decode_seconds > 0


def test_stop_keeps_the_reply_so_far(remote: RemoteEngine) -> None:
    cancel = threading.Event()
    session = ChatSession()
    session.force_thinking = True
    shown: list[str] = []
    for event in session.send(remote, "Explain why the sky is blue.", cancel=cancel):
        if event.kind == "text":
            shown.append(event.text)
            if len(shown) == 4:
                cancel.set()
    assert event.kind == "done" and event.stats is not None
    assert event.stats.finish_reason == "cancelled"
    assert session.turns[-1].thinking == "".join(shown)


def test_wrong_api_key_is_refused_with_a_clear_message(server_url: str, data_dir: Path) -> None:
    engine = RemoteEngine()
    with pytest.raises(RemoteAuthError, match="refused the API key"):
        engine.connect(parse_endpoint(server_url), RemoteOptions(api_key="wrong"))


# -- the command line, end to end -------------------------------------------------------------


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_COLOR": "1", "LEANCODER_API_KEY": API_KEY},
    )


def test_ask_with_a_server_url(server_url: str) -> None:
    result = cli("ask", "--model", server_url, "--ctx", "2048", "--max-tokens", "40",
                 "--seed", "4", "--force-thinking", "--think-budget", "8", "--json",
                 "Say hello.")  # fmt: skip
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["stats"]["budget_hits"] == 1 and data["stats"]["requests"] == 2
    assert data["text"].strip() and data["thinking"].strip()
    assert "note: Remote engine: llama-cpp-python" in result.stderr
    assert API_KEY not in result.stderr + result.stdout


def test_compare_and_bench_thinking_with_a_server_url(server_url: str, tmp_path: Path) -> None:
    result = cli("compare", "--model", server_url, "--ctx", "2048", "--max-tokens", "40",
                 "--policy-b", "Aggressive", "--think-budget-b", "10", "--force-thinking",
                 "--json", "Why is the sky blue?")  # fmt: skip
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["a"]["stats"]["requests"] == 1 and data["b"]["stats"]["budget_hits"] >= 1
    a, b = data["a"]["stats"], data["b"]["stats"]
    assert b["thinking_tokens"] - b["forced_tokens"] < a["thinking_tokens"]
    bench = cli("bench-thinking", "--model", server_url, "--ctx", "2048", "--max-tokens", "32",
                "--limit", "1", "--policies", "Unpruned,Aggressive", "--force-thinking",
                "--out", str(tmp_path / "bench"))  # fmt: skip
    assert bench.returncode == 0, bench.stderr
    rows = (tmp_path / "bench" / "results.csv").read_text(encoding="utf-8").splitlines()
    assert len(rows) == 3 and rows[1].startswith("Unpruned,") and rows[2].startswith("Aggressive,")

