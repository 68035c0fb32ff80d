"""Fixtures for the download, import and bridge tests: a running fake hub serving the starter GGUF,
network settings pointing at it, and socket recorders. A test module loads them with
`pytest_plugins = ("tests.download_support",)` and imports nothing else from here."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.core.models.network import NetworkSettings
from tests.hub_server import FILE, REPO, FakeHub, sha256_of
from tests.socket_guard import SocketLog, socket_guard


@pytest.fixture(scope="session")
def starter_sha(starter_path: Path) -> str:
    return sha256_of(starter_path)


@pytest.fixture
def fake_hub(starter_path: Path, starter_sha: str) -> Iterator[FakeHub]:
    hub = FakeHub()
    hub.add(REPO, FILE, starter_path, sha256=starter_sha)
    with hub.running():
        yield hub


@pytest.fixture
def hub_network(fake_hub: FakeHub) -> NetworkSettings:
    return NetworkSettings(endpoint=fake_hub.endpoint)


@pytest.fixture
def no_token(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No access token from the environment or a saved login reaches the fake hub."""
    from huggingface_hub import constants, get_token

    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(tmp_path / "no-tokens"))
    assert get_token() is None


@pytest.fixture
def socket_log(monkeypatch: pytest.MonkeyPatch) -> SocketLog:
    """Records connections and lookups, and lets them through."""
    return socket_guard(monkeypatch, refuse=False)


@pytest.fixture
def no_sockets(monkeypatch: pytest.MonkeyPatch) -> SocketLog:
    """Records connections and lookups, and refuses every one."""
    return socket_guard(monkeypatch, refuse=True)
