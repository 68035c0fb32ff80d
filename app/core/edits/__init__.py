"""Model-proposed edits to a folder: parse, match, review hunk by hunk, apply atomically, undo.

No Qt here. Typical use:

    proposal = propose(folder, reply_text)          # nothing written yet
    proposal.files[0].set_status(0, HunkStatus.ACCEPTED)
    result = apply_proposal(proposal)               # ConflictError if a file changed meanwhile
    undo_last(folder)                               # byte-for-byte

or, without review, `apply_reply(folder, reply_text, dry_run=False)`.
"""

from app.core.edits.apply import ApplyResult, apply_proposal, changed_since_proposal
from app.core.edits.blocks import BlockKind, EditBlock, parse_reply
from app.core.edits.builder import ProposalBuilder, propose
from app.core.edits.checkpoint import Checkpoint, git_checkpoint, in_git_repository
from app.core.edits.errors import (
    ConfirmationRequiredError,
    ConflictError,
    EditError,
    NothingToUndoError,
    ReadOnlyFileError,
    UnreadableFileError,
    UnsafePathError,
)
from app.core.edits.feedback import RetryOutcome, feedback_message, propose_with_retries
from app.core.edits.journal import Recovery, recover_interrupted
from app.core.edits.matching import Closest, Match, apply_search_replace
from app.core.edits.pipeline import EditReport, accept_and_apply, apply_reply
from app.core.edits.prompt import EditFormat, choose_edit_format, edit_system_prompt
from app.core.edits.proposal import (
    BlockResult,
    BlockStatus,
    ChangeKind,
    FileChange,
    Hunk,
    HunkStatus,
    Proposal,
)
from app.core.edits.transaction import WriteFailedError
from app.core.edits.undo import ChangeSet, UndoResult, latest_record, list_change_sets, undo_last

__all__ = [
    "ApplyResult",
    "BlockKind",
    "BlockResult",
    "BlockStatus",
    "ChangeKind",
    "ChangeSet",
    "Checkpoint",
    "Closest",
    "ConfirmationRequiredError",
    "ConflictError",
    "EditBlock",
    "EditError",
    "EditFormat",
    "EditReport",
    "FileChange",
    "Hunk",
    "HunkStatus",
    "Match",
    "NothingToUndoError",
    "Proposal",
    "ProposalBuilder",
    "ReadOnlyFileError",
    "Recovery",
    "RetryOutcome",
    "UndoResult",
    "UnreadableFileError",
    "UnsafePathError",
    "WriteFailedError",
    "accept_and_apply",
    "apply_proposal",
    "apply_reply",
    "apply_search_replace",
    "changed_since_proposal",
    "choose_edit_format",
    "edit_system_prompt",
    "feedback_message",
    "git_checkpoint",
    "in_git_repository",
    "latest_record",
    "list_change_sets",
    "parse_reply",
    "propose",
    "propose_with_retries",
    "recover_interrupted",
    "undo_last",
]
