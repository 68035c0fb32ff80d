"""What a fix run did, round by round, and the one proposal it ends with.

The proposal is the combined change of every round, made against the user's folder: for each file
any round touched, the bytes it had when the scratch copy was made against the bytes it has in
the scratch copy at the end. It is an ordinary `Proposal` (hunks to accept or reject, applied by
`apply_proposal` as one undoable change set), and its originals are the bytes the loop started
from, so a file the user changed meanwhile is a conflict there, refused as for any edit.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from app.core.edits.proposal import BlockResult, ChangeKind, FileChange, Proposal
from app.core.edits.safety import resolve_in_folder
from app.core.edits.textfile import decode
from app.core.fix_loop.runner import CommandRun

StopReason = Literal[
    "passed",  # the tests pass
    "repeated_failure",  # two rounds in a row ended with the same failure
    "task_budget",  # thinking + answer tokens over all rounds reached the task budget
    "round_budget",  # one round's replies reached the round budget
    "rounds",  # the last round ended and the tests still fail
    "stopped",  # the user pressed Stop
    "no_edits",  # the model proposed nothing that applied
    "model_failed",  # the model's reply failed (the message says why)
    "test_command",  # the test command could not run at all
]

STOP_MESSAGES: dict[str, str] = {
    "passed": "The tests pass.",
    "repeated_failure": "Stopped: the same failure came back twice.",
    "task_budget": "Stopped: the task's token budget is spent.",
    "round_budget": "Stopped: a round used its whole token budget.",
    "rounds": "Stopped after the last round; the tests still fail.",
    "stopped": "Stopped by you.",
    "no_edits": "Stopped: the model proposed no edits that apply.",
    "model_failed": "Stopped: the model's reply failed.",
    "test_command": "Stopped: the test command could not run.",
}


@dataclass(frozen=True, slots=True)
class TestResult:
    """One run of the tests (and the lint command, when there is one), as reported."""

    __test__ = False  # not a pytest test class, whatever its name

    passed: bool
    summary: str  # "passed", "failed (exit code 1)", "timed out after 120 s"
    failing: tuple[str, ...]
    seconds: float
    output_tail: str  # what was sent back to the model (already trimmed)
    lint: str = ""  # the lint command's outcome, "" without one

    @classmethod
    def of(cls, run: CommandRun, failing: tuple[str, ...], text: str,
           lint: CommandRun | None = None) -> TestResult:  # fmt: skip
        lint_ok = lint is None or lint.passed
        return cls(run.passed and lint_ok, run.describe(), failing, round(run.seconds, 2), text,
                   "" if lint is None else lint.describe())  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "summary": self.summary,
            "failing": list(self.failing),
            "seconds": self.seconds,
            "lint": self.lint,
        }


@dataclass(slots=True)
class RoundReport:
    number: int  # 1-based
    replies: int = 0  # the first reply and the edit retries within the round
    thinking_tokens: int = 0
    answer_tokens: int = 0
    blocks_applied: int = 0
    blocks_refused: int = 0
    files: list[str] = field(default_factory=list)  # touched in the scratch copy
    tests: TestResult | None = None  # None: the round ended before the tests ran

    @property
    def tokens(self) -> int:
        return self.thinking_tokens + self.answer_tokens

    def to_dict(self) -> dict[str, Any]:
        return {
            "round": self.number,
            "replies": self.replies,
            "thinking_tokens": self.thinking_tokens,
            "answer_tokens": self.answer_tokens,
            "tokens": self.tokens,
            "blocks_applied": self.blocks_applied,
            "blocks_refused": self.blocks_refused,
            "files": list(self.files),
            "tests": None if self.tests is None else self.tests.to_dict(),
        }


@dataclass(slots=True)
class FixReport:
    folder: Path
    task: str
    test_command: str
    scratch_kind: str  # "git worktree" or "copy"
    rounds_allowed: int
    task_budget: int
    round_budget: int
    baseline: TestResult | None = None
    rounds: list[RoundReport] = field(default_factory=list)
    stopped: StopReason = "rounds"
    message: str = ""  # why it stopped, for a person
    proposal: Proposal | None = None  # the combined change; None when nothing changed

    @property
    def tokens(self) -> int:
        return sum(r.tokens for r in self.rounds)

    @property
    def final(self) -> TestResult | None:
        """The tests after the last round that ran them (the baseline if none did)."""
        for report in reversed(self.rounds):
            if report.tests is not None:
                return report.tests
        return self.baseline

    def diff(self) -> str:
        return self.proposal.unified_diff() if self.proposal else ""

    def to_dict(self) -> dict[str, Any]:
        final = self.final
        return {
            "folder": str(self.folder),
            "task": self.task,
            "test_command": self.test_command,
            "scratch": self.scratch_kind,
            "rounds_allowed": self.rounds_allowed,
            "task_budget": self.task_budget,
            "round_budget": self.round_budget,
            "tokens": self.tokens,
            "baseline": None if self.baseline is None else self.baseline.to_dict(),
            "rounds": [r.to_dict() for r in self.rounds],
            "final": None if final is None else final.to_dict(),
            "passed": bool(final and final.passed),
            "stopped": self.stopped,
            "message": self.message,
            "files": [c.path for c in self.proposal.files] if self.proposal else [],
            "diff": self.diff(),
        }


def combined_proposal(
    folder: Path,
    originals: dict[str, bytes | None],
    read_now: Callable[[str], bytes | None],
    blocks: Iterable[BlockResult],
) -> Proposal:
    """One proposal against `folder`: each path's `originals` bytes against `read_now(path)`.

    Paths whose bytes did not change in the end (an edit a later round took back) are left out.
    Raises EditError if a path is no longer inside the folder (for example a link put there).
    """
    root = folder.resolve()
    changes: list[FileChange] = []
    for rel in sorted(originals):
        before, after = originals[rel], read_now(rel)
        if before == after:
            continue
        real = resolve_in_folder(root, rel)
        old = decode(before, rel) if before is not None else None
        new = decode(after, rel) if after is not None else None
        if old is None and new is not None:
            kind = ChangeKind.CREATE
        elif new is None:
            kind = ChangeKind.DELETE
        else:
            kind = ChangeKind.MODIFY
        base = old or new
        if base is None:  # both absent: nothing to say
            continue
        changes.append(FileChange.build(
            rel, real, kind, before, base.encoding, base.newline,
            old.lines if old else (), new.lines if new else (),
        ))  # fmt: skip
    return Proposal(root, changes, list(blocks))


def renumber(blocks: Iterable[BlockResult], fix_round: int) -> list[BlockResult]:
    """Block results of one fix round, with `round` set to the fix round (1-based)."""
    return [dataclasses.replace(b, round=fix_round) for b in blocks]

