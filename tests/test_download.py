"""Downloads from a real HTTP server on loopback that speaks the hub's protocol (tests/hub_server),
serving the real starter GGUF: progress, cancel and resume, dropped connections, wrong bytes, a
full disk, offline mode, a proxy, a gated repository and TLS with a private CA."""

from __future__ import annotations

import re
import shutil
import threading
from pathlib import Path

import filelock
import huggingface_hub
import pytest

from app.core.models.download import (
    ChecksumMismatchError,
    DiskSpaceError,
    DownloadCancelled,
    DownloadError,
    DownloadProgress,
    check_free_disk,
    download_model,
)
from app.core.models.download_target import make_target
from app.core.models.network import NetworkSettings, OfflineError
from tests.hub_server import COMMIT, FILE, REPO, SPEC, FakeHub, ForwardProxy, sha256_of
from tests.socket_guard import SocketLog, socket_guard

pytest_plugins = ("tests.download_support",)  # fixtures: fake_hub, hub_network, ...
MB = 1_000_000


def _blob_dir(cache: Path) -> Path:
    return cache / "models--acme--tiny-GGUF" / "blobs"


def _files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.endswith(".lock"))


def test_download_reports_progress_and_lands_in_the_shared_cache(
    fake_hub: FakeHub, hub_network: NetworkSettings, tmp_path: Path, starter_sha: str
) -> None:
    events: list[DownloadProgress] = []
    result = download_model(SPEC, network=hub_network, cache_dir=tmp_path, progress=events.append)

    size = (fake_hub.entries[(REPO, FILE)]).size
    dones = [e.done for e in events]
    assert dones == sorted(dones) and len(dones) >= 2
    assert events[-1].done == events[-1].total == size
    assert all(e.phase == "downloading" and e.speed >= 0 for e in events)
    assert events[-1].speed > 0 and events[-1].eta == 0
    assert result.sha256 == starter_sha == sha256_of(result.path)
    assert result.verified_against == "hub" and result.architecture == "llama"
    assert not result.already_present and result.resumed_from == 0
    # The standard layout: huggingface_hub itself finds the file, with no network.
    assert result.path.is_symlink()
    assert result.path.resolve() == _blob_dir(tmp_path) / starter_sha
    found = huggingface_hub.try_to_load_from_cache(REPO, FILE, cache_dir=tmp_path)
    assert found == str(result.path)
    assert [(r.server, r.method) for r in fake_hub.requests] == [("hub", "HEAD"), ("cdn", "GET")]

    again = download_model(SPEC, network=hub_network, cache_dir=tmp_path)
    assert again.already_present and again.path == result.path
    assert len(fake_hub.seen("cdn")) == 1  # no second transfer


@pytest.mark.parametrize("into", ["cache", "folder"])
def test_cancel_keeps_the_partial_file_and_a_rerun_resumes_with_a_range(
    fake_hub: FakeHub, hub_network: NetworkSettings, tmp_path: Path, starter_sha: str, into: str
) -> None:
    cancel = threading.Event()
    dest = tmp_path / "models" if into == "folder" else None

    def stop_after_10_mb(progress: DownloadProgress) -> None:
        if progress.done >= 10 * MB:
            cancel.set()

    with pytest.raises(DownloadCancelled, match="running it again resumes"):
        download_model(
            SPEC,
            network=hub_network,
            cache_dir=tmp_path,
            dest_dir=dest,
            progress=stop_after_10_mb,
            cancel=cancel,
        )
    leftovers = _files_under(tmp_path)
    assert len(leftovers) == 1 and leftovers[0].name.endswith(".incomplete")
    kept = leftovers[0].stat().st_size
    size = fake_hub.entries[(REPO, FILE)].size
    assert 10 * MB <= kept < size

    events: list[DownloadProgress] = []
    result = download_model(
        SPEC, network=hub_network, cache_dir=tmp_path, dest_dir=dest, progress=events.append
    )

    assert result.resumed_from == kept and result.sha256 == starter_sha
    assert sha256_of(result.path) == starter_sha
    last_get = fake_hub.seen("cdn", "GET")[-1]
    assert last_get.headers["range"] == f"bytes={kept}-"
    assert events[0].phase == "checking" and events[-1].done == size
    first_download = next(e for e in events if e.phase == "downloading")
    assert first_download.done > kept
    assert not any(p.name.endswith(".incomplete") for p in tmp_path.rglob("*"))
    if into == "folder":
        assert result.path == tmp_path / "models" / FILE and not result.path.is_symlink()


def test_a_dropped_connection_resumes_in_the_same_run(
    fake_hub: FakeHub, hub_network: NetworkSettings, tmp_path: Path, starter_sha: str
) -> None:
    fake_hub.knobs.drops, fake_hub.knobs.drop_after = 2, 30 * MB

    result = download_model(SPEC, network=hub_network, cache_dir=tmp_path)

    gets = fake_hub.seen("cdn", "GET")
    assert [g.headers.get("range") for g in gets] == [None, "bytes=30000000-", "bytes=60000000-"]
    assert result.sha256 == starter_sha and sha256_of(result.path) == starter_sha


def test_a_server_that_ignores_range_gets_a_clean_restart(
    fake_hub: FakeHub, hub_network: NetworkSettings, tmp_path: Path, starter_sha: str
) -> None:
    fake_hub.knobs.drops, fake_hub.knobs.drop_after = 1, 20 * MB
    fake_hub.knobs.ignore_range = True  # answers `Range` with 200 and the whole file

    result = download_model(SPEC, network=hub_network, cache_dir=tmp_path)

    assert fake_hub.seen("cdn", "GET")[-1].headers["range"] == "bytes=20000000-"
    assert result.sha256 == starter_sha and sha256_of(result.path) == starter_sha


def test_wrong_bytes_are_detected_and_deleted(
    fake_hub: FakeHub, hub_network: NetworkSettings, tmp_path: Path
) -> None:
    fake_hub.knobs.corrupt = True

    with pytest.raises(ChecksumMismatchError, match=r"arrived damaged.*was deleted"):
        download_model(SPEC, network=hub_network, cache_dir=tmp_path)

    assert _files_under(tmp_path) == []
    assert huggingface_hub.try_to_load_from_cache(REPO, FILE, cache_dir=tmp_path) is None


def test_a_catalog_sha_that_differs_from_the_hub_stops_before_any_byte(
    fake_hub: FakeHub, hub_network: NetworkSettings, tmp_path: Path
) -> None:
    target = make_target(REPO, FILE, sha256="ab" * 32, label="Tiny (Q4)")

    with pytest.raises(ChecksumMismatchError, match="not the file the catalog lists"):
        download_model(target, network=hub_network, cache_dir=tmp_path)

    assert fake_hub.seen("cdn") == [] and _files_under(tmp_path) == []


def test_too_little_disk_space_fails_before_anything_is_written(
    fake_hub: FakeHub, hub_network: NetworkSettings, tmp_path: Path, starter_path: Path
) -> None:
    free = shutil.disk_usage(tmp_path).free
    fake_hub.add("acme/huge-GGUF", "huge.gguf", starter_path, advertised_size=free * 4)

    with pytest.raises(DiskSpaceError, match=r"needs .* but only .* is free"):
        download_model("acme/huge-GGUF/huge.gguf", network=hub_network, cache_dir=tmp_path)

    assert fake_hub.seen("cdn") == []
    assert list(tmp_path.iterdir()) == []


def test_check_free_disk_measures_the_real_disk(tmp_path: Path) -> None:
    free = shutil.disk_usage(tmp_path).free
    check_free_disk(tmp_path / "not" / "yet" / "made", free // 2)
    with pytest.raises(DiskSpaceError, match=str(tmp_path)):
        check_free_disk(tmp_path, free + 1)


def test_offline_mode_opens_no_socket(
    fake_hub: FakeHub, tmp_path: Path, no_sockets: SocketLog
) -> None:
    offline = NetworkSettings(endpoint=fake_hub.endpoint, offline=True)

    with pytest.raises(OfflineError, match="Offline mode is on"):
        download_model(SPEC, network=offline, cache_dir=tmp_path)

    assert no_sockets.connects == [] and no_sockets.lookups == []
    assert fake_hub.requests == []


def test_hf_hub_offline_is_honoured(
    fake_hub: FakeHub, tmp_path: Path, no_sockets: SocketLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    with pytest.raises(OfflineError):
        download_model(
            SPEC, network=NetworkSettings(endpoint=fake_hub.endpoint), cache_dir=tmp_path
        )

    assert no_sockets.connects == [] and fake_hub.requests == []


def test_offline_mode_returns_a_copy_already_downloaded(
    fake_hub: FakeHub, hub_network: NetworkSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = download_model(SPEC, network=hub_network, cache_dir=tmp_path)
    guard = socket_guard(monkeypatch, refuse=True)
    offline = NetworkSettings(endpoint=fake_hub.endpoint, offline=True)

    again = download_model(SPEC, network=offline, cache_dir=tmp_path)

    assert again.path == first.path and again.already_present
    assert guard.connects == []


def test_an_online_download_talks_to_the_configured_hub_only(
    fake_hub: FakeHub, hub_network: NetworkSettings, tmp_path: Path, socket_log: SocketLog
) -> None:
    """No telemetry and no side requests to the public hub (huggingface_hub's user-agent code
    would fetch an agent list from huggingface.co), only the mirror and its CDN."""
    download_model(SPEC, network=hub_network, cache_dir=tmp_path)

    assert socket_log.connects, "the recorder saw the download's connections"
    assert socket_log.hosts() == {"127.0.0.1"}


def test_requests_go_through_the_configured_proxy(
    fake_hub: FakeHub, tmp_path: Path, starter_sha: str
) -> None:
    with ForwardProxy().running() as proxy:
        settings = NetworkSettings(endpoint=fake_hub.endpoint, proxy=proxy.url)
        result = download_model(SPEC, network=settings, cache_dir=tmp_path)

    assert result.sha256 == starter_sha
    relayed = [(r.method, r.path) for r in proxy.requests]
    assert relayed == [
        ("HEAD", f"{fake_hub.endpoint}/{REPO}/resolve/main/{FILE}"),
        ("GET", f"{fake_hub.cdn_base}/blobs/{starter_sha}"),
    ]
    assert len(fake_hub.requests) == 2  # everything the hub saw came through the proxy


def test_a_dead_proxy_gives_a_clear_message(fake_hub: FakeHub, tmp_path: Path) -> None:
    with ForwardProxy().running() as proxy:
        dead = proxy.url  # nothing listens there once the proxy has stopped
    settings = NetworkSettings(endpoint=fake_hub.endpoint, proxy=dead)

    with pytest.raises(DownloadError, match=f"through the proxy {re.escape(dead)}"):
        download_model(SPEC, network=settings, cache_dir=tmp_path)

    assert fake_hub.requests == []


@pytest.mark.usefixtures("no_token")
def test_a_gated_repo_needs_the_token_and_the_token_never_reaches_the_cdn(
    fake_hub: FakeHub, tmp_path: Path, starter_path: Path, starter_sha: str
) -> None:
    fake_hub.add("acme/gated-GGUF", "gated.gguf", starter_path, sha256=starter_sha, token="hf_ok")
    spec = "acme/gated-GGUF/gated.gguf"

    with pytest.raises(DownloadError, match="gated repository"):
        download_model(
            spec, network=NetworkSettings(endpoint=fake_hub.endpoint), cache_dir=tmp_path
        )
    wrong = NetworkSettings(endpoint=fake_hub.endpoint, token="hf_wrong")
    with pytest.raises(DownloadError, match="refused the access token"):
        download_model(spec, network=wrong, cache_dir=tmp_path)
    right = NetworkSettings(endpoint=fake_hub.endpoint, token="hf_ok")
    result = download_model(spec, network=right, cache_dir=tmp_path)

    assert result.sha256 == starter_sha
    assert fake_hub.seen("hub")[-1].headers["authorization"] == "Bearer hf_ok"
    assert all("authorization" not in r.headers for r in fake_hub.seen("cdn"))


def test_missing_repo_and_file_are_named(
    fake_hub: FakeHub, hub_network: NetworkSettings, tmp_path: Path
) -> None:
    with pytest.raises(DownloadError, match="Repository acme/nothing was not found"):
        download_model("acme/nothing/x.gguf", network=hub_network, cache_dir=tmp_path)
    with pytest.raises(DownloadError, match=f"{REPO} has no file other.gguf"):
        download_model(f"{REPO}/other.gguf", network=hub_network, cache_dir=tmp_path)
    with pytest.raises(DownloadError, match="no revision 'v9'"):
        download_model(make_target(REPO, FILE, "v9"), network=hub_network, cache_dir=tmp_path)


def test_a_pinned_commit_downloads_without_a_ref(
    fake_hub: FakeHub, hub_network: NetworkSettings, tmp_path: Path, starter_sha: str
) -> None:
    result = download_model(
        make_target(REPO, FILE, COMMIT), network=hub_network, cache_dir=tmp_path
    )

    assert result.path.parent.name == COMMIT and result.sha256 == starter_sha
    assert not (tmp_path / "models--acme--tiny-GGUF" / "refs" / COMMIT).exists()


def test_a_second_downloader_of_the_same_file_is_told_so(
    fake_hub: FakeHub, hub_network: NetworkSettings, tmp_path: Path, starter_sha: str
) -> None:
    lock_path = tmp_path / ".locks" / "models--acme--tiny-GGUF" / f"{starter_sha}.lock"
    lock_path.parent.mkdir(parents=True)
    with (
        filelock.FileLock(str(lock_path)),
        pytest.raises(DownloadError, match="already being downloaded"),
    ):
        download_model(SPEC, network=hub_network, cache_dir=tmp_path)


def test_huggingface_hubs_own_download_agrees_with_ours(
    fake_hub: FakeHub, hub_network: NetworkSettings, tmp_path: Path, starter_sha: str
) -> None:
    """The fake hub speaks the protocol huggingface_hub expects, and both share one cache."""
    from app.core.models.network import apply_network_settings

    apply_network_settings(hub_network)
    theirs = huggingface_hub.hf_hub_download(
        REPO, FILE, cache_dir=tmp_path, endpoint=fake_hub.endpoint
    )

    ours = download_model(SPEC, network=hub_network, cache_dir=tmp_path)

    assert ours.already_present and ours.path == Path(theirs)
    assert sha256_of(Path(theirs)) == starter_sha
