"""The API server's guard, on a real uvicorn server on loopback with the real `openai` client:
Host header (DNS rebinding), API key, body limit, JSON only, no CORS unless allowed, the refusal to
listen beyond loopback without a key, OpenAI-shaped errors, and prompts kept out of the log.

No model is loaded here: every refusal happens before the model would be reached.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx2
import openai
import pytest

from app.core.storage import logs
from app.server.config import ServerConfig, ServerConfigError, is_loopback
from app.server.model_service import ModelService
from tests.server_support import RunningServer, model_service, running_server

KEY = "secret-key-for-tests"


@pytest.fixture(scope="module")
def empty_service() -> Iterator[ModelService]:
    with model_service(None) as service:
        yield service


@pytest.fixture(scope="module")
def server(empty_service: ModelService) -> Iterator[RunningServer]:
    with running_server(empty_service, ServerConfig(port=0, max_body_bytes=64 * 1024)) as srv:
        yield srv


@pytest.fixture(scope="module")
def keyed(empty_service: ModelService) -> Iterator[RunningServer]:
    with running_server(empty_service, ServerConfig(port=0, api_key=KEY)) as srv:
        yield srv


def chat_body(text: str = "hi") -> dict[str, object]:
    return {"model": "m", "messages": [{"role": "user", "content": text}], "max_tokens": 1}


def ask(client: openai.OpenAI, text: str = "hi") -> object:
    return client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": text}], max_tokens=1
    )


def test_non_loopback_address_needs_an_api_key() -> None:
    with pytest.raises(ServerConfigError, match="give an API key"):
        ServerConfig(host="0.0.0.0").check()
    with pytest.raises(ServerConfigError, match="give an API key"):
        ServerConfig(host="192.168.1.20").check()
    ServerConfig(host="0.0.0.0", api_key=KEY).check()
    ServerConfig(host="::1").check()
    assert is_loopback("localhost") and is_loopback("127.0.0.2") and not is_loopback("10.0.0.1")
    with pytest.raises(ServerConfigError, match="at least 8"):
        ServerConfig(api_key="short").check()


def test_host_header_of_another_name_is_refused(server: RunningServer) -> None:
    port = server.thread.port
    for host in ("evil.example", f"evil.example:{port}", "127.0.0.1.evil.example"):
        r = httpx2.get(f"{server.url}/models", headers={"Host": host})
        assert r.status_code == 400, host
        assert r.json()["error"]["code"] == "invalid_host"
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", "localhost"):
        assert httpx2.get(f"{server.url}/models", headers={"Host": host}).status_code == 200


def test_api_key_is_required_when_set(keyed: RunningServer) -> None:
    with pytest.raises(openai.AuthenticationError) as caught:
        keyed.client("wrong-key-123").models.list()
    assert caught.value.status_code == 401
    assert "API key" in caught.value.message
    r = httpx2.post(f"{keyed.url}/chat/completions", json=chat_body())  # no header at all
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    assert keyed.client(KEY).models.list().data[0].object == "model"
    # /health tells a tool the server is up without the key (and says nothing private).
    assert httpx2.get(f"{keyed.base}/health").status_code == 200


def test_body_over_the_limit_is_413(server: RunningServer) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        server.client().chat.completions.create(
            model="m", messages=[{"role": "user", "content": "x" * 70_000}]
        )
    assert caught.value.status_code == 413
    assert "65,536 bytes" in caught.value.message

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit is counted as it arrives
        body = json.dumps(chat_body("y" * 70_000)).encode()
        for i in range(0, len(body), 8192):
            yield body[i : i + 8192]

    r = httpx2.post(
        f"{server.url}/chat/completions",
        content=chunks(),
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large"


def test_only_json_is_accepted(server: RunningServer) -> None:
    # A web page can POST text/plain cross-origin without a preflight; JSON needs one.
    r = httpx2.post(
        f"{server.url}/chat/completions",
        content=json.dumps(chat_body()),
        headers={"Content-Type": "text/plain"},
    )
    assert r.status_code == 415 and "application/json" in r.json()["error"]["message"]
    r = httpx2.post(
        f"{server.url}/chat/completions",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 400 and r.json()["error"]["message"] == (
        "The request body is not valid JSON."
    )


def test_no_cors_unless_origins_are_allowed(
    server: RunningServer, empty_service: ModelService
) -> None:
    preflight = {
        "Origin": "https://evil.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }
    r = httpx2.options(f"{server.url}/chat/completions", headers=preflight)
    assert "access-control-allow-origin" not in r.headers
    r = httpx2.get(f"{server.url}/models", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in r.headers
    config = ServerConfig(port=0, cors_origins=("https://ok.example",))
    with running_server(empty_service, config) as allowed:
        r = httpx2.options(
            f"{allowed.url}/chat/completions", headers={**preflight, "Origin": "https://ok.example"}
        )
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == "https://ok.example"
        r = httpx2.options(f"{allowed.url}/chat/completions", headers=preflight)
        assert r.headers.get("access-control-allow-origin") != "https://evil.example"


def test_errors_are_openai_shaped(server: RunningServer) -> None:
    r = httpx2.get(f"{server.base}/v1/nothing-here")
    assert r.status_code == 404
    assert r.json() == {
        "error": {
            "message": "No such endpoint.",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
    }
    assert httpx2.get(f"{server.url}/chat/completions").status_code == 405
    with pytest.raises(openai.NotFoundError):
        server.client().models.retrieve("another-model")
    client = server.client()
    bad: list[tuple[dict[str, object], str]] = [
        ({"temperature": 5}, "temperature"),
        ({"n": 2}, "n"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"stop": ["a"] * 17}, "stop"),
        ({"reasoning_effort": "extreme"}, "reasoning_effort"),
        ({"leancoder": {"policy": "Nope"}}, "leancoder.policy"),
        ({"leancoder": {"budjet": 3}}, "leancoder"),
        ({"thinking_budget_tokens": -1}, "thinking_budget_tokens"),
    ]
    for extra, param in bad:
        with pytest.raises(openai.BadRequestError) as caught:
            client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "hi"}], extra_body=extra
            )
        assert caught.value.param == param, (extra, caught.value.message)
    with pytest.raises(openai.BadRequestError, match="text only"):
        client.chat.completions.create(
            model="m",
            messages=[
                {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x:"}}]}
            ],
        )
    with pytest.raises(openai.BadRequestError, match="messages"):
        client.chat.completions.create(model="m", messages=[])


def test_no_model_loaded_is_503(server: RunningServer) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        ask(server.client())
    assert caught.value.status_code == 503
    assert caught.value.response.headers["retry-after"].isdigit()
    health = httpx2.get(f"{server.base}/health").json()
    assert health["status"] == "no_model" and health["busy"] is False


def test_prompts_stay_out_of_the_log_unless_content_logging_is_on(
    server: RunningServer, tmp_path: object
) -> None:
    from pathlib import Path

    folder = Path(str(tmp_path))
    secret = "my-private-prompt-7781"
    for content in (False, True):
        path = logs.setup_logging("debug", log_content=content, folder=folder / str(content),
                                  stderr_level=None)  # fmt: skip
        try:
            with pytest.raises(openai.APIStatusError):  # refused (no model) after validation
                ask(server.client(), secret)
        finally:
            logs.stop_logging()
        text = path.read_text(encoding="utf-8")
        assert (secret in text) is content, text
