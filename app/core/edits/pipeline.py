"""One call from a model's reply to files on disk: parse, propose, accept all, apply (or not).

For the CLI (`leancoder apply`, `leancoder edit --apply`) and anything else that does not review
hunk by hunk. Files whose accepted changes remove more than half of them are skipped unless
`confirm_big_deletions` is set; they are listed in the report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.core.edits.apply import ApplyResult, apply_proposal, plan_writes
from app.core.edits.builder import propose
from app.core.edits.journal import Recovery, recover_interrupted
from app.core.edits.proposal import FileChange, Proposal


@dataclass(slots=True)
class EditReport:
    proposal: Proposal
    dry_run: bool
    result: ApplyResult | None = None  # None for a dry run
    unconfirmed: list[str] = field(default_factory=list)  # skipped: big deletions, not confirmed
    recovered: list[Recovery] = field(default_factory=list)  # interrupted edits put back first

    @property
    def ok(self) -> bool:
        """Every block applied (or had nothing to do) and every change was written."""
        return not self.proposal.refused and not self.unconfirmed

    def to_dict(self) -> dict[str, Any]:
        checkpoint = self.result.checkpoint if self.result else None
        return {
            "folder": str(self.proposal.folder),
            "dry_run": self.dry_run,
            "blocks": [
                {
                    "index": b.index,
                    "line": b.line,
                    "kind": b.kind.value,
                    "path": b.path,
                    "status": b.status.value,
                    "method": b.method,
                    "reason": b.reason,
                    "closest": None
                    if b.closest is None
                    else {
                        "start": b.closest.start,
                        "lines": list(b.closest.lines),
                        "similarity": round(b.closest.similarity, 3),
                    },
                }
                for b in self.proposal.blocks
            ],
            "files": [self._file_dict(change) for change in self.proposal.files],
            "change_set": self.result.change_set if self.result else None,
            "checkpoint": checkpoint.commit if checkpoint else None,
            "ok": self.ok,
        }

    def _file_dict(self, change: FileChange) -> dict[str, Any]:
        added, removed = line_counts(change)
        if change.path in self.unconfirmed:
            state = "needs confirmation"
        elif self.dry_run:
            state = "would write"
        elif self.result is not None and change.path in self.result.files:
            state = "written"
        else:
            state = "unchanged"
        return {
            "path": change.path,
            "kind": change.kind.value,
            "hunks": len(change.hunks),
            "added": added,
            "removed": removed,
            "removed_share": round(change.removed_share(), 3),
            "state": state,
        }


def line_counts(change: FileChange) -> tuple[int, int]:
    """Lines added and removed by the change's accepted hunks (all hunks if none is decided)."""
    hunks = change.accepted or change.hunks
    added = sum(len(h.new_lines) for h in hunks)
    removed = sum(h.old_end - h.old_start for h in hunks)
    return added, removed


def accept_and_apply(
    proposal: Proposal,
    *,
    dry_run: bool = False,
    confirm_big_deletions: bool = False,
    checkpoint: bool = False,
    overwrite_read_only: bool = False,
) -> EditReport:
    """Accept every hunk of `proposal` and apply it unless `dry_run` (for `edit --apply`).

    Files whose changes remove more than half of them are left out (listed in `unconfirmed`)
    unless `confirm_big_deletions`. Raises ConflictError if a file changed since the proposal
    (nothing is written then).
    """
    proposal.accept_all()
    report = EditReport(proposal, dry_run)
    if not confirm_big_deletions:
        for change in proposal.big_deletions():
            change.reject_all()
            report.unconfirmed.append(change.path)
    if dry_run:
        # reports a conflict or a read-only file the same way a real apply would
        plan_writes(proposal, overwrite_read_only=overwrite_read_only)
        return report
    report.result = apply_proposal(
        proposal,
        confirm_big_deletions=confirm_big_deletions,
        checkpoint=checkpoint,
        overwrite_read_only=overwrite_read_only,
    )
    return report


def apply_reply(
    folder: Path,
    reply_text: str,
    *,
    dry_run: bool = False,
    confirm_big_deletions: bool = False,
    checkpoint: bool = False,
    overwrite_read_only: bool = False,
) -> EditReport:
    """Propose `reply_text`'s edits in `folder`, accept them all, and apply them unless dry-run.

    An earlier apply that a crash interrupted is put back first, so the proposal sees the folder
    as it really is (`report.recovered` says what was put back).
    """
    recovered = [] if dry_run else recover_interrupted(folder)
    report = accept_and_apply(
        propose(folder, reply_text),
        dry_run=dry_run,
        confirm_big_deletions=confirm_big_deletions,
        checkpoint=checkpoint,
        overwrite_read_only=overwrite_read_only,
    )
    report.recovered = recovered
    return report
