"""Undo: every applied change set keeps the files' earlier bytes, so it can be reversed exactly.

The record itself is described in manifest.py and the journal in journal.py. `undo_last` first
finishes an apply (or undo) of the folder that a crash interrupted: putting that one back *is* the
undo. Otherwise it restores the newest change set only if every file still holds what the apply
wrote; if not it refuses and names the files that changed since. A damaged record is never taken
for "nothing to undo": the user is told it is damaged and where its saved bytes are.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from app.core.edits.errors import ConflictError, EditError, NothingToUndoError
from app.core.edits.journal import (
    ACTIVE,
    clean_leftovers,
    discard_change_set,
    hold,
    recover_interrupted,
    release,
    restore_steps,
)
from app.core.edits.manifest import ChangeSet, Record, folder_key, folder_store, records
from app.core.edits.transaction import run_steps


@dataclass(frozen=True, slots=True)
class UndoResult:
    change_set: str
    restored: list[str]  # files given back their earlier bytes
    removed: list[str]  # files the apply had created
    checkpoint: str | None


def list_change_sets(folder: Path) -> list[ChangeSet]:
    """The folder's readable change sets, newest first (see `latest_record` for damaged ones)."""
    return [r.change_set for r in records(folder) if r.change_set is not None]


def latest_record(folder: Path) -> Record | None:
    """The newest undo record of `folder`, readable or damaged; None if there is none."""
    found = [r for r in records(folder) if not (r.directory / ACTIVE).exists()]
    return found[0] if found else None


def undo_last(folder: Path) -> UndoResult:
    """Reverse the newest change set applied in `folder`, byte for byte, or refuse clearly."""
    if not folder.is_dir():
        raise EditError(f"The folder {folder} does not exist.")
    recovered = recover_interrupted(folder)
    if recovered:
        first = recovered[0]
        if first.problem:
            raise EditError(first.problem)
        if first.left:
            raise ConflictError(first.describe(), first.left)
        return UndoResult(first.change_set, first.restored, [], None)
    record = latest_record(folder)
    if record is None:
        raise NothingToUndoError(f"Nothing to undo in {folder}: no applied edit is recorded.")
    if record.change_set is None:
        raise EditError(
            f"The undo record of the last edit in {folder} is damaged: {record.problem}; nothing "
            f"was undone. The bytes it saved are in {record.directory / 'files'}."
        )
    change_set = record.change_set
    root = folder.resolve()
    steps, changed = restore_steps(change_set, root)
    if changed:
        raise ConflictError(
            f"{', '.join(changed)} changed since the edit was applied, so undoing it would lose "
            "those changes; nothing was undone.",
            changed,
        )
    hold(change_set)  # the undo's own journal: a crash now is finished by the next recovery
    try:
        change_set.state = "undoing"
        change_set.save()
        run_steps(root, steps, change_set.tag)
    except BaseException:
        change_set.state = "applied"
        change_set.save()
        release(change_set)
        raise
    clean_leftovers(change_set, root)
    discard_change_set(change_set)
    return UndoResult(
        change_set.id,
        [s.rel for s in steps if s.after is not None or s.link_after is not None],
        [s.rel for s in steps if s.after is None and s.link_after is None],
        change_set.checkpoint,
    )


__all__ = [
    "ChangeSet",
    "UndoResult",
    "folder_key",
    "folder_store",
    "latest_record",
    "list_change_sets",
    "undo_last",
]
