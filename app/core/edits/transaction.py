"""All-or-nothing writes across files: each step is atomic, and a failure rolls back the rest.

Every step says what the file holds now (`before`) and what it should hold (`after`; None deletes
it). Just before a step, the file is read again: if it no longer holds `before`, something else
changed it and the whole transaction is rolled back instead of overwriting that change.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

from app.core.edits.errors import ConflictError, EditError
from app.core.edits.fsio import (
    atomic_write_bytes,
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


class WriteFailedError(EditError):
    """A write failed; `restored` says whether every file is back as it was."""

    def __init__(self, message: str, restored: bool) -> None:
        super().__init__(message)
        self.restored = restored


def run_steps(root: Path, steps: list[WriteStep]) -> list[Path]:
    """Carry out every step or none; returns the folders created for new files."""
    done: list[WriteStep] = []
    created: list[Path] = []
    for step in steps:
        try:
            if read_or_none(step.path) != step.before:
                raise ConflictError(
                    f"{step.rel} changed on disk while the edit was being written; every file "
                    "was put back as it was.",
                    [step.rel],
                )
            if step.after is None:
                remove_file(step.path)
            else:
                created.extend(make_parents(step.path, root))
                atomic_write_bytes(step.path, step.after, step.after_mode)
        except (OSError, ConflictError) as exc:
            unrestored = _roll_back(done, created)
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


def _roll_back(done: list[WriteStep], created: list[Path]) -> list[str]:
    """Undo finished steps, newest first; returns the files that could not be restored."""
    failed: list[str] = []
    for step in reversed(done):
        try:
            if step.before is None:
                with contextlib.suppress(FileNotFoundError):
                    remove_file(step.path)
            else:
                atomic_write_bytes(step.path, step.before, step.before_mode)
        except OSError:
            failed.append(step.rel)
    remove_empty_dirs(created)
    return failed
