"""Where a download lands: the standard Hugging Face cache layout, or a folder the user chose.

The cache layout is huggingface_hub's own, so other tools (transformers, llama.cpp's `-hf`, the
`hf` CLI) find what LeanCoder downloaded and the other way round:

    <cache>/models--OWNER--NAME/blobs/<sha256>            the file's bytes
    <cache>/models--OWNER--NAME/snapshots/<commit>/<file>  a relative symlink to the blob
    <cache>/models--OWNER--NAME/refs/<revision>            the commit the revision pointed to
    <cache>/.locks/models--OWNER--NAME/<sha256>.lock       huggingface_hub's lock for this blob

The partial download is `blobs/<etag>.incomplete`, a stable name (huggingface_hub 2.x uses a
per-process name and deletes it on failure, which cannot resume): a cancel, a crash or a dropped
connection leaves it in place and the next run continues it with a Range request.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from app.core.models.download_target import DownloadTarget
from app.core.storage.settings import atomic_write_text

_COMMIT = re.compile(r"^[0-9a-f]{40}$")


def default_hub_cache() -> Path:
    """The Hugging Face cache folder, resolved as huggingface_hub does (read at each call, so a
    changed HF_HUB_CACHE or HF_HOME takes effect without a restart)."""
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            return Path(os.path.expandvars(os.environ[var])).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.path.expandvars(os.environ["HF_HOME"])).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg).expanduser() / "huggingface" / "hub"


def repo_folder(cache: Path, repo: str) -> Path:
    return cache / ("models--" + repo.replace("/", "--"))


@dataclass(frozen=True, slots=True)
class Placement:
    """Paths for one download. `path` is what the user gets; `final` is where the verified bytes
    are moved (the blob, for the cache); `pointer` is set for the cache only."""

    final: Path
    partial: Path
    lock: Path
    pointer: Path | None = None
    ref: Path | None = None

    @property
    def path(self) -> Path:
        return self.pointer or self.final


def cache_placement(cache: Path, target: DownloadTarget, commit: str, etag: str) -> Placement:
    folder = repo_folder(cache, target.repo)
    blob = folder / "blobs" / etag
    ref = None if target.revision == commit else folder / "refs" / target.revision
    return Placement(
        final=blob,
        partial=blob.with_name(f"{etag}.incomplete"),
        lock=cache / ".locks" / folder.name / f"{etag}.lock",
        pointer=folder / "snapshots" / commit / Path(*target.filename.split("/")),
        ref=ref,
    )


def folder_placement(folder: Path, target: DownloadTarget, etag: str) -> Placement:
    final = folder / target.basename
    partial = folder / f".{target.basename}.{etag[:16]}.incomplete"
    return Placement(final=final, partial=partial, lock=partial.with_name(partial.name + ".lock"))


def is_complete(place: Placement) -> bool:
    """The file is already where it belongs (blob and pointer, or the folder's file)."""
    if place.pointer is None:
        return place.final.is_file()
    return place.pointer.is_file()  # a symlink to an existing blob, or a moved blob (no symlinks)


def publish(place: Placement, commit: str) -> Path:
    """Move the verified partial to its final name, then link the snapshot and record the ref."""
    place.final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(place.partial, place.final)
    if place.pointer is not None:
        link_pointer(place)
    if place.ref is not None:
        atomic_write_text(place.ref, commit)
    return place.path


def link_pointer(place: Placement) -> None:
    assert place.pointer is not None
    pointer = place.pointer
    pointer.parent.mkdir(parents=True, exist_ok=True)
    if pointer.is_symlink() or pointer.exists():
        pointer.unlink()
    target = os.path.relpath(place.final, pointer.parent)
    try:
        os.symlink(target, pointer)
    except OSError:
        # No symlinks (Windows without developer mode): huggingface_hub then keeps the bytes at
        # the snapshot path only, and so do we.
        os.replace(place.final, pointer)


def cached_file(cache: Path, target: DownloadTarget) -> Path | None:
    """The file, when a complete copy for this revision is in the cache (no network)."""
    folder = repo_folder(cache, target.repo)
    commit = target.revision
    if not _COMMIT.match(commit):
        try:
            commit = (folder / "refs" / target.revision).read_text(encoding="utf-8").strip()
        except OSError:
            return None
    pointer = folder / "snapshots" / commit / Path(*target.filename.split("/"))
    return pointer if pointer.is_file() else None
