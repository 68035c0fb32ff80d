"""Download a GGUF from the hub (or a mirror) safely: resumable, cancellable, checked.

Metadata comes from huggingface_hub (`get_hf_file_metadata`, through the client that
`app.core.models.network` configures); the bytes are fetched here, with Range requests into a
partial file with a stable name, because huggingface_hub 2.x deletes its partial file on any
failure and offers no cancel. The steps:

1. HEAD the file: commit, ETag (for an LFS file, `X-Linked-ETag` is its SHA-256), size, CDN URL.
2. Check free disk space for what is still missing, before a byte is written.
3. Continue the partial file if there is one (its bytes are hashed first), else start it.
4. Stream with a Range header; a dropped connection or a stalled read resumes where it stopped
   (app.core.models.range_fetch: what a hostile or broken server can do there, and the answer).
5. Compare the SHA-256 with the hub's (huggingface_hub does not): a mismatch deletes the file.
6. Check the GGUF header, then move the file into the Hugging Face cache (or the chosen folder).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import filelock

from app.core.errors import ModelFileError
from app.core.gguf.header import read_header
from app.core.models import hub_cache
from app.core.models.download_progress import (
    CancelFlag,
    DownloadCancelled,
    DownloadProgress,
    Meter,
    ProgressCallback,
    check_cancel,
)
from app.core.models.download_target import DownloadError, DownloadTarget, resolve_download_target
from app.core.models.hub_client import HubFile, fetch_file_metadata
from app.core.models.network import NetworkSettings, load_network_settings, require_online
from app.core.models.range_fetch import DiscardPartial, FileChangedUpstream, Hasher, fetch_rest
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

log = logging.getLogger(__name__)

HASH_BLOCK = 8 * 1024 * 1024
DISK_MARGIN_BYTES = 64 * 1024 * 1024  # leave the disk usable after the download


class ChecksumMismatchError(DownloadError):
    """The bytes do not match the hub's SHA-256; the file was deleted."""


class DiskSpaceError(DownloadError):
    """Not enough free disk space for the download (nothing was written)."""


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
    notes: tuple[str, ...] = ()  # what the user should know, e.g. that the download restarted


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
    try:
        return _download_from_hub(target, network, cache, dest_dir, progress, cancel)
    except FileChangedUpstream as changed:
        # The partial of the old file is gone; fetch the new metadata and start over, once.
        note = f"{str(changed).rstrip('.')}. The download started over with the new file."
        log.warning(note)
        try:
            result = _download_from_hub(target, network, cache, dest_dir, progress, cancel)
        except FileChangedUpstream as again:
            raise DownloadError(
                f"{again}, again after starting over; the partial file was deleted. Try again "
                "later, when the repository has settled."
            ) from again
        return dataclasses.replace(result, notes=(note, *result.notes))


def _download_from_hub(
    target: DownloadTarget,
    network: NetworkSettings,
    cache: Path,
    dest_dir: Path | None,
    progress: ProgressCallback | None,
    cancel: CancelFlag | None,
) -> DownloadResult:
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
        log.info("partial %s is larger than the file (%d > %d); starting over", place.partial,
                 have, size)  # fmt: skip
        place.partial.unlink()
        have = 0
    meter = Meter(progress, size)
    hasher = hashlib.sha256()
    try:
        with place.partial.open("ab") as out:
            if have:
                _hash_existing(place.partial, have, hasher, meter, cancel)
            fetched = fetch_rest(hub_file, network, out, have, hasher, meter, cancel)
            out.flush()
            os.fsync(out.fileno())
    except (DiscardPartial, FileChangedUpstream):
        place.partial.unlink(missing_ok=True)
        raise
    done, hasher = fetched.done, fetched.hasher
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
        notes=tuple(fetched.notes),
    )


def _hash_existing(
    partial: Path, have: int, hasher: Hasher, meter: Meter, cancel: CancelFlag | None
) -> None:
    with partial.open("rb") as stream:
        hashed = 0
        while hashed < have:
            check_cancel(cancel, partial)
            block = stream.read(min(HASH_BLOCK, have - hashed))
            if not block:
                break
            hasher.update(block)
            hashed += len(block)
            meter.report("checking", hashed, total=have)
