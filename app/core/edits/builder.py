"""Turn model replies into a `Proposal`: each block is checked and tried, nothing is written.

Blocks of one reply (and of the automatic retries that follow it) apply one after another onto an
in-memory copy of each file, so a later block may build on an earlier one. A block that fails, or
that would be unsafe, is refused with a reason and leaves that copy as it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from app.core.edits.blocks import BlockKind, EditBlock, parse_reply
from app.core.edits.errors import EditError
from app.core.edits.fsio import is_read_only, link_target
from app.core.edits.matching import Match, apply_search_replace, split_text
from app.core.edits.merge import OutLine, Reindent, merge
from app.core.edits.proposal import (
    BlockResult,
    BlockStatus,
    ChangeKind,
    FileChange,
    Proposal,
    normalise_endings,
)
from app.core.edits.safety import (
    is_placeholder,
    placeholder_problem,
    resolve_in_folder,
    symlink_in_folder,
    writes_redaction_note,
)
from app.core.edits.textfile import TextFile, decode, encode, strip_ending


@dataclass(slots=True)
class _Working:
    """One file as the blocks so far would leave it."""

    path: str
    real_path: Path
    original: TextFile | None  # None: the file does not exist yet
    lines: list[str] | None  # with endings; None: the file is (to be) deleted
    blocks: list[int]
    link: str | None = None  # the path is a symbolic link to this; only DELETE FILE touches it

    @property
    def encoding(self) -> str:
        return self.original.encoding if self.original else "utf-8"

    @property
    def newline(self) -> str:
        return self.original.newline if self.original else "\n"

    @property
    def contents(self) -> list[str]:
        return [strip_ending(line) for line in self.lines or []]


class _Refused(Exception):
    pass


class ProposalBuilder:
    """Collects the effect of one or more replies on the files of `folder`."""

    def __init__(self, folder: Path) -> None:
        if not folder.is_dir():
            raise EditError(f"The folder {folder} does not exist.")
        self.folder = folder.resolve()
        self._files: dict[Path, _Working] = {}
        self.results: list[BlockResult] = []

    def add_reply(self, reply: str, round_number: int = 0) -> list[BlockResult]:
        """Try every block of `reply`; returns this reply's block results."""
        results = [self._try(block, round_number) for block in parse_reply(reply)]
        self.results.extend(results)
        return results

    def build(self) -> Proposal:
        changes = [c for c in (self._change(w) for w in self._files.values()) if c is not None]
        changes.sort(key=lambda change: change.path)
        return Proposal(self.folder, changes, list(self.results))

    # One block ------------------------------------------------------------------------------------

    def _try(self, block: EditBlock, round_number: int) -> BlockResult:
        def result(status: BlockStatus, method: str = "", reason: str = "",
                   match: Match | None = None) -> BlockResult:  # fmt: skip
            return BlockResult(
                block.index, block.line, block.kind, block.path, status, method, reason,
                match.closest if match else None, round_number,
            )  # fmt: skip

        if block.kind is BlockKind.MALFORMED:
            return result(BlockStatus.REFUSED, reason=block.problem or "malformed block")
        try:
            link = None
            if block.kind is BlockKind.DELETE_FILE:
                link = symlink_in_folder(self.folder, block.path or "")
            working = self._working(block.path or "") if link is None else self._link(link)
            if block.kind is BlockKind.DELETE_FILE:
                method = self._delete(working)
            elif block.kind is BlockKind.WHOLE_FILE:
                method = self._whole_file(working, block.replace)
            else:
                match = self._search_replace(working, block)
                if not match.ok:
                    return result(BlockStatus.REFUSED, reason=match.reason, match=match)
                method = match.method
        except _Refused as refusal:
            return result(BlockStatus.REFUSED, reason=str(refusal))
        except EditError as exc:
            return result(BlockStatus.REFUSED, reason=_sentence(str(exc)))
        working.blocks.append(block.index)
        if method in ("no change", "already applied"):
            return result(BlockStatus.UNCHANGED, method)
        return result(BlockStatus.APPLIED, method)

    def _working(self, raw_path: str) -> _Working:
        real = resolve_in_folder(self.folder, raw_path)
        known = self._files.get(real)
        if known is not None:
            return known
        rel = real.relative_to(self.folder).as_posix()
        original = None
        if real.exists():
            try:
                raw = real.read_bytes()
            except OSError as exc:
                raise _Refused(f"{rel} cannot be read: {exc.strerror or exc}") from None
            original = decode(raw, rel)
        lines = list(original.lines) if original else None
        working = _Working(rel, real, original, lines, [])
        self._files[real] = working
        return working

    def _link(self, path: Path) -> _Working:
        """A symbolic link named by DELETE FILE: the link is deleted, never what it points to."""
        known = self._files.get(path)
        if known is not None:
            return known
        target = link_target(path)
        if target is None:
            raise _Refused(f"{path.name} stopped being a symbolic link while it was read")
        rel = path.relative_to(self.folder).as_posix()
        working = _Working(rel, path, None, [], [], link=target)
        self._files[path] = working
        return working

    def _commit(self, working: _Working, out: list[OutLine] | tuple[OutLine, ...]) -> None:
        """Store new lines: kept lines keep their own endings, new ones get the file's."""
        old = working.lines or []
        lines = [old[src] if src is not None else text + working.newline for text, src in out]
        new_contents = [text for text, _ in out]
        suspicious = any(is_placeholder(text) for text, src in out if src is None)
        problem = placeholder_problem(working.contents, new_contents) if suspicious else None
        if problem is not None:
            raise _Refused(
                f"the new text has the placeholder {problem.line!r} where the file has "
                f"{problem.removed} real line(s); write out the code in full instead of a "
                "placeholder"
            )
        if writes_redaction_note(working.contents, new_contents) is not None:
            raise _Refused(
                "the new text holds LeanCoder's note for a line that was hidden because it holds "
                "a secret; leave that line out of the edit so the real line stays as it is"
            )
        original_lines = working.original.lines if working.original else ()
        lines = normalise_endings(lines, original_lines, working.newline)
        encode("".join(lines), working.encoding, working.path)  # refuses what cannot be saved
        working.lines = lines

    def _search_replace(self, working: _Working, block: EditBlock) -> Match:
        if working.link is not None:
            raise _Refused(f"{working.path} is a symbolic link, deleted by an earlier block")
        if not block.search:
            if working.lines and any(line.strip() for line in working.lines):
                raise _Refused(
                    f"the SEARCH section is empty but {working.path} already exists and is not "
                    "empty; quote the lines to change in SEARCH"
                )
            self._commit(working, [(line, None) for line in split_text(block.replace)])
            return Match(True, "new file")
        if working.lines is None:
            gone = "is deleted by an earlier block" if working.original else "does not exist"
            raise _Refused(f"{working.path} {gone}; to create a file, leave SEARCH empty")
        match = apply_search_replace(working.contents, block.search, block.replace)
        if match.ok:
            self._commit(working, match.lines)
        return match

    def _whole_file(self, working: _Working, text: str) -> str:
        if working.link is not None:
            raise _Refused(f"{working.path} is a symbolic link, deleted by an earlier block")
        new = split_text(text)
        if working.lines is None:
            self._commit(working, [(line, None) for line in new])
            return "new file"
        old = working.contents
        out = merge(old, 0, old, new, [("equal", 0, len(old), 0, len(old))], Reindent())
        before = list(working.lines)
        self._commit(working, out)
        return "no change" if working.lines == before else "whole file"

    def _delete(self, working: _Working) -> str:
        if working.lines is None:
            raise _Refused(f"{working.path} does not exist, so it cannot be deleted")
        working.lines = None
        return "delete"

    # Result ---------------------------------------------------------------------------------------

    def _change(self, working: _Working) -> FileChange | None:
        if working.link is not None:
            if working.lines is not None:
                return None
            change = FileChange.build(working.path, working.real_path, ChangeKind.DELETE, None,
                                      "utf-8", "\n", (), ())  # fmt: skip
            change.link_target = working.link
            change.blocks = list(working.blocks)
            return change
        original = working.original
        if original is None:
            if working.lines is None:
                return None
            kind = ChangeKind.CREATE
        elif working.lines is None:
            kind = ChangeKind.DELETE
        elif tuple(working.lines) == original.lines:
            return None
        else:
            kind = ChangeKind.MODIFY
        change = FileChange.build(
            working.path,
            working.real_path,
            kind,
            original.raw if original else None,
            working.encoding,
            working.newline,
            original.lines if original else (),
            tuple(working.lines or ()),
        )
        change.blocks = list(working.blocks)
        change.read_only = original is not None and is_read_only(working.real_path)
        return change


def propose(folder: Path, reply_text: str) -> Proposal:
    """What `reply_text` would change in `folder`; nothing is written."""
    builder = ProposalBuilder(folder)
    builder.add_reply(reply_text)
    return builder.build()


def _sentence(message: str) -> str:
    """An error's sentence as a clause of a block report ("refused: the path ... ")."""
    message = message.rstrip(".")
    return "the " + message[4:] if message.startswith("The ") else message
