"""Listing a code folder in the background: what goes to the model, what does not, and why.

`scan_folder` walks the folder with `os.scandir` (one system call per folder, no stat for most
subfolders) and yields small batches, so a window can show a 50,000-file tree as it is found.
Skipped paths come with a reason the user can read. Ignored folders are never entered, symbolic
links never lead out of the folder, and nothing but a regular file is ever opened.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Protocol

from app.core.errors import LeanCoderError
from app.core.units import binary_bytes
from app.core.workspace import ignore, rules

DEFAULT_BATCH_SIZE = 256
DEFAULT_BATCH_SECONDS = 0.1  # a slow disk still shows progress this often


class CancelFlag(Protocol):
    """Anything with `is_set()`, such as `threading.Event`. Checked between entries."""

    def is_set(self) -> bool: ...


class WorkspaceError(LeanCoderError):
    """A folder that cannot be opened, or a path that is not inside it."""


@dataclass(frozen=True, slots=True)
class FileEntry:
    path: str  # relative to the folder, "/"-separated
    size: int


@dataclass(frozen=True, slots=True)
class SkippedEntry:
    path: str  # relative to the folder, "/"-separated; a folder's ends with "/"
    reason: str
    is_dir: bool = False
    # Skipped or redacted for holding a secret: the user may allow the file (send it as it is).
    secret: bool = False


@dataclass(frozen=True, slots=True)
class ScanBatch:
    files: tuple[FileEntry, ...]
    skipped: tuple[SkippedEntry, ...]


@dataclass(slots=True)
class ScanResult:
    files: list[FileEntry] = field(default_factory=list)
    skipped: list[SkippedEntry] = field(default_factory=list)
    cancelled: bool = False


@dataclass(frozen=True, slots=True)
class _Options:
    root: str
    max_file_bytes: int
    include_secrets: bool


def open_root(folder: str | os.PathLike[str]) -> Path:
    """The folder's real path, or a WorkspaceError saying why it cannot be opened."""
    path = Path(folder).expanduser()
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError):
        raise WorkspaceError(f"The folder {path} does not exist.") from None
    if not real.is_dir():
        raise WorkspaceError(f"{path} is a file, not a folder; open the folder that holds it.")
    if not os.access(real, os.R_OK | os.X_OK):
        raise WorkspaceError(f"The folder {path} cannot be read (permission denied).")
    return real


def scan_folder(
    root: str | os.PathLike[str],
    *,
    cancel: CancelFlag | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_file_bytes: int = rules.DEFAULT_MAX_FILE_BYTES,
    include_secrets: bool = False,
    batch_seconds: float = DEFAULT_BATCH_SECONDS,
) -> Iterator[ScanBatch]:
    """Batches of files found and paths skipped, depth first, each folder's entries by name.

    Raises WorkspaceError at once for a folder that cannot be opened, and on the first batch if
    it cannot be listed; later problems (a subfolder that cannot be read, a file that vanished)
    become skipped entries. Stops early, without a final batch, once `cancel.is_set()`.
    """
    real = open_root(root)
    options = _Options(str(real), max_file_bytes, include_secrets)
    return _walk(options, ignore.root_layers(real), cancel, max(1, batch_size), batch_seconds)


def scan_all(
    root: str | os.PathLike[str],
    *,
    cancel: CancelFlag | None = None,
    max_file_bytes: int = rules.DEFAULT_MAX_FILE_BYTES,
    include_secrets: bool = False,
) -> ScanResult:
    """The whole scan at once (for the CLI and tests)."""
    result = ScanResult()
    batches = scan_folder(
        root, cancel=cancel, max_file_bytes=max_file_bytes, include_secrets=include_secrets,
        batch_size=4096,
    )  # fmt: skip
    for batch in batches:
        result.files.extend(batch.files)
        result.skipped.extend(batch.skipped)
    result.cancelled = cancel is not None and cancel.is_set()
    return result


def _walk(
    options: _Options,
    base_layers: ignore.Layers,
    cancel: CancelFlag | None,
    batch_size: int,
    batch_seconds: float,
) -> Iterator[ScanBatch]:
    files: list[FileEntry] = []
    skipped: list[SkippedEntry] = []
    last_flush = time.monotonic()
    pending: list[tuple[str, ignore.Layers]] = [("", base_layers)]
    while pending:
        rel_dir, layers = pending.pop()
        abs_dir = os.path.join(options.root, rel_dir) if rel_dir else options.root
        own = ignore.read_layer(
            Path(abs_dir, ".gitignore"), f"{rel_dir}/.gitignore" if rel_dir else ".gitignore",
            base=rel_dir,
        )  # fmt: skip
        if own is not None:
            layers = (*layers, own)
        try:
            with os.scandir(abs_dir) as listing:
                entries = sorted(listing, key=lambda e: e.name)
        except OSError as exc:
            if not rel_dir:  # the folder itself went away or became unreadable since it opened
                raise WorkspaceError(f"The folder {options.root} {_unreadable('', exc)}.") from exc
            skipped.append(SkippedEntry(rel_dir + "/", _unreadable("folder", exc), True))
            continue
        subdirs: list[tuple[str, ignore.Layers]] = []
        for entry in entries:
            if cancel is not None and cancel.is_set():
                return
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            outcome = _visit(entry, rel, layers, options)
            if outcome is None:
                subdirs.append((rel, layers))
            elif isinstance(outcome, FileEntry):
                files.append(outcome)
            else:
                skipped.append(outcome)
            if len(files) + len(skipped) >= batch_size or (
                (files or skipped) and time.monotonic() - last_flush >= batch_seconds
            ):
                yield ScanBatch(tuple(files), tuple(skipped))
                files, skipped = [], []
                last_flush = time.monotonic()
        pending.extend(reversed(subdirs))  # popped in name order
    if cancel is not None and cancel.is_set():
        return
    if files or skipped:
        yield ScanBatch(tuple(files), tuple(skipped))


def _visit(
    entry: os.DirEntry[str], rel: str, layers: ignore.Layers, options: _Options
) -> FileEntry | SkippedEntry | None:
    """A file entry, a skipped entry, or None for a folder to enter."""
    try:
        is_link = entry.is_symlink()
        is_dir = not is_link and entry.is_dir(follow_symlinks=False)
    except OSError as exc:
        return SkippedEntry(rel, _unreadable("entry", exc))
    if is_dir:
        reason = _dir_reason(entry.name, entry.path, rel, layers)
        return None if reason is None else SkippedEntry(rel + "/", reason, True)
    return _file_outcome(entry.path, entry.name, rel, is_link, entry.stat, layers, options)


def _dir_reason(name: str, abs_path: str, rel: str, layers: ignore.Layers) -> str | None:
    if name in rules.VCS_DIRS:
        return rules.dir_reason(name)
    found = ignore.match(layers, rel, is_dir=True)
    if found is not None:
        return _ignored_reason(*found)
    reason = rules.dir_reason(name)
    if reason is None and os.path.isfile(os.path.join(abs_path, "pyvenv.cfg")):
        reason = f"Python virtual environment ({name}/)"
    return reason


def _file_outcome(
    abs_path: str,
    name: str,
    rel: str,
    is_link: bool,
    stat_fn: Callable[[], os.stat_result],
    layers: ignore.Layers,
    options: _Options,
) -> FileEntry | SkippedEntry:
    found = ignore.match(layers, rel, is_dir=False)  # Git matches a link as a file
    if found is not None:
        return SkippedEntry(rel, _ignored_reason(*found))
    names = [name]
    if is_link:
        target = os.path.realpath(abs_path)
        if not _inside(target, options.root):
            return SkippedEntry(rel, "symbolic link to outside the folder (not followed)")
        names.append(os.path.basename(target))
    try:
        info = stat_fn()  # follows an inside link to its target
    except OSError as exc:
        if is_link:
            return SkippedEntry(rel, "broken symbolic link")
        return SkippedEntry(rel, _unreadable("file", exc))
    if stat.S_ISDIR(info.st_mode):
        return SkippedEntry(rel, "symbolic link to a folder (not followed)")
    if not stat.S_ISREG(info.st_mode):
        return SkippedEntry(rel, "not a regular file (a device, pipe or socket)")
    if not options.include_secrets:
        for candidate in names:
            reason = rules.secret_name_reason(candidate)
            if reason is not None:
                return SkippedEntry(rel, reason, secret=True)
    reason = rules.binary_suffix_reason(name)
    if reason is not None:
        return SkippedEntry(rel, reason)
    if info.st_size > options.max_file_bytes:
        limit, size = binary_bytes(options.max_file_bytes), binary_bytes(info.st_size)
        return SkippedEntry(rel, f"larger than {limit} ({size})")
    try:
        head = read_head(abs_path)
    except OSError as exc:
        return SkippedEntry(rel, _unreadable("file", exc))
    reason = rules.content_reason(name, head, options.include_secrets)
    if reason is not None:
        is_secret = reason.startswith(rules.SENSITIVE_REASON_PREFIX)
        return SkippedEntry(rel, reason, secret=is_secret)
    return FileEntry(rel, info.st_size)


def read_head(abs_path: str, n_bytes: int = rules.HEAD_BYTES) -> bytes:
    """The first bytes of a file. Non-blocking open: a file swapped for a pipe cannot hang us."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(abs_path, flags)
    try:
        return os.read(fd, n_bytes)
    finally:
        os.close(fd)


def read_regular_file(abs_path: str, max_bytes: int) -> tuple[bytes, os.stat_result]:
    """A regular file's bytes and its stat, read through one descriptor (so the bytes are the
    stat's file). OSError for anything else, or for a file over `max_bytes`: files grow."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(abs_path, flags)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(0, "not a regular file", abs_path)
        if info.st_size > max_bytes:
            size, limit = binary_bytes(info.st_size), binary_bytes(max_bytes)
            raise OSError(0, f"now {size}, over the {limit} limit", abs_path)
        chunks, left = [], max_bytes + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        data = b"".join(chunks)
        if len(data) > max_bytes:
            raise OSError(0, f"grew past the {binary_bytes(max_bytes)} limit", abs_path)
        return data, info
    finally:
        os.close(fd)


def explain_path(
    root: str | os.PathLike[str],
    rel: str,
    *,
    max_file_bytes: int = rules.DEFAULT_MAX_FILE_BYTES,
    include_secrets: bool = False,
) -> str | None:
    """Why the scan would skip this file (None: it would list it), checking every folder above.

    Raises WorkspaceError for a path outside the folder, a missing file, or a folder.
    """
    real = open_root(root)
    parts = safe_relative_parts(rel)
    options = _Options(str(real), max_file_bytes, include_secrets)
    layers = ignore.root_layers(real)
    rel_dir = ""
    for part in parts[:-1]:
        layers = _with_own_gitignore(layers, options.root, rel_dir)
        here = f"{rel_dir}/{part}" if rel_dir else part
        abs_here = os.path.join(options.root, here)
        if os.path.islink(abs_here):
            return f"inside {here}/, a symbolic link to a folder (not followed)"
        if not os.path.isdir(abs_here):
            raise WorkspaceError(f"{rel} is not a file in the folder.")
        reason = _dir_reason(part, abs_here, here, layers)
        if reason is not None:
            return f"inside {here}/: {reason}"
        rel_dir = here
    layers = _with_own_gitignore(layers, options.root, rel_dir)
    rel = "/".join(parts)
    abs_path = os.path.join(options.root, *parts)
    is_link = os.path.islink(abs_path)
    if not is_link and not os.path.lexists(abs_path):
        raise WorkspaceError(f"{rel} is not a file in the folder.")
    if not is_link and os.path.isdir(abs_path):
        raise WorkspaceError(f"{rel} is a folder; name the files in it.")
    outcome = _file_outcome(
        abs_path, parts[-1], rel, is_link, lambda: os.stat(abs_path), layers, options
    )
    return outcome.reason if isinstance(outcome, SkippedEntry) else None


def _with_own_gitignore(layers: ignore.Layers, root: str, rel_dir: str) -> ignore.Layers:
    """`layers` plus the rules of `rel_dir`'s own .gitignore, if it has one."""
    own = ignore.read_layer(
        Path(root, rel_dir, ".gitignore"),
        f"{rel_dir}/.gitignore" if rel_dir else ".gitignore", base=rel_dir,
    )  # fmt: skip
    return layers if own is None else (*layers, own)


def safe_relative_parts(rel: str) -> list[str]:
    """The components of a path relative to the folder; WorkspaceError if it could leave it."""
    text = rel.replace("\\", "/")
    pure = PurePosixPath(text)
    if not text or pure.is_absolute() or (len(text) > 1 and text[1] == ":"):
        raise WorkspaceError(f"{rel!r} is not a path inside the folder (give it relative to it).")
    parts = [p for p in pure.parts if p not in ("", ".")]
    if not parts or ".." in parts:
        raise WorkspaceError(f"{rel!r} is not a path inside the folder.")
    return parts


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _ignored_reason(source: str, pattern: str) -> str:
    return f"ignored by {source} (pattern: {pattern})"


def _unreadable(what: str, exc: OSError) -> str:
    detail = (exc.strerror or type(exc).__name__).lower()
    return f"{what} cannot be read ({detail})".lstrip()
