"""A remote engine against servers that fail: unreachable, 401, a stalled stream, a dropped
connection, garbage, an endless line. Each gives a clear RemoteError, what was shown is kept, and
the same session works again afterwards. The server is tests/remote_fault_server.py, real HTTP on
loopback with scripted content."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.core.errors import LeanCoderError
from app.core.llm.engine_types import SamplingParams
from app.core.remote.endpoint import (
    RemoteAuthError,
    RemoteDroppedError,
    RemoteEndpointError,
    RemoteProtocolError,
    RemoteStalledError,
    RemoteUnreachableError,
    looks_remote,
    parse_endpoint,
)
from app.core.remote.engine import RemoteEngine, RemoteOptions
from app.core.session.chat import ChatSession
from app.core.thinking.parser import Channel
from tests.remote_fault_server import MODEL, SCRIPTED_WORDS, FaultConfig, fault_server, unused_port


@pytest.fixture
def config() -> FaultConfig:
    return FaultConfig()


@pytest.fixture
def server(config: FaultConfig, data_dir: Path) -> Iterator[str]:
    with fault_server(config) as url:
        yield url


_open: list[RemoteEngine] = []


@pytest.fixture(autouse=True)
def _close_engines() -> Iterator[None]:
    """Every engine a test made is closed (its HTTP connections) when the test ends."""
    yield
    while _open:
        _open.pop().unload()


def new_engine() -> RemoteEngine:
    engine = RemoteEngine()
    _open.append(engine)
    return engine


def connect(url: str, **options: object) -> RemoteEngine:
    engine = new_engine()
    engine.connect(parse_endpoint(f"{url}#{MODEL}"), RemoteOptions(read_timeout_s=1.0, **options))  # type: ignore[arg-type]
    return engine


def texts(events: list[object]) -> str:
    return "".join(e.text for e in events if getattr(e, "kind", "") == "text")  # type: ignore[attr-defined]


# -- the address ------------------------------------------------------------------------------


def test_endpoint_parsing_and_validation() -> None:
    spec = parse_endpoint(" HTTPS://gpu1.corp:8000/v1/#Qwen3-32B ")
    assert (spec.base_url, spec.model, spec.host) == ("https://gpu1.corp:8000/v1", "Qwen3-32B",
                                                      "gpu1.corp:8000")  # fmt: skip
    assert parse_endpoint("http://h/v1").model == ""
    assert looks_remote("http://h/v1#m") and not looks_remote("models/x.gguf")
    for bad, words in [
        ("ftp://h/v1#m", "http:// or https://"),
        ("http:///v1#m", "http:// or https://"),
        ("https://user:pw@h/v1#m", "no user name or password"),
        ("https://h:99999/v1#m", "not valid"),
        ("https://h/v1?x=1#m", "?query"),
        ("https://h/v1#bad\x00name", "printable"),
    ]:
        with pytest.raises(RemoteEndpointError, match=words.replace("?", r"\?")):
            parse_endpoint(bad)


# -- connecting -------------------------------------------------------------------------------


def test_unreachable_server_is_a_clear_error(data_dir: Path) -> None:
    port = unused_port()
    where = f"Cannot reach the server at 127.0.0.1:{port}"
    with pytest.raises(RemoteUnreachableError, match=where):
        connect(f"http://127.0.0.1:{port}/v1")


def test_wrong_api_key_is_a_401_message(config: FaultConfig, server: str) -> None:
    config.mode, config.api_key = "auth", "right-key"
    with pytest.raises(RemoteAuthError, match=r"refused the API key \(HTTP 401\)") as caught:
        connect(server, api_key="wrong-key")
    assert "wrong-key" not in str(caught.value) and "right-key" not in str(caught.value)
    engine = connect(server, api_key="right-key")  # the right key works, with the same server
    assert engine.info is not None and engine.info.n_ctx == 2048
    assert config.requests[-1][0] == "POST"  # probing went on to the tokenizer


def test_connect_reads_props_and_says_what_works(server: str) -> None:
    engine = connect(server)
    assert engine.info is not None and engine.caps is not None
    assert engine.caps.kind == "llama-server" and engine.caps.tokenize == "llama-server"
    assert engine.info.n_ctx == 2048  # from /props
    assert engine.info.template_name == f"published by {parse_endpoint(server).host}"
    notes = " ".join(engine.info.notes)
    assert "logit_bias" in notes and "raw completion" in notes and "Early exit" in notes


def test_unknown_model_name_lists_what_the_server_has(server: str) -> None:
    engine = new_engine()
    with pytest.raises(LeanCoderError, match=f"no model named 'nope'.*{MODEL}"):
        engine.connect(parse_endpoint(f"{server}#nope"))


# -- faults mid-reply -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "error", "words"),
    [
        ("stall", RemoteStalledError, "sent nothing for 1 s"),
        ("drop", RemoteDroppedError, "broke mid-reply"),
        ("no_end", RemoteDroppedError, "without saying it was finished"),
        ("garbage", RemoteProtocolError, "not JSON"),
        ("huge", RemoteProtocolError, "longer than"),
    ],
)
def test_a_failing_stream_keeps_what_was_shown_and_the_session_goes_on(
    config: FaultConfig, server: str, mode: str, error: type[Exception], words: str
) -> None:
    engine = connect(server)
    config.mode = mode
    shown: list[object] = []
    with pytest.raises(error, match=words):
        for event in engine.generate([{"role": "user", "content": "hi"}], SamplingParams(seed=1)):
            shown.append(event)
    assert texts(shown) == "".join(SCRIPTED_WORDS[: config.after])

    # Through the conversation core: the failure is an event, the partial reply is kept.
    session = ChatSession()
    events = list(session.send(engine, "hello", SamplingParams(seed=1)))
    assert events[-1].kind == "failed" and words.split()[0] in events[-1].text
    assert session.turns[-1].content == "".join(SCRIPTED_WORDS[: config.after])
    config.mode = "ok"
    config.release.set()  # let stalled handlers go
    again = list(session.send(engine, "and again", SamplingParams(seed=1)))
    assert again[-1].kind == "done" and again[-1].stats is not None
    assert session.turns[-1].content == "".join(SCRIPTED_WORDS)
    assert again[-1].stats.finish_reason == "stop"


def test_stop_works_while_the_server_is_silent(config: FaultConfig, server: str) -> None:
    engine = new_engine()
    engine.connect(parse_endpoint(f"{server}#{MODEL}"), RemoteOptions(read_timeout_s=30.0))
    config.mode = "stall"
    cancel = threading.Event()
    threading.Timer(0.5, cancel.set).start()
    started = time.monotonic()
    events = list(engine.generate([{"role": "user", "content": "hi"}], cancel=cancel))
    assert time.monotonic() - started < 5.0  # not the 30 s read timeout
    assert events[-1].kind == "done" and events[-1].stats.finish_reason == "cancelled"
    assert texts(events) == "".join(SCRIPTED_WORDS[: config.after])
    assert all(e.channel is Channel.ANSWER for e in events if e.kind == "text")
