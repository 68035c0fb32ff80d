"""Apply a reviewed proposal: only accepted hunks, only if no file changed since, all or nothing.

Order of work: finish any earlier apply or undo of the folder that a crash interrupted (see
`journal`), compose each file's new bytes (refusing text its encoding cannot hold), re-check the
paths and re-read every file (a file that differs from the proposal's original is a conflict and
nothing is written), refuse files without write permission unless told to overwrite them, ask for
confirmation of big deletions, optionally make a git checkpoint, back up every touched file for
undo (the change set's journal, written before the first write), then write each file atomically.
If any write fails, the files already written are put back and the backup is dropped.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from app.core.edits.checkpoint import Checkpoint, git_checkpoint
from app.core.edits.errors import (
    ConfirmationRequiredError,
    ConflictError,
    EditError,
    ReadOnlyFileError,
)
from app.core.edits.fsio import is_read_only, link_target, read_or_none
from app.core.edits.journal import (
    begin_change_set,
    discard_change_set,
    finish_change_set,
    recover_interrupted,
)
from app.core.edits.proposal import ChangeKind, FileChange, Proposal
from app.core.edits.safety import entry_path_in_folder, resolve_in_folder
from app.core.edits.transaction import WriteFailedError, WriteStep, run_steps


@dataclass(frozen=True, slots=True)
class ApplyResult:
    change_set: str | None  # None when nothing was accepted
    modified: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    checkpoint: Checkpoint | None = None

    @property
    def files(self) -> list[str]:
        return [*self.modified, *self.created, *self.deleted]


def plan_writes(proposal: Proposal, *, overwrite_read_only: bool = False) -> list[WriteStep]:
    """The writes the accepted hunks need, checked against the disk; ConflictError if it moved.

    A file without write permission is refused (ReadOnlyFileError) unless `overwrite_read_only`;
    it keeps its permission bits when overwritten.
    """
    steps: list[WriteStep] = []
    conflicts: list[str] = []
    read_only: list[str] = []
    for change in proposal.files:
        if not change.writes:
            continue
        if change.link_target is not None:
            if _link_now(proposal, change) != change.link_target:
                conflicts.append(change.path)
                continue
            steps.append(WriteStep(change.real_path, change.path, None, None, None, None,
                                   link_before=change.link_target))  # fmt: skip
            continue
        after = change.final_bytes()
        try:
            real = resolve_in_folder(proposal.folder, change.path)
        except EditError:
            conflicts.append(change.path)
            continue
        current = read_or_none(real)
        if real != change.real_path or current != change.original:
            conflicts.append(change.path)
            continue
        if current is not None and is_read_only(real):
            read_only.append(change.path)
        mode = os.stat(real).st_mode & 0o7777 if current is not None else None
        steps.append(WriteStep(real, change.path, current, after, mode, mode))
    if conflicts:
        raise ConflictError(
            f"{_count(conflicts)} changed on disk since the edit was proposed "
            f"({', '.join(conflicts)}); nothing was written. Ask for the edit again.",
            conflicts,
        )
    if read_only and not overwrite_read_only:
        raise ReadOnlyFileError(
            f"{', '.join(read_only)} {'is' if len(read_only) == 1 else 'are'} read-only (no "
            "write permission); nothing was written. Make "
            f"{'it' if len(read_only) == 1 else 'them'} writable, or confirm overwriting.",
            read_only,
        )
    return steps


def _link_now(proposal: Proposal, change: FileChange) -> str | None:
    try:
        path = entry_path_in_folder(proposal.folder, change.path)
    except EditError:
        return None
    return link_target(path) if path == change.real_path else None


def apply_proposal(
    proposal: Proposal,
    *,
    confirm_big_deletions: bool = False,
    checkpoint: bool = False,
    overwrite_read_only: bool = False,
) -> ApplyResult:
    """Write the accepted hunks of `proposal`; see the module docstring for the guarantees."""
    recover_interrupted(proposal.folder)
    steps = plan_writes(proposal, overwrite_read_only=overwrite_read_only)
    if not steps:
        return ApplyResult(None)
    big = [c.path for c in proposal.files if c.writes and c.is_big_deletion()]
    if big and not confirm_big_deletions:
        raise ConfirmationRequiredError(
            f"The accepted changes remove more than half of {', '.join(big)}; confirm to apply "
            "them.",
            big,
        )
    saved = git_checkpoint(proposal.folder) if checkpoint else None
    try:
        change_set = begin_change_set(proposal.folder, steps, saved.commit if saved else None)
    except OSError as exc:
        raise EditError(
            f"The undo copy could not be saved ({exc.strerror or exc}); nothing was written."
        ) from exc
    try:
        run_steps(proposal.folder, steps, change_set.tag)
    except WriteFailedError as exc:
        if exc.restored:
            discard_change_set(change_set)
        else:
            finish_change_set(change_set, "interrupted")  # the backups stay, for `undo_last`
        raise
    except BaseException:
        discard_change_set(change_set)
        raise
    finish_change_set(change_set, "applied")
    kinds = {c.path: c.kind for c in proposal.files}
    return ApplyResult(
        change_set.id,
        [s.rel for s in steps if kinds[s.rel] is ChangeKind.MODIFY],
        [s.rel for s in steps if kinds[s.rel] is ChangeKind.CREATE],
        [s.rel for s in steps if kinds[s.rel] is ChangeKind.DELETE],
        saved,
    )


def changed_since_proposal(proposal: Proposal) -> list[str]:
    """Files of the proposal whose bytes on disk differ from the proposal's originals."""
    changed = []
    for change in proposal.files:
        if change.link_target is not None:
            if _link_now(proposal, change) != change.link_target:
                changed.append(change.path)
            continue
        try:
            real = resolve_in_folder(proposal.folder, change.path)
        except EditError:
            changed.append(change.path)
            continue
        if real != change.real_path or read_or_none(real) != change.original:
            changed.append(change.path)
    return changed


def _count(paths: list[str]) -> str:
    return "1 file" if len(paths) == 1 else f"{len(paths)} files"


__all__ = ["ApplyResult", "FileChange", "apply_proposal", "changed_since_proposal", "plan_writes"]
