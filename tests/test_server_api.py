"""The API server end to end with real clients: the `openai` package and `curl` against a real
uvicorn server on loopback, over the starter model on a real serialized worker (loaded once for
the module). Thinking is forced open through the `leancoder` extension (the starter has no
thinking format of its own), so the reasoning fields, counts and budgets run on real tokens.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from app.server.config import ReasoningFields, ServerConfig
from app.server.model_service import ActivitySnapshot, ModelService
from tests.server_support import BlockedWorker, RunningServer, model_service, running_server

Messages = list[ChatCompletionMessageParam]
QUESTION: Messages = [{"role": "user", "content": "Is 17 a prime number? Think step by step."}]
THINK_OPEN = {"leancoder": {"force_thinking": True, "policy": "Unpruned"}}


@pytest.fixture(scope="module")
def service(starter_path: Path) -> Iterator[ModelService]:
    with model_service(starter_path) as svc:
        yield svc


@pytest.fixture(scope="module")
def server(service: ModelService) -> Iterator[RunningServer]:
    with running_server(service, ServerConfig(port=0)) as srv:
        yield srv


@pytest.fixture
def client(server: RunningServer) -> openai.OpenAI:
    return server.client(timeout=120)


def extra(obj: Any, name: str) -> Any:
    """An extension field of an SDK object (the SDK keeps unknown fields in model_extra)."""
    return (obj.model_extra or {})[name]


def test_models_list_the_context_and_thinking_format(client: openai.OpenAI) -> None:
    models = client.models.list().data
    assert [m.id for m in models] == ["SmolLM2-135M-Instruct.Q4_1"]
    model = models[0]
    assert extra(model, "context_length") == extra(model, "max_model_len") == 1024
    assert extra(model, "meta")["n_ctx_train"] == 8192
    assert extra(model, "leancoder")["thinking_format"] == "none"
    assert extra(model, "capabilities") == {"tools": False}  # SmolLM2's template reads no tools
    assert client.models.retrieve(model.id).id == model.id


def test_chat_reply_and_usage(client: openai.OpenAI, service: ModelService) -> None:
    reply = client.chat.completions.create(
        model="anything", messages=[{"role": "user", "content": "Say hello."}],
        max_tokens=6, temperature=0, seed=3,
    )  # fmt: skip
    choice = reply.choices[0]
    assert choice.message.role == "assistant" and choice.message.content
    assert choice.finish_reason == "length"
    usage = reply.usage
    assert usage is not None and usage.completion_tokens == 6
    assert usage.total_tokens == usage.prompt_tokens + 6
    assert usage.completion_tokens_details and usage.completion_tokens_details.reasoning_tokens == 0
    counters = extra(usage, "leancoder")
    assert counters["answer_tokens"] == 6 and counters["policy"] == "Balanced"
    # The engine's own speeds (bench/vs_llama_cpp.py compares them with llama-server's timings).
    assert counters["prompt_tokens_per_s"] > 0 and counters["decode_tokens_per_s"] > 0
    # The prompt count is the engine's own for these messages.
    prompt = service.engine.render_prompt([{"role": "user", "content": "Say hello."}])
    assert usage.prompt_tokens == len(service.engine.tokenize_prompt(prompt))


def test_streamed_reasoning_never_reaches_the_answer(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="m", messages=QUESTION, max_tokens=64, temperature=0, seed=1,
        stream=True, stream_options={"include_usage": True},
        extra_body={"leancoder": {"force_thinking": True, "policy": "Unpruned",
                                  "budget": 10}},
    )  # fmt: skip
    reasoning_content, reasoning, content, finishes = [], [], [], []
    usage = None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            delta = choice.delta
            content.append(delta.content or "")
            reasoning_content.append((delta.model_extra or {}).get("reasoning_content", ""))
            reasoning.append((delta.model_extra or {}).get("reasoning", ""))
            if choice.finish_reason:
                finishes.append(choice.finish_reason)
    thinking = "".join(reasoning_content)
    assert thinking and thinking == "".join(reasoning)  # both conventions carry the same text
    answer = "".join(content)
    assert answer, "the budget closed the thinking, so the reply goes on to answer"
    for tag in ("<think>", "</think>"):
        assert tag not in answer and tag not in thinking
    assert len(finishes) == 1 and finishes[0] in ("length", "stop")
    assert usage is not None and 0 < usage.completion_tokens <= 64
    details = usage.completion_tokens_details
    counters = extra(usage, "leancoder")
    assert details is not None and details.reasoning_tokens == counters["thinking_tokens"] > 0
    assert counters["budget_hits"] == 1 and counters["forced_tokens"] > 0
    assert counters["answer_tokens"] + counters["thinking_tokens"] == usage.completion_tokens


def test_turn_budget_holds_over_the_whole_reply(client: openai.OpenAI) -> None:
    def thinking_of(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        reply = client.chat.completions.create(
            model="m", messages=QUESTION, max_tokens=30, temperature=0, seed=1,
            extra_body=body,
        )  # fmt: skip
        assert reply.usage is not None
        counters = extra(reply.usage, "leancoder")
        message = reply.choices[0].message
        if counters["thinking_tokens"] > 5:  # the whole reply carries its thinking too
            thinking = extra(message, "reasoning_content")
            assert thinking.strip() and thinking == extra(message, "reasoning")
            assert "<think>" not in (message.content or "") + thinking
        return counters["thinking_tokens"], counters

    free, _ = thinking_of(THINK_OPEN)
    assert free >= 20, "unbounded, the starter thinks well past the budget below"
    budget = 8
    spent, counters = thinking_of({**THINK_OPEN, "thinking_budget_tokens": budget})
    # The budget counts sampled thinking; the closing LeanCoder writes is counted as forced.
    assert spent - counters["forced_tokens"] <= budget + 6  # + a word finished (at most 6)
    assert counters["budget_hits"] == 1 and counters["policy"].endswith("(turn budget 8)")
    none, counters = thinking_of({"reasoning_effort": "none",
                                  "leancoder": {"force_thinking": True}})  # fmt: skip
    # Effort "none": closed at its first token; only the closing LeanCoder wrote is thinking.
    assert none <= counters["forced_tokens"] and counters["budget_hits"] == 1


def test_prompt_cache_prefills_only_the_new_turn(client: openai.OpenAI) -> None:
    first_messages: Messages = [{"role": "user", "content": "Name a colour."}]
    first = client.chat.completions.create(
        model="m", messages=first_messages, max_tokens=8, temperature=0,
    )  # fmt: skip
    assert first.usage is not None
    answer = first.choices[0].message.content or ""
    grown: Messages = [*first_messages, {"role": "assistant", "content": answer},
             {"role": "user", "content": "And another one?"}]  # fmt: skip
    second = client.chat.completions.create(
        model="m", messages=grown, max_tokens=4, temperature=0,
    )  # fmt: skip
    usage = second.usage
    assert usage is not None and usage.prompt_tokens_details is not None
    cached = usage.prompt_tokens_details.cached_tokens or 0
    assert cached == extra(usage, "leancoder")["cached_prompt_tokens"]
    assert cached >= first.usage.prompt_tokens  # the whole first prompt was reused
    new = usage.prompt_tokens - cached
    assert 0 < new <= 24, f"only the answer's end and the new turn are prefilled, not {new}"


def test_stop_string_ends_the_reply(client: openai.OpenAI, service: ModelService) -> None:
    messages: Messages = [{"role": "user", "content": "Count from one to ten in words."}]
    full = client.chat.completions.create(
        model="m", messages=messages, max_tokens=20, temperature=0, seed=1,
    ).choices[0].message.content or ""  # fmt: skip
    words = full.split()
    assert len(words) >= 4, full
    stop = words[2]
    cut = client.chat.completions.create(
        model="m", messages=messages, max_tokens=20, temperature=0, seed=1, stop=[stop],
    )  # fmt: skip
    text = cut.choices[0].message.content or ""
    assert cut.choices[0].finish_reason == "stop"
    assert stop not in text and full.startswith(text) and text
    # The generation ends at the stop string, not when the paced reader next looks.
    assert cut.usage is not None
    assert cut.usage.completion_tokens <= service.engine.count_tokens(text + stop) + 2
    assert service.activity.snapshot().tokens_after_cancel <= 1


def test_raw_completions(client: openai.OpenAI) -> None:
    reply = client.completions.create(
        model="m", prompt="The capital of France is", max_tokens=5, temperature=0
    )
    assert reply.object == "text_completion" and reply.choices[0].text
    assert reply.usage is not None and reply.usage.completion_tokens == 5
    chunks = list(client.completions.create(
        model="m", prompt="One, two,", max_tokens=3, temperature=0, stream=True))  # fmt: skip
    assert "".join(c.choices[0].text for c in chunks if c.choices)
    assert chunks[-1].choices[0].finish_reason == "length"


def test_curl_reads_raw_server_sent_events(server: RunningServer) -> None:
    curl = shutil.which("curl")
    if curl is None:
        pytest.fail("curl is needed for this test (apt-get install curl)")
    body = {"model": "m", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 3,
            "stream": True}  # fmt: skip
    done = subprocess.run(
        [curl, "-sN", "--max-time", "120", f"{server.url}/chat/completions",
         "-H", "Content-Type: application/json", "-d", json.dumps(body)],
        capture_output=True, text=True, timeout=130, check=True,
    )  # fmt: skip
    events = [line for line in done.stdout.split("\n") if line]
    assert all(line.startswith("data: ") for line in events), done.stdout
    assert events[-1] == "data: [DONE]"
    chunks = [json.loads(line[6:]) for line in events[:-1]]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"


def test_disconnect_cancels_the_generation(server: RunningServer, service: ModelService) -> None:
    states: list[ActivitySnapshot] = []
    unsubscribe = service.activity.subscribe(states.append)
    # A reply's response ends at "done"; its worker job ends a step later (it settles the KV
    # cache), so the count is read once the worker is idle.
    service.worker.call(lambda: None).result(timeout=60)
    served = service.activity.snapshot().served
    payload = {"model": "m", "messages": QUESTION, "max_tokens": 900, "stream": True, **THINK_OPEN}
    body = json.dumps(payload).encode()
    request = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:{server.thread.port}\r\n"
        f"User-Agent: disconnect-test/1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    # A raw socket, so that closing it is a disconnect now (an HTTP client may drain the rest).
    try:
        with socket.create_connection(("127.0.0.1", server.thread.port), timeout=120) as sock:
            sock.sendall(request)
            received = b""
            while received.count(b"data: ") < 2:  # the opening and the first thinking piece
                chunk = sock.recv(65536)
                assert chunk, received
                received += chunk
            assert service.activity.snapshot().client == "disconnect-test/1"
        closed = time.monotonic()
        # The worker is free promptly: a job queued now runs once the generation stopped.
        ran_at = service.worker.call(time.monotonic).result(timeout=60)
    finally:
        unsubscribe()
    assert received.startswith(b"HTTP/1.1 200")
    final = service.activity.snapshot()
    assert final.served == served + 1 and not final.busy and final.client == ""
    assert final.last_reply is not None and final.last_reply.finish_reason == "cancelled"
    assert final.last_reply.generated_tokens < 900
    # Within one token of the server seeing the disconnect; the wall time is loose because the
    # 2-core test machine is shared (a token can take a second there).
    assert final.tokens_after_cancel <= 1
    assert ran_at - closed < 15.0, "the generation did not stop when the client left"
    assert any(s.busy and s.client == "disconnect-test/1" for s in states)
    assert b"data: [DONE]" not in received


def test_full_queue_is_503_with_retry_after(server: RunningServer, service: ModelService) -> None:
    blocker = BlockedWorker(service.worker)  # scripted slow work holding the model
    assert blocker.started.wait(30)
    results: list[object] = []

    def waiting_request() -> None:
        try:
            results.append(server.client(timeout=300).chat.completions.create(
                model="m", messages=[{"role": "user", "content": "Hi"}], max_tokens=1))  # fmt: skip
        except Exception as exc:  # reported through `results`
            results.append(exc)

    threads = [threading.Thread(target=waiting_request) for _ in range(service.queue_limit)]
    try:
        for t in threads:
            t.start()
        deadline = time.monotonic() + 60
        while service.activity.snapshot().waiting < service.queue_limit:
            assert time.monotonic() < deadline, service.activity.snapshot()
            time.sleep(0.05)
        with pytest.raises(openai.APIStatusError) as caught:
            server.client().chat.completions.create(
                model="m", messages=[{"role": "user", "content": "Hi"}], max_tokens=1
            )
        assert caught.value.status_code == 503
        assert caught.value.response.headers["retry-after"] == "5"
        assert "16 requests are waiting" in caught.value.message
    finally:
        blocker.release.set()
        for t in threads:
            t.join(300)
    assert len(results) == service.queue_limit
    assert all(isinstance(r, openai.types.chat.ChatCompletion) for r in results), results
    assert service.activity.snapshot().waiting == 0


def test_waiting_request_that_disconnects_leaves_the_queue(
    server: RunningServer, service: ModelService
) -> None:
    blocker = BlockedWorker(service.worker)  # scripted slow work holding the model
    assert blocker.started.wait(30)
    try:
        with pytest.raises(httpx2.TimeoutException):
            httpx2.post(f"{server.url}/chat/completions", timeout=1.0, json={
                "model": "m", "messages": [{"role": "user", "content": "Hi"}]})  # fmt: skip
        deadline = time.monotonic() + 10
        while service.activity.snapshot().waiting:
            assert time.monotonic() < deadline, "the abandoned request is still queued"
            time.sleep(0.05)
    finally:
        blocker.release.set()
    served = service.activity.snapshot().served
    service.worker.call(lambda: None).result(timeout=30)
    assert service.activity.snapshot().served == served  # it never ran on the model


def test_a_conversation_longer_than_the_context_is_a_clear_400(client: openai.OpenAI) -> None:
    long_text = "word " * 1500  # about 1,500 tokens for a 1,024-token context
    for stream in (False, True):
        with pytest.raises(openai.BadRequestError) as caught:
            reply = client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": long_text}], stream=stream
            )
            if stream:
                list(reply)
        assert "context holds 1,024" in caught.value.message
        assert caught.value.code == "generation_failed"


def test_reasoning_field_names_are_configurable(service: ModelService) -> None:
    choices: list[tuple[ReasoningFields, str]] = [
        ("reasoning_content", "reasoning"),
        ("reasoning", "reasoning_content"),
    ]
    for present, absent in choices:
        with running_server(service, ServerConfig(port=0, reasoning_fields=present)) as srv:
            reply = srv.client(timeout=120).chat.completions.create(
                model="m", messages=QUESTION, max_tokens=4, temperature=0, extra_body=THINK_OPEN
            )
        message = reply.choices[0].message.model_extra or {}
        assert message.get(present) and absent not in message, message
    with running_server(service, ServerConfig(port=0, reasoning_fields="none")) as srv:
        reply = srv.client(timeout=120).chat.completions.create(
            model="m", messages=QUESTION, max_tokens=4, temperature=0, extra_body=THINK_OPEN
        )
    assert reply.usage is not None and reply.usage.completion_tokens_details is not None
    assert reply.usage.completion_tokens_details.reasoning_tokens == 4  # counted, not shown
    assert not {"reasoning", "reasoning_content"} & set(reply.choices[0].message.model_extra or {})
