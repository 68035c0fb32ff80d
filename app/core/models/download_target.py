"""What to download: a catalog entry's key, `OWNER/REPO/FILE.gguf`, or a hub file URL."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import unquote, urlsplit

from app.core.errors import LeanCoderError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
# Characters that change what a path means on some OS: `\` separates folders on Windows, `:`
# starts a drive letter or an NTFS stream, NUL ends a C string, control characters hide in logs.
_UNSAFE_IN_PATH = re.compile(r"[\\:\x00-\x1f\x7f]")
MAX_PATH_PART = 255
MAX_PATH_TEXT = 1024


class DownloadError(LeanCoderError):
    """A download could not start or finish (bad name, hub error, disk full, damaged file)."""


@dataclass(frozen=True, slots=True)
class DownloadTarget:
    """One GGUF file in one hub repository, with what the catalog knows about it."""

    repo: str  # owner/name
    filename: str  # path inside the repository, `/`-separated
    revision: str = "main"
    sha256: str | None = None  # the catalog's SHA-256, checked against the hub's
    size_hint: int | None = None  # the catalog's size; the hub's own size is what counts
    label: str = ""

    @property
    def basename(self) -> str:
        return PurePosixPath(self.filename).name

    @property
    def display(self) -> str:
        return self.label or f"{self.repo}/{self.filename}"


def resolve_download_target(spec: str) -> DownloadTarget:
    """A catalog key (`qwen3-30b-a3b`, `qwen3-30b-a3b:q8_0`), `OWNER/REPO/FILE.gguf` (the file may
    sit in a sub-folder), or a hub URL such as `https://huggingface.co/OWNER/REPO/resolve/main/F`.
    A URL's host is not used: requests go to the configured hub or mirror."""
    text = spec.strip()
    if not text:
        raise DownloadError("Say what to download: a catalog entry or OWNER/REPO/FILE.gguf.")
    if "://" in text:
        return _from_url(text)
    if "/" not in text:
        return _from_catalog(text)
    parts = text.split("/")
    if len(parts) < 3:
        raise DownloadError(
            f"'{spec}' names a repository but no file: use OWNER/REPO/FILE.gguf, for example "
            "Qwen/Qwen3-8B-GGUF/Qwen3-8B-Q4_K_M.gguf."
        )
    return make_target(f"{parts[0]}/{parts[1]}", "/".join(parts[2:]))


def make_target(
    repo: str,
    filename: str,
    revision: str = "main",
    *,
    sha256: str | None = None,
    size_hint: int | None = None,
    label: str = "",
) -> DownloadTarget:
    """A checked target: a valid repository id and a relative `.gguf` path without `..`."""
    owner, _, name = repo.partition("/")
    if not (_NAME.match(owner) and _NAME.match(name)) or ".." in repo:
        raise DownloadError(
            f"'{repo}' is not a hub repository id: it must look like OWNER/NAME "
            "(letters, digits, '-', '_' and '.')."
        )
    if not is_safe_relative_path(filename):
        raise DownloadError(
            f"'{_shown(filename)}' is not a file path inside a repository: it must be relative, "
            "'/'-separated, without '..', '\\', ':' or control characters."
        )
    if not filename.lower().endswith(".gguf"):
        raise DownloadError(
            f"'{filename}' is not a GGUF file: LeanCoder downloads files ending in .gguf."
        )
    if not is_safe_relative_path(revision):
        raise DownloadError(f"'{_shown(revision)}' is not a valid revision.")
    return DownloadTarget(
        repo=repo,
        filename=filename,
        revision=revision,
        sha256=sha256.lower() if sha256 and _SHA256.match(sha256.lower()) else None,
        size_hint=size_hint if size_hint and size_hint > 0 else None,
        label=label,
    )


def is_safe_relative_path(text: str) -> bool:
    """True for a `/`-separated relative path that stays where it is joined on every OS: no
    empty, `.` or `..` part, no backslash, drive letter, NUL or control character, bounded
    length. Every path part that comes from a spec, the catalog or a server passes this first."""
    if not text or len(text) > MAX_PATH_TEXT or _UNSAFE_IN_PATH.search(text):
        return False
    parts = text.split("/")
    return all(p not in {"", ".", ".."} and len(p) <= MAX_PATH_PART for p in parts)


def _shown(text: str) -> str:
    """`text` for a message: control characters escaped, long text cut."""
    escaped = text.encode("unicode_escape").decode("ascii")
    return escaped if len(escaped) <= 120 else escaped[:117] + "..."


def _from_catalog(key: str) -> DownloadTarget:
    from app.core.models.catalog import find_entry

    entry = find_entry(key)  # raises a clear CatalogError for an unknown key
    if entry.bundled or not entry.repo:
        raise DownloadError(f"{entry.label} comes with LeanCoder; there is nothing to download.")
    return make_target(
        entry.repo,
        entry.filename,
        sha256=entry.sha256,
        size_hint=entry.size_bytes,
        label=entry.label,
    )


def _from_url(url: str) -> DownloadTarget:
    path = [unquote(p) for p in urlsplit(url).path.split("/") if p]
    # /OWNER/REPO/resolve/REV/FILE... or /OWNER/REPO/blob/REV/FILE... (the page of the file)
    if len(path) >= 5 and path[2] in {"resolve", "blob"}:
        return make_target(f"{path[0]}/{path[1]}", "/".join(path[4:]), revision=path[3])
    raise DownloadError(
        f"'{url}' is not a hub file address: expected https://HOST/OWNER/REPO/resolve/"
        "REVISION/FILE.gguf."
    )
