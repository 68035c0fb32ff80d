"""Download a GGUF from the hub (or a mirror) safely: resumable, cancellable, checked.

Metadata comes from huggingface_hub (`get_hf_file_metadata`, through the client that
`app.core.models.network` configures); the bytes are fetched here, with Range requests into a
partial file with a stable name, because huggingface_hub 2.x deletes its partial file on any
failure and offers no cancel. The steps:

1. HEAD the file: commit, ETag (for an LFS file, `X-Linked-ETag` is its SHA-256), size, CDN URL.
2. Check free disk space for what is still missing, before a byte is written.
3. Continue the partial file if there is one (its bytes are hashed first), else start it.
4. Stream with a Range header; a dropped connection or a stalled read resumes where it stopped.
5. Compare the SHA-256 with the hub's (huggingface_hub does not): a mismatch deletes the file.
6. Check the GGUF header, then move the file into the Hugging Face cache (or the chosen folder).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Literal, Protocol

import filelock
import httpx2

from app.core.errors import ModelFileError
from app.core.gguf.header import read_header
from app.core.models import hub_cache
from app.core.models.download_target import DownloadError, DownloadTarget, resolve_download_target
from app.core.models.hub_client import (
    HubFile,
    connection_message,
    fetch_file_metadata,
    request_headers,
)
from app.core.models.network import NetworkSettings, load_network_settings, require_online
from app.core.units import human_bytes

__all__ = [
    "CancelFlag",
    "ChecksumMismatchError",
    "DiskSpaceError",
    "DownloadCancelled",
    "DownloadError",
    "DownloadProgress",
    "DownloadResult",
    "DownloadTarget",
    "check_free_disk",
    "download_model",
    "resolve_download_target",
]


HASH_BLOCK = 8 * 1024 * 1024
MAX_TRIES_WITHOUT_PROGRESS = 5
DISK_MARGIN_BYTES = 64 * 1024 * 1024  # leave the disk usable after the download
PROGRESS_INTERVAL_S = 0.1

Phase = Literal["checking", "downloading"]


class CancelFlag(Protocol):
    """Anything with `is_set()`, such as `threading.Event`."""

    def is_set(self) -> bool: ...


class DownloadCancelled(DownloadError):
    """The user cancelled; the partial file is kept so the next run resumes."""


class ChecksumMismatchError(DownloadError):
    """The bytes do not match the hub's SHA-256; the file was deleted."""


class DiskSpaceError(DownloadError):
    """Not enough free disk space for the download (nothing was written)."""


@dataclass(frozen=True, slots=True)
class DownloadProgress:
    phase: Phase  # "checking": hashing a partial file before resuming it
    done: int  # bytes on disk (or hashed, while checking)
    total: int | None  # None when the server did not say
    speed: float  # bytes per second over the last few seconds
    eta: float | None  # seconds left, when it can be estimated

    @property
    def fraction(self) -> float | None:
        return min(1.0, self.done / self.total) if self.total else None


@dataclass(frozen=True, slots=True)
class DownloadResult:
    path: Path
    size_bytes: int
    sha256: str | None  # computed from the bytes (None when the file was already there)
    verified_against: Literal["hub", "catalog"] | None  # what the SHA-256 was checked against
    resumed_from: int  # bytes that were on disk before this run
    already_present: bool
    architecture: str
    commit: str | None


ProgressCallback = Callable[[DownloadProgress], None]
Hasher = Any  # hashlib's object type is private (`_hashlib.HASH`)


def check_free_disk(folder: Path, needed: int) -> None:
    """Raise DiskSpaceError when the disk holding `folder` has less than `needed` bytes free."""
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if needed + DISK_MARGIN_BYTES > free:
        raise DiskSpaceError(
            f"Not enough disk space in {folder}: the download needs {human_bytes(needed)} "
            f"but only {human_bytes(free)} is free. Free some space or choose another folder."
        )


def download_model(
    target: DownloadTarget | str,
    *,
    network: NetworkSettings | None = None,
    dest_dir: Path | None = None,
    cache_dir: Path | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelFlag | None = None,
) -> DownloadResult:
    """Download `target` into the Hugging Face cache (default) or into `dest_dir`.

    Raises DownloadCancelled (partial kept), ChecksumMismatchError (file deleted), DiskSpaceError
    (nothing written), OfflineError (no connection attempted), or DownloadError."""
    if isinstance(target, str):
        target = resolve_download_target(target)
    network = (network or load_network_settings()).validated()
    cache = cache_dir or hub_cache.default_hub_cache()
    if network.is_offline():
        local = (dest_dir / target.basename) if dest_dir else hub_cache.cached_file(cache, target)
        if local is not None and local.is_file():
            return _present(local, commit=None)
        require_online(network, f"download {target.display}")
    hub_file = fetch_file_metadata(target, network)
    if target.sha256 and hub_file.sha256 and target.sha256 != hub_file.sha256:
        raise ChecksumMismatchError(
            f"The hub's {target.display} (SHA-256 {hub_file.sha256[:12]}…) is not the file the "
            f"catalog lists ({target.sha256[:12]}…); it may have changed upstream. Nothing was "
            "downloaded."
        )
    place = (
        hub_cache.folder_placement(dest_dir, target, hub_file.etag)
        if dest_dir
        else hub_cache.cache_placement(cache, target, hub_file.commit, hub_file.etag)
    )
    if hub_cache.is_complete(place):
        if dest_dir and hub_file.size is not None and place.final.stat().st_size != hub_file.size:
            raise DownloadError(
                f"{place.final} already exists and is not the hub's file; move it away first."
            )
        return _present(place.path, commit=hub_file.commit)
    if place.pointer is not None and place.final.is_file():  # blob there, snapshot link missing
        hub_cache.link_pointer(place)
        return _present(place.path, commit=hub_file.commit)
    if hub_file.size is not None:  # before anything is created on disk
        have = place.partial.stat().st_size if place.partial.exists() else 0
        check_free_disk(place.partial.parent, max(0, hub_file.size - have))
    place.partial.parent.mkdir(parents=True, exist_ok=True)
    place.lock.parent.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(str(place.lock), timeout=0, mode=0o664)
    try:
        lock.acquire()
    except filelock.Timeout:
        raise DownloadError(
            f"{target.display} is already being downloaded by another LeanCoder window or tool."
        ) from None
    try:
        return _download_locked(target, hub_file, network, place, progress, cancel)
    finally:
        lock.release()
        if dest_dir:
            place.lock.unlink(missing_ok=True)


def _present(path: Path, commit: str | None) -> DownloadResult:
    return DownloadResult(
        path=path,
        size_bytes=path.stat().st_size,
        sha256=None,
        verified_against=None,
        resumed_from=0,
        already_present=True,
        architecture=read_header(path).architecture,
        commit=commit,
    )


def _download_locked(
    target: DownloadTarget,
    hub_file: HubFile,
    network: NetworkSettings,
    place: hub_cache.Placement,
    progress: ProgressCallback | None,
    cancel: CancelFlag | None,
) -> DownloadResult:
    size = hub_file.size
    have = place.partial.stat().st_size if place.partial.exists() else 0
    if size is not None and have > size:  # not a prefix of this file: start over
        place.partial.unlink()
        have = 0
    meter = _Meter(progress, size)
    hasher = hashlib.sha256()
    with place.partial.open("ab") as out:
        if have:
            _hash_existing(place.partial, have, hasher, meter, cancel)
        done, hasher = _transfer(hub_file, network, out, have, hasher, meter, cancel)
        out.flush()
        os.fsync(out.fileno())
    if size is not None and done != size:
        place.partial.unlink(missing_ok=True)
        raise DownloadError(
            f"The server sent {done:,} bytes of {target.display} instead of {size:,}; the partial "
            "file was deleted, try again."
        )
    digest = hasher.hexdigest()
    expected = hub_file.sha256 or target.sha256
    if expected and digest != expected:
        place.partial.unlink(missing_ok=True)
        says = "the hub says" if hub_file.sha256 else "the catalog says"
        raise ChecksumMismatchError(
            f"{target.display} arrived damaged: its SHA-256 is {digest[:12]}… but {says} "
            f"{expected[:12]}…. The file was deleted; download it again."
        )
    try:
        header = read_header(place.partial)
    except ModelFileError as exc:
        place.partial.unlink(missing_ok=True)
        raise DownloadError(
            f"{target.display} is not a usable GGUF model ({exc}); the file was deleted."
        ) from exc
    path = hub_cache.publish(place, hub_file.commit)
    return DownloadResult(
        path=path,
        size_bytes=done,
        sha256=digest,
        verified_against=("hub" if hub_file.sha256 else "catalog") if expected else None,
        resumed_from=have,
        already_present=False,
        architecture=header.architecture,
        commit=hub_file.commit,
    )


def _hash_existing(
    partial: Path, have: int, hasher: Hasher, meter: _Meter, cancel: CancelFlag | None
) -> None:
    with partial.open("rb") as stream:
        hashed = 0
        while hashed < have:
            _check_cancel(cancel, partial)
            block = stream.read(min(HASH_BLOCK, have - hashed))
            if not block:
                break
            hasher.update(block)
            hashed += len(block)
            meter.report("checking", hashed, total=have)


def _transfer(
    hub_file: HubFile,
    network: NetworkSettings,
    out: BinaryIO,
    have: int,
    hasher: Hasher,
    meter: _Meter,
    cancel: CancelFlag | None,
) -> tuple[int, Hasher]:
    """Append the rest of the file to `out`; returns the bytes now on disk and their hash (a
    fresh one when the server ignored the Range header and sent the whole file again)."""
    from huggingface_hub import get_session

    headers = request_headers(network, hub_file)
    done = have
    meter.start(done)
    failures = 0
    host = httpx2.URL(hub_file.location).host
    while hub_file.size is None or done < hub_file.size:
        _check_cancel(cancel, Path(out.name))
        request_headers_now = dict(headers, Range=f"bytes={done}-") if done else headers
        before = done
        try:
            with get_session().stream(
                "GET", hub_file.location, headers=request_headers_now
            ) as response:
                if response.status_code >= 400:
                    raise DownloadError(
                        f"{host} answered HTTP {response.status_code} for the file's bytes; "
                        "try again later."
                    )
                if done and not _continues_at(response, done):
                    # The server ignored the Range header: the body is the whole file.
                    out.truncate(0)
                    hasher = hashlib.sha256()
                    done = 0
                for chunk in response.iter_bytes():  # as received: a drop loses nothing
                    _check_cancel(cancel, Path(out.name))
                    out.write(chunk)
                    hasher.update(chunk)
                    done += len(chunk)
                    meter.report("downloading", done)
            if hub_file.size is None:
                break
            if done > hub_file.size:
                raise DownloadError(f"{host} sent more bytes than the file has; try again.")
        except httpx2.TransportError as exc:  # dropped connection, stalled read, refused
            failures = 0 if done > before else failures + 1
            if failures >= MAX_TRIES_WITHOUT_PROGRESS:
                kept = " The partial file is kept: run the download again to resume."
                raise DownloadError(connection_message(exc, host, network.proxy) + kept) from exc
            _sleep(min(8.0, 0.5 * 2**failures), cancel, Path(out.name))
    meter.report("downloading", done, force=True)
    return done, hasher


def _continues_at(response: httpx2.Response, offset: int) -> bool:
    if response.status_code != 206:
        return False
    content_range = response.headers.get("Content-Range", "")  # "bytes START-END/TOTAL"
    try:
        return int(content_range.split()[1].split("-")[0]) == offset
    except (IndexError, ValueError):
        return False


def _check_cancel(cancel: CancelFlag | None, partial: Path) -> None:
    if cancel is not None and cancel.is_set():
        kept = partial.stat().st_size if partial.exists() else 0
        raise DownloadCancelled(
            f"Download cancelled; {human_bytes(kept)} kept, so running it again resumes from there."
        )


def _sleep(seconds: float, cancel: CancelFlag | None, partial: Path) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        _check_cancel(cancel, partial)
        time.sleep(min(0.05, max(0.0, end - time.monotonic())))


class _Meter:
    """Turns byte counts into throttled progress reports with speed (over ~5 s) and ETA."""

    WINDOW_S = 5.0

    def __init__(self, callback: ProgressCallback | None, total: int | None) -> None:
        self._callback = callback
        self._total = total
        self._samples: list[tuple[float, int]] = []
        self._last_report = 0.0

    def start(self, done: int) -> None:
        self._samples = [(time.monotonic(), done)]

    def report(
        self, phase: Phase, done: int, total: int | None = None, force: bool = False
    ) -> None:
        if self._callback is None:
            return
        now = time.monotonic()
        if phase == "downloading":
            self._samples.append((now, done))
            while len(self._samples) > 2 and now - self._samples[0][0] > self.WINDOW_S:
                self._samples.pop(0)
        whole = total if total is not None else self._total
        finished = whole is not None and done >= whole  # a phase's last report always goes out
        if not (force or finished or now - self._last_report >= PROGRESS_INTERVAL_S):
            return
        self._last_report = now
        speed = self._speed(now) if phase == "downloading" else 0.0
        eta = (whole - done) / speed if whole is not None and speed > 0 else None
        self._callback(DownloadProgress(phase, done, whole, speed, eta))

    def _speed(self, now: float) -> float:
        if len(self._samples) < 2:
            return 0.0
        (t0, b0), (t1, b1) = self._samples[0], self._samples[-1]
        return (b1 - b0) / (t1 - t0) if t1 > t0 else 0.0
