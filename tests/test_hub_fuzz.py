"""Fuzz the hub client and the byte fetcher with hypothesis, against the real loopback hub
(tests/hub_server.py) serving a small real GGUF: random metadata headers (X-Repo-Commit, ETag,
X-Linked-ETag, X-Linked-Size, Location), then a random run of bent CDN replies (status codes,
Content-Range, ETag, Content-Length, bodies shorter or longer than promised, garbage), after which
the CDN behaves again.

Whatever the server does, a download either publishes exactly the right bytes (when the hub's
SHA-256 is the real one) or raises a LeanCoderError with a sentence; it never writes outside its
cache or folder, never grows a partial past the announced size, and ends within a few seconds.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.core.errors import LeanCoderError
from app.core.models import range_fetch
from app.core.models.download import download_model
from app.core.models.network import NetworkSettings
from tests.download_support import write_small_gguf
from tests.hub_server import COMMIT, FakeHub, Knobs, Misbehave, Scripted, sha256_of

REPO = "acme/fuzz-GGUF"
FILE = "fuzz.gguf"
SIZE = 48_000
EXAMPLE_LIMIT_S = 5.0
HEADER_TEXT = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=60)
PATH_TEXT = HEADER_TEXT.map(lambda t: "/" + t.lstrip("/\\"))
LOCATIONS = ["file:///etc/passwd", "/blobs/x", "http://127.0.0.1:1/x", "", "::::", "ftp://127.0.0.1/x",
             "http://127.0.0.1:99999/x", "javascript:alert(1)"]  # fmt: skip


@pytest.fixture(scope="module")
def fuzz_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeHub]:
    served = write_small_gguf(tmp_path_factory.mktemp("fuzz") / "served.gguf", SIZE, seed=7)
    hub = FakeHub()
    hub.add(REPO, FILE, served)
    with hub.running():
        yield hub


def _head_overrides(sha: str, size: int, cdn: str) -> st.SearchStrategy[dict[str, str | None]]:
    values: dict[str, st.SearchStrategy[str | None]] = {
        "X-Repo-Commit": st.sampled_from(
            [COMMIT.upper(), "../../../outside", "../../../outside/x", "..\\..\\..\\outside",
             "/tmp/x", "", "0" * 39, None]
        ),
        "X-Linked-Etag": st.sampled_from(
            [sha, f'W/"{sha}"', '"../../outside"', '""', '"0ther"', None, f'"{"ab" * 32}"']
        ),
        "ETag": st.sampled_from(['"..', '"plain-etag"', None]),
        "X-Linked-Size": st.sampled_from(
            [str(size - 1), str(size + 1), "0", "-1", "abc", str(10**15), None]
        ),
        # Never another host name: a name lookup would leave loopback (and take its time).
        "Location": st.sampled_from([*LOCATIONS, None, f"{cdn}/nope"]) | PATH_TEXT,
    }
    # Mostly the listed values (each one a known way to lie), sometimes any printable text.
    weighted = {k: st.one_of(v, v, v, HEADER_TEXT) for k, v in values.items()}
    keys = st.dictionaries(st.sampled_from(sorted(values)), st.none(), min_size=1, max_size=2)
    return keys.flatmap(lambda chosen: st.fixed_dictionaries({k: weighted[k] for k in chosen}))


def _announced(head: dict[str, str | None]) -> int:
    value = head.get("X-Linked-Size") or ""
    return int(value) if value.isdigit() else 0


BENT_REPLY = st.builds(
    Misbehave,
    status=st.sampled_from([200, 206, 206, 206, 204, 301, 404, 416, 418, 500, 503]),
    body=st.sampled_from(["right", "short", "long", "empty", "garbage"]),
    content_range=st.sampled_from(["right", "wrong_start", "garbage", "none", "wrong_total"]),
    etag=st.sampled_from(["right", "other", "weak", "none"]),
    length=st.sampled_from(["body", "more", "none"]),
)
RAW_REPLY = st.builds(
    Scripted,
    status=st.integers(100, 599).filter(lambda s: s not in (101,)),
    headers=st.fixed_dictionaries(
        {},
        optional={
            "Content-Range": HEADER_TEXT,
            "ETag": HEADER_TEXT,
            "Content-Encoding": st.sampled_from(["gzip", "br", "zstd", "identity", "x"]),
            "Location": st.sampled_from(LOCATIONS) | PATH_TEXT,
        },
    ),
    body=st.binary(max_size=256),
    length=st.sampled_from([None, -1, 0, 10, 10**6]),
)


FUZZ = settings(
    max_examples=80,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@FUZZ
@given(data=st.data())
def test_whatever_metadata_the_hub_sends_nothing_lands_outside_the_cache(
    fuzz_hub: FakeHub, data: st.DataObject, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lying metadata, then a well-behaved CDN: every example reaches the cache code."""
    entry = fuzz_hub.entries[(REPO, FILE)]
    head = data.draw(_head_overrides(entry.sha256, entry.size, fuzz_hub.cdn_base), "head")
    _download_and_check(fuzz_hub, monkeypatch, head, [], into_folder=False)


@FUZZ
@given(data=st.data())
def test_whatever_the_cdn_answers_the_download_is_right_or_refused_cleanly(
    fuzz_hub: FakeHub, data: st.DataObject, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Honest metadata, then a run of bent or random CDN replies (then an honest CDN)."""
    script = data.draw(st.lists(BENT_REPLY | RAW_REPLY, max_size=7), "cdn replies")
    into_folder = data.draw(st.booleans(), "into a folder")
    _download_and_check(fuzz_hub, monkeypatch, {}, script, into_folder)


def _download_and_check(
    fuzz_hub: FakeHub,
    monkeypatch: pytest.MonkeyPatch,
    head: dict[str, str | None],
    script: list[Scripted | Misbehave],
    into_folder: bool,
) -> None:
    monkeypatch.setattr(range_fetch, "RETRY_BASE_S", 0.0)
    entry = fuzz_hub.entries[(REPO, FILE)]
    fuzz_hub.knobs = Knobs(head=head, cdn_script=list(script))
    fuzz_hub.requests.clear()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        cache, folder, outside = root / "cache", root / "models", root / "outside"
        outside.mkdir()
        (outside / "keep.txt").write_text("mine\n")
        began = time.monotonic()
        try:
            result = download_model(
                f"{REPO}/{FILE}",
                network=NetworkSettings(endpoint=fuzz_hub.endpoint),
                cache_dir=cache,
                dest_dir=folder if into_folder else None,
            )
        except LeanCoderError as exc:
            assert str(exc) and "Traceback" not in str(exc)
            result = None
        elapsed = time.monotonic() - began

        assert elapsed < EXAMPLE_LIMIT_S, f"took {elapsed:.1f} s"
        assert [p.name for p in outside.iterdir()] == ["keep.txt"]
        assert (outside / "keep.txt").read_text() == "mine\n"
        written = [p for p in root.rglob("*") if p.is_file() or p.is_symlink()]
        allowed = (folder,) if into_folder else (cache,)
        for path in written:
            assert path.is_relative_to(outside) or any(path.is_relative_to(a) for a in allowed)
            if path.name.endswith(".incomplete"):  # never past what the hub announced
                assert path.stat().st_size <= max(entry.size, _announced(head))
        if result is not None:
            assert result.path.is_file() and any(result.path.is_relative_to(a) for a in allowed)
            if result.verified_against == "hub":  # the hub's SHA-256 was checked: exact bytes
                assert sha256_of(result.path) == entry.sha256
    gets = fuzz_hub.seen("cdn", "GET")
    assert len(gets) <= len(script) + 2 * range_fetch.MAX_TRIES_WITHOUT_PROGRESS + 4
