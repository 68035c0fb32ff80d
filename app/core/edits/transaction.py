"""All-or-nothing writes across files: each step is atomic, and a failure rolls back the rest.

Every step says what the file holds now (`before`) and what it should hold (`after`; None deletes
it). A symbolic link is a step of its own kind (`link_before`, `link_after`: its target): deleting
one removes the link, never what it points to. Just before a step, the path is read again: if it
no longer holds `before`, something else changed it and the whole transaction is rolled back
instead of overwriting that change.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from app.core.edits.errors import ConflictError, EditError
from app.core.edits.fsio import (
    atomic_write_bytes,
    fsync_dir,
    link_target,
    make_parents,
    read_or_none,
    remove_empty_dirs,
    remove_file,
)


@dataclass(frozen=True, slots=True)
class WriteStep:
    path: Path  # the real path, inside the folder
    rel: str  # as shown to the user
    before: bytes | None  # None: the file is absent now
    after: bytes | None  # None: delete the file
    before_mode: int | None  # permission bits of `before` (to restore it)
    after_mode: int | None  # permission bits for `after`; None: as a new file gets them
    link_before: str | None = None  # the path is now a symbolic link to this (`before` is None)
    link_after: str | None = None  # make the path a symbolic link to this (`after` is None)

    def holds_before(self) -> bool:
        return _holds(self.path, self.before, self.link_before)


class WriteFailedError(EditError):
    """A write failed; `restored` says whether every file is back as it was."""

    def __init__(self, message: str, restored: bool) -> None:
        super().__init__(message)
        self.restored = restored


def _holds(path: Path, data: bytes | None, link: str | None) -> bool:
    target = link_target(path)
    if link is not None or target is not None:
        return target == link
    return read_or_none(path) == data


def _put(
    path: Path, data: bytes | None, link: str | None, mode: int | None, tag: str | None
) -> None:
    """Make `path` hold `data` (a file), `link` (a symbolic link) or nothing."""
    if data is not None:
        atomic_write_bytes(path, data, mode, tag)
        return
    if os.path.lexists(path):
        remove_file(path)  # unlink: a link itself, never its target
    if link is not None:
        os.symlink(link, path)
        fsync_dir(path.parent)


def run_steps(root: Path, steps: list[WriteStep], tag: str | None = None) -> list[Path]:
    """Carry out every step or none; returns the folders created for new files.

    `tag` names the temporary files (see `fsio.temp_path`), for cleanup after a crash.
    """
    done: list[WriteStep] = []
    created: list[Path] = []
    for step in steps:
        try:
            if not step.holds_before():
                raise ConflictError(
                    f"{step.rel} changed on disk while the edit was being written; every file "
                    "was put back as it was.",
                    [step.rel],
                )
            if step.after is not None or step.link_after is not None:
                created.extend(make_parents(step.path, root))
            _put(step.path, step.after, step.link_after, step.after_mode, tag)
        except (OSError, ConflictError) as exc:
            unrestored = _roll_back(done, created, tag)
            if isinstance(exc, ConflictError) and not unrestored:
                raise
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            if unrestored:
                raise WriteFailedError(
                    f"Writing {step.rel} failed ({reason}) and {', '.join(unrestored)} could not "
                    "be put back; their earlier bytes are kept in LeanCoder's undo folder.",
                    restored=False,
                ) from exc
            raise WriteFailedError(
                f"Writing {step.rel} failed ({reason}); every file was put back as it was.",
                restored=True,
            ) from exc
        done.append(step)
    return created


def _roll_back(done: list[WriteStep], created: list[Path], tag: str | None) -> list[str]:
    """Undo finished steps, newest first; returns the files that could not be restored."""
    failed: list[str] = []
    for step in reversed(done):
        try:
            with contextlib.suppress(FileNotFoundError):
                _put(step.path, step.before, step.link_before, step.before_mode, tag)
        except OSError:
            failed.append(step.rel)
    remove_empty_dirs(created)
    return failed
