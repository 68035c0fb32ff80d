"""A hub or mirror that lies, against the real download code and the real loopback hub
(tests/hub_server.py): server-supplied names that climb out of the cache, responses that add no
bytes, a 416 on resume, a plain (non-LFS) file that changes between attempts, a partial larger
than the file, and names in a spec that mean something else on another OS."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from app.core.errors import LeanCoderError
from app.core.models import range_fetch
from app.core.models.download import DownloadError, download_model
from app.core.models.download_target import make_target, resolve_download_target
from app.core.models.hub_cache import UnsafeCachePathError
from app.core.models.network import NetworkSettings
from tests.hub_server import COMMIT, FILE, REPO, SPEC, FakeHub, Scripted, sha256_of

pytest_plugins = ("tests.download_support",)  # fixtures: fake_hub, hub_network, small_gguf
MB = 1_000_000
REPO_DIR = "models--acme--tiny-GGUF"


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> float:
    """A short back-off base, so the retry budget runs out in about a second."""
    monkeypatch.setattr(range_fetch, "RETRY_BASE_S", 0.05)
    return 0.05


def _tree(folder: Path) -> dict[str, bytes | str]:
    """Every entry under `folder`: file bytes, or where a link points."""
    found: dict[str, bytes | str] = {}
    for path in sorted(folder.rglob("*")):
        key = str(path.relative_to(folder))
        if path.is_symlink():
            found[key] = "-> " + os.readlink(path)
        elif path.is_file():
            found[key] = path.read_bytes()
    return found


# -- names from the server ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "commit",
    [
        "../../../home",  # snapshots/<commit>/tiny.gguf would be <tmp>/home/tiny.gguf
        "..\\..\\..\\home",
        "/tmp/elsewhere",
        "0123456789abcdef0123456789abcdef0123456",  # 39 digits
        "0123456789abcdef0123456789abcdef0123456z",
    ],
)
def test_a_commit_that_is_not_a_commit_id_writes_nothing_and_replaces_nothing(
    fake_hub: FakeHub, hub_network: NetworkSettings, tmp_path: Path, commit: str
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / FILE).write_text("the user's own file\n")
    before = _tree(tmp_path)
    fake_hub.knobs.head = {"X-Repo-Commit": commit}

    with pytest.raises(DownloadError, match="is not a commit id"):
        download_model(SPEC, network=hub_network, cache_dir=tmp_path / "cache")

    assert _tree(tmp_path) == before
    assert fake_hub.seen("cdn") == []


@pytest.mark.parametrize("etag", ["../../../home/tiny.gguf", "..", ".", "a/b", "a\\b", "x" * 200])
def test_an_etag_that_is_not_a_plain_name_is_refused(
    fake_hub: FakeHub, hub_network: NetworkSettings, tmp_path: Path, etag: str
) -> None:
    fake_hub.knobs.head = {"X-Linked-Etag": f'"{etag}"', "ETag": f'"{etag}"'}

    with pytest.raises(DownloadError, match="unusable ETag"):
        download_model(SPEC, network=hub_network, cache_dir=tmp_path / "cache")

    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("header", "value", "message"),
    [
        ("Location", "file:///etc/passwd", "unusable address"),
        ("Location", "http://", "redirect loop"),
        ("Location", "http://127.0.0.1:notaport/x", "cannot be read"),
        ("X-Linked-Size", "lots", "did not say how big"),
        ("X-Linked-Size", "-5", "did not say how big"),
        ("X-Repo-Commit", None, "does not answer like a Hugging Face hub"),
    ],
)
def test_unusable_metadata_gets_a_clear_message_before_any_byte(
    fake_hub: FakeHub,
    hub_network: NetworkSettings,
    tmp_path: Path,
    header: str,
    value: str | None,
    message: str,
) -> None:
    fake_hub.knobs.head = {header: value}

    with pytest.raises(DownloadError, match=message):
        download_model(SPEC, network=hub_network, cache_dir=tmp_path)

    assert fake_hub.seen("cdn") == [] and list(tmp_path.iterdir()) == []


# -- what is already in the snapshot folder ----------------------------------------------------


def _pointer(cache: Path) -> Path:
    return cache / REPO_DIR / "snapshots" / COMMIT / FILE


def test_something_in_the_way_of_the_snapshot_link_is_left_alone(
    fake_hub: FakeHub, hub_network: NetworkSettings, tmp_path: Path, starter_sha: str
) -> None:
    cache = tmp_path / "cache"
    pointer = _pointer(cache)
    pointer.mkdir(parents=True)  # a folder where the link should go
    (pointer / "keep.txt").write_text("not LeanCoder's\n")

    with pytest.raises(UnsafeCachePathError, match=r"is in the way.*left alone"):
        download_model(SPEC, network=hub_network, cache_dir=cache)

    assert (pointer / "keep.txt").read_text() == "not LeanCoder's\n"
    blob = cache / REPO_DIR / "blobs" / starter_sha
    assert sha256_of(blob) == starter_sha  # the verified bytes are kept for the next run


def test_a_foreign_link_is_left_alone_and_a_stale_cache_link_is_replaced(
    fake_hub: FakeHub, hub_network: NetworkSettings, tmp_path: Path, starter_sha: str
) -> None:
    cache = tmp_path / "cache"
    pointer = _pointer(cache)
    pointer.parent.mkdir(parents=True)
    os.symlink(tmp_path / "somewhere" / "else.gguf", pointer)  # dangling, outside the cache

    with pytest.raises(UnsafeCachePathError, match="link LeanCoder did not make"):
        download_model(SPEC, network=hub_network, cache_dir=cache)
    assert os.readlink(pointer) == str(tmp_path / "somewhere" / "else.gguf")

    pointer.unlink()
    os.symlink("../../blobs/" + "0" * 64, pointer)  # a stale link into this repo's blobs
    result = download_model(SPEC, network=hub_network, cache_dir=cache)

    assert result.path == pointer and pointer.resolve().name == starter_sha
    assert len(fake_hub.seen("cdn", "GET")) == 1  # the blob from the first run was reused


# -- responses that add no bytes ----------------------------------------------------------------


def test_empty_206_replies_use_up_the_retry_budget_with_back_off(
    fake_hub: FakeHub, hub_network: NetworkSettings, tmp_path: Path, fast_retries: float
) -> None:
    fake_hub.knobs.drops, fake_hub.knobs.drop_after = 1, 1 * MB
    fake_hub.knobs.empty_206 = True

    with pytest.raises(DownloadError, match=r"without any of the file's bytes.*gave up after 5"):
        download_model(SPEC, network=hub_network, cache_dir=tmp_path)

    gets = fake_hub.seen("cdn", "GET")
    assert len(gets) == 1 + range_fetch.MAX_TRIES_WITHOUT_PROGRESS
    gaps = [b.at - a.at for a, b in itertools.pairwise(gets[1:])]
    assert all(gap >= fast_retries * 2 ** (k + 1) * 0.9 for k, gap in enumerate(gaps)), gaps
    partial = tmp_path / REPO_DIR / "blobs"
    kept = [p for p in partial.iterdir() if p.name.endswith(".incomplete")]
    assert [p.stat().st_size for p in kept] == [1 * MB]  # kept for the next run


@pytest.mark.parametrize("status", [500, 503, 429])
def test_server_errors_are_retried_then_the_download_finishes(
    fake_hub: FakeHub,
    hub_network: NetworkSettings,
    tmp_path: Path,
    starter_sha: str,
    status: int,
    fast_retries: float,
) -> None:
    fake_hub.knobs.cdn_script = [Scripted(status, body=b"busy")] * 3

    result = download_model(SPEC, network=hub_network, cache_dir=tmp_path)

    assert result.sha256 == starter_sha and len(fake_hub.seen("cdn", "GET")) == 4


def test_a_body_longer_than_the_file_is_cut_off_and_dropped(
    hub_network: NetworkSettings,
    fake_hub: FakeHub,
    tmp_path: Path,
    small_gguf: Callable[..., Path],
) -> None:
    served = small_gguf(200_000)
    fake_hub.add(REPO, "small.gguf", served)
    endless = served.read_bytes() + b"\0" * 500_000
    fake_hub.knobs.cdn_script = [Scripted(200, body=endless)]

    with pytest.raises(DownloadError, match="more bytes than the 199,"):
        download_model(f"{REPO}/small.gguf", network=hub_network, cache_dir=tmp_path / "cache")

    cache = tmp_path / "cache"
    assert [p for p in cache.rglob("*") if p.is_file() and "lock" not in p.name] == []


# -- resuming ------------------------------------------------------------------------------------


def test_a_416_on_resume_drops_the_partial_and_starts_over_once(
    fake_hub: FakeHub, hub_network: NetworkSettings, tmp_path: Path, starter_sha: str
) -> None:
    fake_hub.knobs.drops, fake_hub.knobs.drop_after = 1, 1 * MB
    fake_hub.knobs.range_416 = 1

    result = download_model(SPEC, network=hub_network, cache_dir=tmp_path)

    ranges = [g.headers.get("range") for g in fake_hub.seen("cdn", "GET")]
    assert ranges == [None, "bytes=1000000-", None]
    assert result.sha256 == starter_sha == sha256_of(result.path)
    partial = tmp_path / REPO_DIR / "blobs" / f"{starter_sha}.incomplete"
    assert len(result.notes) == 1 and "HTTP 416" in result.notes[0]
    assert str(partial) in result.notes[0] and "1,000,000 bytes" in result.notes[0]


def test_a_second_416_deletes_the_partial_and_says_so(
    fake_hub: FakeHub, hub_network: NetworkSettings, tmp_path: Path
) -> None:
    fake_hub.knobs.drops, fake_hub.knobs.drop_after = 2, 1 * MB
    fake_hub.knobs.range_416 = 2

    with pytest.raises(DownloadError, match=r"HTTP 416.*even after starting over.*was deleted"):
        download_model(SPEC, network=hub_network, cache_dir=tmp_path)

    assert len(fake_hub.seen("cdn", "GET")) == 4
    assert not any(p.name.endswith(".incomplete") for p in tmp_path.rglob("*"))


def test_a_partial_larger_than_the_file_is_restarted(
    fake_hub: FakeHub, hub_network: NetworkSettings, tmp_path: Path, starter_sha: str
) -> None:
    size = fake_hub.entries[(REPO, FILE)].size
    blobs = tmp_path / REPO_DIR / "blobs"
    blobs.mkdir(parents=True)
    (blobs / f"{starter_sha}.incomplete").write_bytes(b"\xaa" * (size + 4096))

    result = download_model(SPEC, network=hub_network, cache_dir=tmp_path)

    assert result.sha256 == starter_sha and result.resumed_from == 0
    assert [g.headers.get("range") for g in fake_hub.seen("cdn", "GET")] == [None]


@pytest.mark.parametrize("server_honours_if_range", [True, False])
def test_a_plain_file_that_changes_between_attempts_is_never_published_half_and_half(
    fake_hub: FakeHub,
    hub_network: NetworkSettings,
    tmp_path: Path,
    small_gguf: Callable[..., Path],
    server_honours_if_range: bool,
) -> None:
    old, new = small_gguf(3 * MB, seed=1), small_gguf(3 * MB, seed=2)
    entry = fake_hub.add(REPO, "plain.gguf", old, lfs=False)
    old_etag = entry.etag
    fake_hub.knobs.drops, fake_hub.knobs.drop_after = 1, 1 * MB
    fake_hub.knobs.swap_on_drop = new
    fake_hub.knobs.ignore_if_range = not server_honours_if_range

    result = download_model(f"{REPO}/plain.gguf", network=hub_network, cache_dir=tmp_path)

    assert result.sha256 == sha256_of(new) == sha256_of(result.path)
    assert result.verified_against is None  # a plain file has no SHA-256 on the hub
    gets = fake_hub.seen("hub", "GET")  # a plain file's bytes come from the hub itself
    assert gets[1].headers["range"] == "bytes=1000000-"
    assert gets[1].headers["if-range"] == f'"{old_etag}"'
    assert len(result.notes) == 1 and "changed on the server" in result.notes[0]
    assert not any(p.name.endswith(".incomplete") for p in tmp_path.rglob("*"))


def test_a_plain_file_resumes_when_it_did_not_change(
    fake_hub: FakeHub,
    hub_network: NetworkSettings,
    tmp_path: Path,
    small_gguf: Callable[..., Path],
) -> None:
    served = small_gguf(3 * MB, seed=3)
    fake_hub.add(REPO, "plain.gguf", served, lfs=False)
    fake_hub.knobs.drops, fake_hub.knobs.drop_after = 1, 1 * MB

    result = download_model(f"{REPO}/plain.gguf", network=hub_network, cache_dir=tmp_path)

    assert result.sha256 == sha256_of(served) and result.notes == ()
    assert [g.headers.get("range") for g in fake_hub.seen("hub", "GET")] == [
        None,
        "bytes=1000000-",
    ]


# -- names in a spec ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec",
    [
        "acme/x-GGUF/..\\..\\x.gguf",
        "acme/x-GGUF/sub\\..\\..\\x.gguf",
        "acme/x-GGUF/C:\\Users\\x.gguf",
        "acme/x-GGUF/C:x.gguf",
        "acme/x-GGUF/a\x00b.gguf",
        "acme/x-GGUF//etc/x.gguf",
        "acme/x-GGUF/./x.gguf",
        "acme/x-GGUF/a/../x.gguf",
        "https://huggingface.co/acme/x-GGUF/resolve/main/%2e%2e%5c%2e%2e%5cx.gguf",
        "https://huggingface.co/acme/x-GGUF/resolve/main/..%2F..%2Fx.gguf",
        "acme\\..\\x/y/z.gguf",
        "../acme/x.gguf",
    ],
)
def test_paths_that_escape_on_some_os_are_refused(spec: str) -> None:
    with pytest.raises(LeanCoderError, match=r"not a file path inside a repository|not a hub repo"):
        resolve_download_target(spec)


@pytest.mark.parametrize("revision", ["..\\..", "a/../b", "C:\\x", "/abs", "main\x00", ""])
def test_revisions_that_escape_are_refused(revision: str) -> None:
    with pytest.raises(DownloadError, match="is not a valid revision"):
        make_target(REPO, FILE, revision)


def test_a_hand_made_target_cannot_get_around_the_checks(tmp_path: Path) -> None:
    from app.core.models.download_target import DownloadTarget
    from app.core.models.hub_cache import cache_placement, folder_placement

    sneaky = DownloadTarget(repo=REPO, filename="..\\..\\x.gguf")
    with pytest.raises(UnsafeCachePathError, match="not a safe file name"):
        cache_placement(tmp_path, sneaky, COMMIT, "e" * 64)
    with pytest.raises(UnsafeCachePathError, match="not a safe file name"):
        folder_placement(tmp_path, DownloadTarget(repo=REPO, filename="../x.gguf"), "e" * 64)
    with pytest.raises(UnsafeCachePathError, match="not a safe revision"):
        cache_placement(tmp_path, DownloadTarget(REPO, FILE, revision="../../x"), COMMIT, "e" * 64)
