"""Atomic file writes: a temporary file in the same folder, fsync, then one rename.

A reader (or a crash) sees the old bytes or the new ones, never half of each. Permission bits are
carried over (or, for a new file, set from the umask as an ordinary create would). Writes made for
a change set name their temporary file after it (`.NAME.TAG.leancoder-tmp`), so that after a crash
the change set's journal says exactly which leftovers are LeanCoder's to remove.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import tempfile
from pathlib import Path

TEMP_SUFFIX = ".leancoder-tmp"
_TAG = re.compile(r"[0-9a-z-]{1,64}")


def current_umask() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # the portable way to read it is to set it; put it straight back
    os.umask(mask)
    return mask


def fsync_dir(folder: Path) -> None:
    """Make a rename or unlink in `folder` durable (not possible, and not needed, on Windows)."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temp_path(path: Path, tag: str) -> Path:
    """The temporary file a write tagged `tag` uses for `path`."""
    if not _TAG.fullmatch(tag):
        raise ValueError(f"bad temporary-file tag {tag!r}")
    return path.with_name(f".{path.name}.{tag}{TEMP_SUFFIX}")


def _open_tagged(tmp: Path) -> int:
    """Create `tmp` exclusively; an earlier leftover of the same tag (ours) is replaced."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        return os.open(tmp, flags, 0o600)
    except FileExistsError:
        os.unlink(tmp)
        return os.open(tmp, flags, 0o600)


def atomic_write_bytes(path: Path, data: bytes, mode: int | None, tag: str | None = None) -> None:
    """Replace (or create) `path` with `data`; `mode`: permission bits, None for a new file's.

    `tag`: name the temporary file after it (see `temp_path`); without one it is a random name.
    """
    if tag is None:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    else:
        tmp = str(temp_path(path, tag))
        fd = _open_tagged(Path(tmp))
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
            if hasattr(os, "fchmod"):
                os.fchmod(handle.fileno(), mode if mode is not None else 0o666 & ~current_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def remove_file(path: Path) -> None:
    os.unlink(path)
    fsync_dir(path.parent)


def missing_parents(path: Path, root: Path) -> list[Path]:
    """The folders between `root` and `path` that do not exist yet, outermost first."""
    missing: list[Path] = []
    parent = path.parent
    while parent != root and not parent.exists():
        missing.append(parent)
        parent = parent.parent
    return list(reversed(missing))


def make_parents(path: Path, root: Path) -> list[Path]:
    """Create the missing folders between `root` and `path`; returns them, outermost first."""
    missing = missing_parents(path, root)
    for folder in missing:
        folder.mkdir()
    return missing


def remove_empty_dirs(folders: list[Path]) -> None:
    """Remove folders this tool created, innermost first, where they are still empty."""
    for folder in sorted(folders, key=lambda p: len(p.parts), reverse=True):
        with contextlib.suppress(OSError):
            folder.rmdir()


def read_or_none(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def link_target(path: Path) -> str | None:
    """Where `path` points if it is a symbolic link; None if it is anything else or absent."""
    try:
        return os.readlink(path)
    except (OSError, ValueError):
        return None


def is_read_only(path: Path) -> bool:
    """No write bit is set on the file, or this user may not write it (root ignores the bits)."""
    try:
        info = os.stat(path)
    except OSError:
        return False
    return (info.st_mode & 0o222) == 0 or not os.access(path, os.W_OK)


def remove_temp(path: Path, tag: str) -> bool:
    """Remove the tagged temporary file of `path` if a crash left it; True if there was one."""
    tmp = temp_path(path, tag)
    try:
        info = os.lstat(tmp)
    except OSError:
        return False
    if not (stat.S_ISREG(info.st_mode) or stat.S_ISLNK(info.st_mode)):
        return False
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    return True
