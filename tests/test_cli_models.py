"""`leancoder download` end to end: the progress bar, Ctrl-C and a killed process both leave a
partial file that the next run resumes with a Range request; offline refuses; names resolve."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.cli.main import main
from app.core.errors import LeanCoderError
from app.core.models.catalog import find_entry, load_catalog
from app.core.models.download import DownloadError, download_model
from app.core.models.download_target import resolve_download_target
from app.core.models.network import NetworkSettings
from tests.hub_server import FILE, REPO, SPEC, FakeHub, sha256_of

pytest_plugins = ("tests.download_support",)  # fixtures: fake_hub, hub_network, starter_sha

ROOT = Path(__file__).resolve().parents[1]
MB = 1_000_000


def _partial(cache: Path, sha: str) -> Path:
    return cache / "models--acme--tiny-GGUF" / "blobs" / f"{sha}.incomplete"


def _start_cli_download(fake_hub: FakeHub, tmp_path: Path) -> subprocess.Popen[str]:
    env = dict(os.environ, HF_HUB_CACHE=str(tmp_path / "cache"),
               LEANCODER_DATA_DIR=str(tmp_path / "data"))  # fmt: skip
    return subprocess.Popen(
        [sys.executable, "-m", "app", "download", SPEC, "--endpoint", fake_hub.endpoint],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _wait_for_bytes(path: Path, at_least: int, process: subprocess.Popen[str]) -> int:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        size = path.stat().st_size if path.exists() else 0
        if size >= at_least:
            return size
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    raise AssertionError(f"{path} did not reach {at_least} bytes")


def test_cli_download_shows_progress_and_prints_the_path(
    fake_hub: FakeHub,
    tmp_path: Path,
    starter_sha: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("LEANCODER_DATA_DIR", str(tmp_path / "data"))

    status = main(["download", SPEC, "--endpoint", fake_hub.endpoint])
    out, err = capsys.readouterr()

    assert status == 0
    path = Path(out.strip())
    assert path.is_file() and sha256_of(path) == starter_sha
    assert path.is_relative_to(tmp_path / "cache")
    bars = [line for line in err.splitlines() if line.startswith("[")]
    assert bars and "100.0%" in bars[-1] and "/s" in bars[-1] and "ETA" in bars[-1]
    assert f"SHA-256 matches the hub's ({starter_sha})" in err

    assert main(["download", SPEC, "--endpoint", fake_hub.endpoint, "--json"]) == 0
    assert '"already_present": true' in capsys.readouterr().out


def test_ctrl_c_cancels_cleanly_and_a_rerun_resumes(
    fake_hub: FakeHub, tmp_path: Path, starter_sha: str
) -> None:
    fake_hub.knobs.throttle_bps = 10 * MB
    process = _start_cli_download(fake_hub, tmp_path)
    partial = _partial(tmp_path / "cache", starter_sha)
    _wait_for_bytes(partial, 3 * MB, process)

    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)

    assert process.returncode == 130, err
    assert "Download cancelled" in err and "resumes from there" in err and out == ""
    kept = partial.stat().st_size
    assert kept >= 3 * MB

    fake_hub.knobs.throttle_bps = None
    rerun = _start_cli_download(fake_hub, tmp_path)
    out, err = rerun.communicate(timeout=120)

    assert rerun.returncode == 0, err
    assert "resumed at" in err and sha256_of(Path(out.strip())) == starter_sha
    assert fake_hub.seen("cdn", "GET")[-1].headers["range"] == f"bytes={kept}-"


def test_a_killed_download_resumes_from_its_partial_file(
    fake_hub: FakeHub, hub_network: NetworkSettings, tmp_path: Path, starter_sha: str
) -> None:
    fake_hub.knobs.throttle_bps = 10 * MB
    process = _start_cli_download(fake_hub, tmp_path)
    partial = _partial(tmp_path / "cache", starter_sha)
    _wait_for_bytes(partial, 3 * MB, process)

    process.kill()  # SIGKILL: no cleanup of any kind, as in a crash or a power cut of the app
    process.communicate(timeout=30)
    kept = partial.stat().st_size
    fake_hub.knobs.throttle_bps = None

    result = download_model(SPEC, network=hub_network, cache_dir=tmp_path / "cache")

    assert result.resumed_from == kept > 0
    assert result.sha256 == starter_sha and not partial.exists()
    assert fake_hub.seen("cdn", "GET")[-1].headers["range"] == f"bytes={kept}-"


def test_cli_offline_download_refuses_before_connecting(
    fake_hub: FakeHub,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("LEANCODER_DATA_DIR", str(tmp_path / "data"))

    status = main(["download", SPEC, "--endpoint", fake_hub.endpoint, "--offline"])

    assert status == 2
    assert capsys.readouterr().err.startswith("error: Offline mode is on")
    assert fake_hub.requests == []


# -- naming what to download -------------------------------------------------------------------


def test_catalog_keys_resolve_to_their_repository_file() -> None:
    entry = next(e for e in load_catalog() if e.repo and not e.bundled)

    target = resolve_download_target(entry.key)

    assert (target.repo, target.filename) == (entry.repo, entry.filename)
    assert target.size_hint == entry.size_bytes and target.label == entry.label
    assert target.sha256 == entry.sha256


def test_hub_paths_and_urls_resolve() -> None:
    nested = resolve_download_target("acme/Big-GGUF/Q4_K_M/big-Q4_K_M-00001-of-00002.gguf")
    assert nested.repo == "acme/Big-GGUF"
    assert nested.filename == "Q4_K_M/big-Q4_K_M-00001-of-00002.gguf"
    assert nested.basename == "big-Q4_K_M-00001-of-00002.gguf"
    url = resolve_download_target("https://huggingface.co/acme/x-GGUF/blob/v1.0/x%20q4.gguf")
    assert (url.repo, url.revision, url.filename) == ("acme/x-GGUF", "v1.0", "x q4.gguf")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "Say what to download"),
        ("acme/x-GGUF", "names a repository but no file"),
        ("acme/x-GGUF/model.safetensors", "is not a GGUF file"),
        ("ac me/x/y.gguf", "is not a hub repository id"),
        ("acme/x/../../etc/passwd.gguf", "is not a file path inside a repository"),
        ("https://example.com/just/a/page", "is not a hub file address"),
        ("no-such-model-key", "No catalog entry 'no-such-model-key'"),
    ],
)
def test_bad_names_get_a_clear_message(spec: str, message: str) -> None:
    with pytest.raises(LeanCoderError, match=message):
        resolve_download_target(spec)


def test_the_bundled_starter_is_not_downloaded() -> None:
    bundled = next((e for e in load_catalog() if e.bundled), None)
    if bundled is None:
        pytest.skip("the catalog lists no bundled model")
    with pytest.raises(DownloadError, match="comes with LeanCoder"):
        resolve_download_target(bundled.key)
    assert find_entry(bundled.key) == bundled


def test_a_file_in_a_subfolder_keeps_its_path_in_the_cache(
    fake_hub: FakeHub, hub_network: NetworkSettings, tmp_path: Path, starter_path: Path
) -> None:
    fake_hub.add(REPO, f"Q4/{FILE}", starter_path)

    result = download_model(f"{REPO}/Q4/{FILE}", network=hub_network, cache_dir=tmp_path)

    assert result.path.parts[-2:] == ("Q4", FILE) and result.path.resolve().is_file()
