"""The journal of an apply (or undo) in progress, and recovery when a crash interrupted one.

Before the first file of the folder is touched, the change set's manifest (manifest.py) is saved
with state "applying" (or "undoing"): it lists every file, its backup, the folders the apply will
create and the tag of its temporary files. Beside it, `active.lock` is held locked (an OS lock, so
a killed process drops it) for as long as the work goes on. A change set whose `active.lock`
exists but is not locked was interrupted (kill -9, power loss): `recover_interrupted` puts every
file back as it was before (the apply never happened, all or nothing), removes the temporary files
and the folders the apply created, and drops the change set. A file that holds neither its earlier
nor its new bytes (changed by hand since) is left alone, named, and its backup kept for
`leancoder undo` or by hand.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from app.core.edits.errors import ConflictError, EditError
from app.core.edits.fsio import (
    atomic_write_bytes,
    link_target,
    missing_parents,
    read_or_none,
    remove_empty_dirs,
    remove_temp,
)
from app.core.edits.manifest import (
    MANIFEST,
    ChangeSet,
    DamagedManifestError,
    ManifestEntry,
    folder_store,
    records,
    sha256,
)
from app.core.edits.safety import entry_path_in_folder, resolve_in_folder
from app.core.edits.transaction import WriteStep, run_steps
from app.core.storage.paths import data_dir

log = logging.getLogger(__name__)
ACTIVE = "active.lock"
KEEP_CHANGE_SETS = 30
_HELD: dict[str, IO[bytes]] = {}  # change-set id -> its locked active.lock, in this process


def _try_lock(path: Path) -> IO[bytes] | None:
    """Open and lock `path` without waiting; None if another holder has it."""
    try:
        handle = open(path, "a+b")  # noqa: SIM115 - held open for as long as the lock is
    except OSError:
        return None  # gone meanwhile (the change set finished), or unwritable
    try:
        if sys.platform == "win32":  # pragma: no cover - Windows
            import msvcrt

            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        else:
            import fcntl

            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return None
    return handle


def hold(change_set: ChangeSet) -> None:
    """Mark the change set active (its journal is live) until `release`; EditError if busy."""
    handle = _try_lock(change_set.directory() / ACTIVE)
    if handle is None:
        raise EditError(
            f"Another LeanCoder is applying or undoing an edit in {change_set.folder} right now; "
            "try again when it is done."
        )
    _HELD[change_set.id] = handle


def release(change_set: ChangeSet) -> None:
    """The work is over: drop the active mark (the lock file goes first, then the lock)."""
    with contextlib.suppress(FileNotFoundError):
        (change_set.directory() / ACTIVE).unlink()
    handle = _HELD.pop(change_set.id, None)
    if handle is not None:
        handle.close()


def begin_change_set(
    folder: Path, steps: list[WriteStep], checkpoint: str | None
) -> ChangeSet:
    """Back up every file the steps touch and save the journal, before anything is written."""
    root = folder.resolve()
    change_set_id = f"{time.time_ns():020d}-{secrets.token_hex(3)}"
    planned: list[Path] = []
    for step in steps:
        if step.before is None and step.link_before is None:
            planned.extend(p for p in missing_parents(step.path, root) if p not in planned)
    entries: list[ManifestEntry] = []
    change_set = ChangeSet(
        change_set_id, str(root), time.strftime("%Y-%m-%dT%H:%M:%S%z"), "applying",
        checkpoint, entries, [p.relative_to(root).as_posix() for p in planned],
        f"lc{secrets.token_hex(4)}",
    )  # fmt: skip
    (change_set.directory() / "files").mkdir(parents=True, exist_ok=True)
    try:
        hold(change_set)
        for number, step in enumerate(steps):
            backup = None
            if step.before is not None:
                backup = f"files/{number}.orig"
                atomic_write_bytes(change_set.directory() / backup, step.before, 0o600)
            deletes = step.after is None and step.link_after is None
            creates = step.before is None and step.link_before is None
            action = "create" if creates else "delete" if deletes else "modify"
            entries.append(ManifestEntry(step.rel, action, backup, step.before_mode,
                                         sha256(step.before), sha256(step.after),
                                         step.link_before))  # fmt: skip
        change_set.save()
    except BaseException:
        discard_change_set(change_set)  # a half-written backup is no backup
        raise
    _prune(folder)
    return change_set


def finish_change_set(change_set: ChangeSet, state: str) -> None:
    change_set.state = state
    change_set.save()
    release(change_set)


def discard_change_set(change_set: ChangeSet) -> None:
    release(change_set)
    shutil.rmtree(change_set.directory(), ignore_errors=True)


def _prune(folder: Path) -> None:
    for record in records(folder)[KEEP_CHANGE_SETS:]:
        if not (record.directory / ACTIVE).exists():
            shutil.rmtree(record.directory, ignore_errors=True)


# Putting files back -------------------------------------------------------------------------------


def restore_steps(change_set: ChangeSet, root: Path) -> tuple[list[WriteStep], list[str]]:
    """The steps that give every file its state before the apply, and the files that hold
    neither that state nor the apply's (changed since: restoring them would lose that change)."""
    steps: list[WriteStep] = []
    changed: list[str] = []
    for entry in change_set.files:
        try:
            step = _restore_step(change_set, root, entry)
        except ConflictError:
            changed.append(entry.path)
            continue
        if step is not None:
            steps.append(step)
    return steps, changed


def _restore_step(change_set: ChangeSet, root: Path, entry: ManifestEntry) -> WriteStep | None:
    if entry.link is not None:
        path = entry_path_in_folder(root, entry.path)
        if link_target(path) == entry.link:
            return None  # the link is still there (interrupted before it was removed)
        if os.path.lexists(path):
            raise ConflictError("", [entry.path])
        return WriteStep(path, entry.path, None, None, None, None, link_after=entry.link)
    try:
        real = resolve_in_folder(root, entry.path)
    except EditError:
        raise ConflictError("", [entry.path]) from None
    current = read_or_none(real)
    if sha256(current) == entry.old_sha256:
        return None  # already as it was (an apply interrupted before this file)
    if sha256(current) != entry.new_sha256:
        raise ConflictError("", [entry.path])
    earlier = None
    if entry.backup is not None:
        try:
            earlier = (change_set.directory() / entry.backup).read_bytes()
        except OSError:
            earlier = None
        if earlier is None or sha256(earlier) != entry.old_sha256:
            raise EditError(
                f"The undo copy of {entry.path} is missing or damaged; nothing was undone. "
                f"LeanCoder's undo record is in {change_set.directory()}."
            )
    mode = os.stat(real).st_mode & 0o7777 if current is not None else None
    return WriteStep(real, entry.path, current, earlier, mode, entry.mode)


def clean_leftovers(change_set: ChangeSet, root: Path) -> None:
    """Remove the change set's temporary files and the folders it created, where still empty."""
    for entry in change_set.files:
        with contextlib.suppress(EditError, OSError, ValueError):
            if entry.link is None:
                remove_temp(resolve_in_folder(root, entry.path), change_set.tag)
            else:
                remove_temp(entry_path_in_folder(root, entry.path), change_set.tag)
    inside = []
    for rel in change_set.created_dirs:
        path = root / rel
        if Path(os.path.realpath(path)).is_relative_to(root):
            inside.append(path)
    remove_empty_dirs(inside)


@dataclass(frozen=True, slots=True)
class Recovery:
    """What recovering one interrupted change set did."""

    change_set: str
    folder: str
    restored: list[str] = field(default_factory=list)  # files put back as they were
    left: list[str] = field(default_factory=list)  # changed since: left alone, backup kept
    backup: str = ""  # the change set's folder, when it is kept
    problem: str = ""  # why recovery could not finish

    def describe(self) -> str:
        if self.problem:
            return f"An interrupted edit could not be put back: {self.problem}"
        done = f"put back {len(self.restored)} file(s)" if self.restored else "nothing to put back"
        text = f"An edit in {self.folder} was interrupted; LeanCoder {done} as before it."
        if self.left:
            verb = "was" if len(self.left) == 1 else "were"
            text += (f" {', '.join(self.left)} changed since and {verb} left as is; the earlier "
                     f"bytes are in {self.backup}.")  # fmt: skip
        return text


def recover_interrupted(folder: Path | None = None) -> list[Recovery]:
    """Finish every interrupted apply or undo of `folder` (of every folder when None)."""
    if folder is None:
        base = data_dir() / "undo"
        markers = sorted(base.glob(f"*/*/{ACTIVE}")) if base.is_dir() else []
    else:
        store = folder_store(folder)
        markers = sorted(store.glob(f"*/{ACTIVE}")) if store.is_dir() else []
    done = []
    for marker in markers:
        try:
            recovered = _recover_one(marker)
        except EditError as exc:  # a write failed: say so, keep the record, go on with the rest
            recovered = Recovery(marker.parent.name, str(folder or ""), problem=str(exc),
                                 backup=str(marker.parent))  # fmt: skip
        if recovered is not None:
            done.append(recovered)
    return done


def _recover_one(marker: Path) -> Recovery | None:
    directory = marker.parent
    handle = _try_lock(marker)
    if handle is None:
        return None  # still at work in another process
    try:
        try:
            change_set = ChangeSet.load(directory / MANIFEST)
        except DamagedManifestError:
            if not (directory / MANIFEST).exists():
                # Killed while the backups were written: no file of the folder was touched yet.
                shutil.rmtree(directory, ignore_errors=True)
            return None
        if change_set.state not in ("applying", "undoing"):
            marker.unlink(missing_ok=True)
            return None
        return _roll_back(change_set)
    finally:
        handle.close()


def _roll_back(change_set: ChangeSet) -> Recovery:
    root = Path(change_set.folder)
    if not root.is_dir():
        return Recovery(change_set.id, change_set.folder, [], [], str(change_set.directory()))
    steps, changed = restore_steps(change_set, root)
    run_steps(root, steps, change_set.tag)
    clean_leftovers(change_set, root)
    restored = [s.rel for s in steps]
    log.warning("recovered interrupted change set %s in %s", change_set.id, root)
    if changed:
        change_set.state = "interrupted"
        change_set.save()
        (change_set.directory() / ACTIVE).unlink(missing_ok=True)
        return Recovery(change_set.id, str(root), restored, changed, str(change_set.directory()))
    shutil.rmtree(change_set.directory(), ignore_errors=True)
    return Recovery(change_set.id, str(root), restored)
