"""Fixtures for the download, import and bridge tests: a running fake hub serving the starter GGUF,
network settings pointing at it, and socket recorders. A test module loads them with
`pytest_plugins = ("tests.download_support",)` and imports nothing else from here."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import gguf
import numpy as np
import pytest

from app.core.models.network import NetworkSettings
from tests.hub_server import FILE, REPO, FakeHub, sha256_of
from tests.socket_guard import SocketLog, socket_guard


def write_small_gguf(path: Path, size: int, seed: int = 0) -> Path:
    """A valid GGUF of about `size` bytes (one uint8 tensor of seeded random bytes), written by
    the `gguf` package: small enough to download many times in a test, distinct per seed."""
    data = np.random.default_rng(seed).integers(0, 256, size=max(64, size - 512), dtype=np.uint8)
    writer = gguf.GGUFWriter(path, "llama")
    writer.add_name(f"small-{seed}")
    writer.add_tensor("t.weight", data, raw_dtype=gguf.GGMLQuantizationType.I8)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.fixture
def small_gguf(tmp_path: Path) -> Callable[[int, int], Path]:
    """`small_gguf(size, seed)`: a GGUF file of about `size` bytes outside the test's cache."""
    folder = tmp_path / "served"
    folder.mkdir(exist_ok=True)

    def make(size: int, seed: int = 0) -> Path:
        return write_small_gguf(folder / f"small-{seed}-{size}.gguf", size, seed)

    return make


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
