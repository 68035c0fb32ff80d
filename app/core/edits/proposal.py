"""A proposal: what the model's reply would change, file by file and hunk by hunk, before any write.

Each `FileChange` keeps the file's original bytes (to detect a change on disk before applying), its
lines with their own endings, and the proposed lines. The difference is cut into hunks; each hunk
is pending, accepted or rejected, and its proposed text may be edited by the user. Only accepted
hunks reach disk: `final_lines()` composes them onto the original lines.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from app.core.edits.blocks import BlockKind
from app.core.edits.errors import EditError
from app.core.edits.matching import Closest
from app.core.edits.safety import is_big_deletion_count, removal_share
from app.core.edits.textfile import displayable, encode, ending_of, split_lines, strip_ending

# Changes closer than this many unchanged lines form one hunk.
HUNK_MERGE_GAP = 3


class HunkStatus(Enum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    REJECTED = "rejected"


class ChangeKind(Enum):
    MODIFY = "modify"
    CREATE = "create"
    DELETE = "delete"


class BlockStatus(Enum):
    APPLIED = "applied"  # the block's change is in the proposal
    UNCHANGED = "unchanged"  # nothing to do (already applied, or SEARCH equals REPLACE)
    REFUSED = "refused"


@dataclass(frozen=True, slots=True)
class BlockResult:
    index: int  # the block's number in its reply
    line: int  # where it starts in the reply
    kind: BlockKind
    path: str | None
    status: BlockStatus
    method: str = ""  # how it matched: exact, whitespace, indentation, ...
    reason: str = ""  # why it was refused
    closest: Closest | None = None
    round: int = 0  # 0: the first reply; 1, 2: automatic retries

    def describe(self) -> str:
        where = self.path or "(no file)"
        if self.status is BlockStatus.REFUSED:
            return f"block {self.index} ({where}): refused: {self.reason}"
        if self.status is BlockStatus.UNCHANGED:
            return f"block {self.index} ({where}): nothing to change ({self.method})"
        return f"block {self.index} ({where}): applied ({self.method})"


@dataclass(slots=True)
class Hunk:
    index: int
    old_start: int  # 0-based range of original lines the hunk replaces
    old_end: int
    proposed: tuple[str, ...]  # new lines with endings, as the model proposed them
    new_lines: tuple[str, ...]  # the same, or the user's edited text
    status: HunkStatus = HunkStatus.PENDING

    @property
    def edited(self) -> bool:
        return self.new_lines != self.proposed


@dataclass(slots=True)
class FileChange:
    path: str  # relative to the folder, with "/"
    real_path: Path
    kind: ChangeKind
    original: bytes | None  # None for a file the change creates
    encoding: str
    newline: str
    original_lines: tuple[str, ...]
    proposed_lines: tuple[str, ...]
    hunks: list[Hunk] = field(default_factory=list)
    blocks: list[int] = field(default_factory=list)  # numbers of the blocks that made it
    link_target: str | None = None  # a DELETE of a symbolic link (to this): the link goes
    read_only: bool = False  # the file has no write permission; applying needs an override

    @classmethod
    def build(
        cls,
        path: str,
        real_path: Path,
        kind: ChangeKind,
        original: bytes | None,
        encoding: str,
        newline: str,
        original_lines: tuple[str, ...],
        proposed_lines: tuple[str, ...],
    ) -> FileChange:
        change = cls(path, real_path, kind, original, encoding, newline, original_lines,
                     proposed_lines)  # fmt: skip
        change.hunks = change._cut_hunks()
        return change

    def _cut_hunks(self) -> list[Hunk]:
        if self.kind is not ChangeKind.MODIFY:
            end = len(self.original_lines)
            return [Hunk(0, 0, end, self.proposed_lines, self.proposed_lines)]
        ops = difflib.SequenceMatcher(
            None, self.original_lines, self.proposed_lines, autojunk=False
        ).get_opcodes()
        groups: list[list[tuple[str, int, int, int, int]]] = []
        for op in ops:
            if op[0] == "equal":
                continue
            if groups and op[1] - groups[-1][-1][2] < HUNK_MERGE_GAP:
                groups[-1].append(op)
            else:
                groups.append([op])
        hunks = []
        for number, group in enumerate(groups):
            first, last = group[0], group[-1]
            lines = self.proposed_lines[first[3] : last[4]]
            hunks.append(Hunk(number, first[1], last[2], lines, lines))
        return hunks

    # Review ---------------------------------------------------------------------------------------

    def set_status(self, hunk: int, status: HunkStatus) -> None:
        self.hunks[hunk].status = status

    def accept_all(self) -> None:
        for hunk in self.hunks:
            hunk.status = HunkStatus.ACCEPTED

    def reject_all(self) -> None:
        for hunk in self.hunks:
            hunk.status = HunkStatus.REJECTED

    def set_hunk_text(self, hunk: int, text: str) -> None:
        """The user's own text for a hunk (line endings become the file's)."""
        if self.kind is ChangeKind.DELETE:
            raise EditError(f"The deletion of {self.path} cannot be edited; reject it instead.")
        lines = [strip_ending(line) + self.newline for line in split_lines(text)]
        self.hunks[hunk].new_lines = tuple(lines)

    def reset_hunk(self, hunk: int) -> None:
        self.hunks[hunk].new_lines = self.hunks[hunk].proposed

    @property
    def accepted(self) -> list[Hunk]:
        return [h for h in self.hunks if h.status is HunkStatus.ACCEPTED]

    def old_lines(self, hunk: Hunk) -> tuple[str, ...]:
        return self.original_lines[hunk.old_start : hunk.old_end]

    # Result ---------------------------------------------------------------------------------------

    def final_lines(self) -> list[str] | None:
        """The file's lines with the accepted hunks applied; None if it is to be deleted."""
        if self.kind is ChangeKind.DELETE:
            return None if self.accepted else list(self.original_lines)
        if self.kind is ChangeKind.CREATE:
            return normalise_endings(list(self.hunks[0].new_lines), (), self.newline)
        out: list[str] = []
        pos = 0
        for hunk in self.hunks:
            if hunk.status is HunkStatus.ACCEPTED:
                out.extend(self.original_lines[pos : hunk.old_start])
                out.extend(hunk.new_lines)
                pos = hunk.old_end
        out.extend(self.original_lines[pos:])
        return normalise_endings(out, self.original_lines, self.newline)

    def final_bytes(self) -> bytes | None:
        lines = self.final_lines()
        if lines is None:
            return None
        return encode("".join(lines), self.encoding, self.path)

    @property
    def writes(self) -> bool:
        """Whether applying the accepted hunks changes the disk at all."""
        if not self.accepted:
            return False
        if self.kind is not ChangeKind.MODIFY:
            return True
        return self.final_bytes() != self.original

    def _removed(self) -> tuple[int, int]:
        """Non-blank original lines the accepted hunks drop, and the file's non-blank total."""
        total = sum(1 for line in self.original_lines if strip_ending(line).strip())
        removed = 0
        for hunk in self.accepted:  # hunk by hunk: cheap even for a large file
            old = [strip_ending(line) for line in self.old_lines(hunk)]
            removed += removal_share(old, [strip_ending(line) for line in hunk.new_lines])[0]
        return removed, total

    def is_big_deletion(self) -> bool:
        """The accepted hunks remove more than half of the file (or delete it)."""
        if self.kind is ChangeKind.CREATE or not self.accepted:
            return False
        if self.kind is ChangeKind.DELETE:
            return True
        removed, total = self._removed()
        return is_big_deletion_count(removed, total)

    def removed_share(self) -> float:
        if self.kind is ChangeKind.DELETE:
            return 1.0 if self.accepted else 0.0
        removed, total = self._removed()
        return removed / total if total else 0.0

    def unified_diff(self, *, accepted_only: bool = False, context: int = 3) -> str:
        """A unified diff of the proposal (or of what applying would write), for showing."""
        new = self.final_lines() if accepted_only else list(self.proposed_lines)
        old_name = "/dev/null" if self.kind is ChangeKind.CREATE else f"a/{self.path}"
        deleted = new is None or (self.kind is ChangeKind.DELETE and not accepted_only)
        new_name = "/dev/null" if deleted else f"b/{self.path}"
        old = [strip_ending(x) + "\n" for x in self.original_lines]
        after = [strip_ending(x) + "\n" for x in (new or [])]
        diff = "".join(difflib.unified_diff(old, after, old_name, new_name, n=context))
        return displayable(diff)


def normalise_endings(lines: list[str], original: tuple[str, ...], newline: str) -> list[str]:
    """Every line but the last ends with a line break; the last keeps the file's habit."""
    out = [line if ending_of(line) else line + newline for line in lines]
    if out and original and not ending_of(original[-1]):
        out[-1] = strip_ending(out[-1])
    return out


@dataclass(slots=True)
class Proposal:
    folder: Path
    files: list[FileChange]
    blocks: list[BlockResult]

    def file(self, path: str) -> FileChange:
        for change in self.files:
            if change.path == path:
                return change
        raise KeyError(path)

    def accept_all(self) -> None:
        for change in self.files:
            change.accept_all()

    def reject_all(self) -> None:
        for change in self.files:
            change.reject_all()

    @property
    def refused(self) -> list[BlockResult]:
        return [b for b in self.blocks if b.status is BlockStatus.REFUSED]

    def big_deletions(self) -> list[FileChange]:
        return [f for f in self.files if f.is_big_deletion()]

    def unified_diff(self, *, accepted_only: bool = False) -> str:
        return "".join(f.unified_diff(accepted_only=accepted_only) for f in self.files)
