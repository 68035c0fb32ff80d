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

Every path part here except the cache folder comes from a spec or from a server (the commit, the
ETag): each is checked before it is joined, every joined path is checked to stay in its folder
(as huggingface_hub's own pointer-path check does), and the only thing ever removed from a
snapshot folder is a symlink into this repository's own blobs.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from app.core.models.download_target import DownloadError, DownloadTarget, is_safe_relative_path
from app.core.storage.json_file import atomic_write_text

_COMMIT = re.compile(r"^[0-9a-f]{40}$")
# An ETag used as a file name: a SHA-256, a git object id, or a mirror's own token; never `.`/`..`.
_SAFE_ETAG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class UnsafeCachePathError(DownloadError):
    """A name from the server or the spec would put a file outside its cache folder, or replace
    something in the cache that LeanCoder did not make; nothing was written or removed."""


def is_commit(text: str) -> bool:
    """A full git commit id as the hub sends it: 40 lowercase hex digits."""
    return bool(_COMMIT.match(text))


def is_safe_etag(text: str) -> bool:
    return bool(_SAFE_ETAG.match(text))


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
    """Where `target` goes in the cache. Raises UnsafeCachePathError for a commit, ETag, file
    name or revision that is not a plain name (for example `../../somewhere` from a server)."""
    _check_names(target, etag)
    if not is_commit(commit):
        raise UnsafeCachePathError(
            f"The hub sent '{_shown(commit)}' as the commit of {target.display}, which is not a "
            "commit id (40 hex digits); nothing was downloaded. Check the mirror URL."
        )
    folder = repo_folder(cache, target.repo)
    blob = _inside(folder / "blobs", etag)
    ref = None if target.revision == commit else _inside(folder / "refs", target.revision)
    return Placement(
        final=blob,
        partial=_inside(folder / "blobs", f"{etag}.incomplete"),
        lock=_inside(cache / ".locks" / folder.name, f"{etag}.lock"),
        pointer=_inside(folder / "snapshots", f"{commit}/{target.filename}"),
        ref=ref,
    )


def folder_placement(folder: Path, target: DownloadTarget, etag: str) -> Placement:
    _check_names(target, etag)
    final = _inside(folder, target.basename)
    partial = _inside(folder, f".{target.basename}.{etag[:16]}.incomplete")
    return Placement(final=final, partial=partial, lock=partial.with_name(partial.name + ".lock"))


def _check_names(target: DownloadTarget, etag: str) -> None:
    # make_target checks these too; a DownloadTarget built by hand must not get around it.
    for what, value in (("file name", target.filename), ("revision", target.revision)):
        if not is_safe_relative_path(value):
            raise UnsafeCachePathError(
                f"'{_shown(value)}' is not a safe {what} for {target.repo}; nothing was written."
            )
    if not is_safe_etag(etag):
        raise UnsafeCachePathError(
            f"The hub sent '{_shown(etag)}' as the ETag of {target.display}, which cannot be "
            "used as a file name; nothing was downloaded. Check the mirror URL."
        )


def _inside(folder: Path, relative: str) -> Path:
    """`folder/relative`, checked to stay inside `folder` (lexically, like huggingface_hub's
    `_get_pointer_path`, and again with the links among its folders resolved; the last part
    itself may be a link, as a snapshot entry is: link_pointer decides about that one)."""
    joined = folder.joinpath(*relative.split("/"))
    base = os.path.normpath(folder)
    if os.path.commonpath([base, os.path.normpath(joined)]) != base:
        raise UnsafeCachePathError(f"{joined} would lie outside {folder}; nothing was written.")
    real_base = os.path.realpath(folder)
    if os.path.commonpath([real_base, os.path.realpath(joined.parent)]) != real_base:
        raise UnsafeCachePathError(
            f"{joined} leads outside {folder} through a symbolic link; nothing was written."
        )
    return joined


def _shown(text: str) -> str:
    escaped = text.encode("unicode_escape").decode("ascii")
    return escaped if len(escaped) <= 80 else escaped[:77] + "..."


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
    """Point the snapshot entry at the blob. What is already at the pointer path is replaced only
    when it is a symlink into this repository's blobs (a stale or dangling link LeanCoder or
    huggingface_hub made); anything else is left alone and named in the error."""
    assert place.pointer is not None
    pointer = place.pointer
    pointer.parent.mkdir(parents=True, exist_ok=True)
    if pointer.is_symlink():
        if not _links_into(pointer, place.final.parent):
            raise UnsafeCachePathError(
                f"{pointer} is a link LeanCoder did not make (it leads to "
                f"{os.readlink(pointer)}); it was left alone. Move it away, then download again."
            )
        pointer.unlink()
    elif pointer.exists():
        raise UnsafeCachePathError(
            f"{pointer} is in the way of the downloaded file and is not a cache link; it was "
            "left alone. Move it away, then download again."
        )
    target = os.path.relpath(place.final, pointer.parent)
    try:
        os.symlink(target, pointer)
    except OSError:
        # No symlinks (Windows without developer mode): huggingface_hub then keeps the bytes at
        # the snapshot path only, and so do we.
        os.replace(place.final, pointer)


def _links_into(link: Path, blobs: Path) -> bool:
    """The symlink's own target (not followed further) names a file directly in `blobs`."""
    aimed = os.path.normpath(os.path.join(link.parent, os.readlink(link)))
    return os.path.dirname(aimed) == os.path.normpath(blobs)


def cached_file(cache: Path, target: DownloadTarget) -> Path | None:
    """The file, when a complete copy for this revision is in the cache (no network)."""
    if not (is_safe_relative_path(target.filename) and is_safe_relative_path(target.revision)):
        return None
    folder = repo_folder(cache, target.repo)
    commit = target.revision
    try:
        if not is_commit(commit):
            ref = _inside(folder / "refs", target.revision)
            commit = ref.read_text(encoding="utf-8").strip()
            if not is_commit(commit):  # a damaged or foreign ref file
                return None
        pointer = _inside(folder / "snapshots", f"{commit}/{target.filename}")
    except (OSError, UnicodeDecodeError, UnsafeCachePathError):
        return None
    return pointer if pointer.is_file() else None
