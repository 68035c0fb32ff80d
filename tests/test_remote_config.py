"""The configured remote engine: remote.json (validated, never holding the key) and the API key
in the keyring, or nowhere on disk where no keyring exists. Also the server's own meters (usage,
llama-server timings) read from a real loopback server's stream."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import keyring
import keyring.backend
import pytest
from keyring.backends import fail
from keyring.errors import PasswordDeleteError

from app.core.llm.engine_types import SamplingParams
from app.core.remote import config as rc
from app.core.remote.endpoint import RemoteEndpointError, parse_endpoint
from app.core.remote.engine import RemoteEngine, RemoteOptions
from tests.remote_fault_server import MODEL, FaultConfig, fault_server

SPEC = parse_endpoint("https://gpu1.example.com:8000/v1#Qwen3-32B")
KEY = "sk-remote-0123456789"


class MemoryKeyring(keyring.backend.KeyringBackend):
    """A real keyring backend (keyring's plugin interface) that keeps secrets in memory: the
    test's stand-in for the platform's keychain."""

    priority = 1

    def __init__(self) -> None:
        super().__init__()
        self.items: dict[tuple[str, str], str] = {}

    def set_password(self, service: str, username: str, password: str) -> None:
        self.items[(service, username)] = password

    def get_password(self, service: str, username: str) -> str | None:
        return self.items.get((service, username))

    def delete_password(self, service: str, username: str) -> None:
        if self.items.pop((service, username), None) is None:
            raise PasswordDeleteError("no such password")


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    before = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(before)


@pytest.fixture
def no_keyring() -> Iterator[None]:
    before = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    yield
    keyring.set_keyring(before)
    rc.remember_for_this_run(SPEC, "")


def test_key_goes_to_the_keyring_never_to_the_file(
    memory_keyring: MemoryKeyring, data_dir: Path, caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.delenv(rc.API_KEY_ENV, raising=False)
    caplog.set_level(logging.DEBUG)
    saved = rc.save_remote_config(rc.RemoteConfig(endpoint=f" {SPEC.text} ", n_ctx=32768))
    assert saved.endpoint == SPEC.text
    assert rc.store_api_key(SPEC, KEY) is True
    assert memory_keyring.items == {(rc.KEYRING_SERVICE, SPEC.base_url): KEY}
    assert rc.api_key_for(SPEC) == KEY
    text = rc.remote_config_path().read_text(encoding="utf-8")
    assert KEY not in text and json.loads(text)["n_ctx"] == 32768
    assert rc.remote_config_path().stat().st_mode & 0o077 == 0
    monkeypatch.setenv(rc.API_KEY_ENV, "from-env")
    assert rc.api_key_for(SPEC) == "from-env"  # the command line's override
    rc.forget_api_key(SPEC)
    assert memory_keyring.items == {}
    assert KEY not in caplog.text


def test_without_a_keyring_the_key_is_kept_for_this_run_only(
    no_keyring: None, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(rc.API_KEY_ENV, raising=False)
    assert rc.store_api_key(SPEC, KEY) is False
    assert rc.stored_api_key(SPEC) is None
    rc.remember_for_this_run(SPEC, KEY)
    assert rc.api_key_for(SPEC) == KEY
    assert not any(KEY in p.read_text(errors="ignore") for p in data_dir.rglob("*") if p.is_file())


def test_bad_settings_are_refused_with_a_sentence(data_dir: Path) -> None:
    with pytest.raises(RemoteEndpointError, match="http:// or https://"):
        rc.save_remote_config(rc.RemoteConfig(endpoint="gpu1:8000/v1"))
    with pytest.raises(RemoteEndpointError, match="does not exist"):
        rc.save_remote_config(rc.RemoteConfig(endpoint=SPEC.text, template_gguf="/no/such.gguf"))
    with pytest.raises(RemoteEndpointError, match="spaces"):
        rc.store_api_key(SPEC, "two words")
    rc.remote_config_path().write_text('{"endpoint": 5, "n_ctx": "x"}', encoding="utf-8")
    assert rc.load_remote_config() == rc.RemoteConfig()  # wrong types: defaults


def test_settings_apply_only_to_their_own_server(data_dir: Path, starter_path: Path) -> None:
    config = rc.RemoteConfig(endpoint=SPEC.text, n_ctx=8192, template="default",
                             template_gguf=str(starter_path))  # fmt: skip
    mine = rc.remote_options(config, SPEC)
    assert (mine.n_ctx, mine.template, mine.template_gguf) == (8192, "default", starter_path)
    other = rc.remote_options(config, parse_endpoint("http://other:8080/v1"))
    assert (other.n_ctx, other.template, other.template_gguf) == (None, "model", None)
    assert rc.remote_choice_label(config) == (
        SPEC.text, "Qwen3-32B on gpu1.example.com:8000 (remote)",
        f"{SPEC.text}\nNot checked yet: Models → Remote engine → Test connection.",
    )  # fmt: skip


def test_meters_come_from_the_servers_usage_and_timings(data_dir: Path) -> None:
    # llama-server sends usage (stream_options.include_usage) and timings; the fault server's
    # scripted stream carries both, so the engine must take them over its own counts.
    config = FaultConfig(mode="ok", usage={"prompt_tokens": 77, "completion_tokens": 7},
                         timings={"cache_n": 60, "prompt_n": 17})  # fmt: skip
    with fault_server(config) as url:
        engine = RemoteEngine()
        try:
            engine.connect(parse_endpoint(f"{url}#{MODEL}"), RemoteOptions(read_timeout_s=5))
            events = list(engine.generate([{"role": "user", "content": "hi"}], SamplingParams()))
        finally:
            engine.unload()
    stats = events[-1].stats
    assert (stats.prompt_tokens, stats.cached_prompt_tokens) == (77, 60)
    body = next(b for m, p, b in config.requests if p == "/v1/completions")
    assert body["stream_options"] == {"include_usage": True} and body["stream"] is True
