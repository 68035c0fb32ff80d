"""Tell the model which blocks failed (with the file's closest real lines) and let it retry.

Blocks that applied stay in the proposal; only the failed ones go back, at most twice by default.
Nothing here writes to disk: the retries only refine the proposal the user will review.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from app.core.edits.builder import ProposalBuilder
from app.core.edits.proposal import BlockResult, BlockStatus, Proposal

Message = dict[str, str]
Generate = Callable[[list[Message]], str]
MAX_RETRIES = 2
MAX_CLOSEST_LINES = 40


def _fence(lines: Sequence[str]) -> str:
    longest = max((len(line) - len(line.lstrip("`")) for line in lines), default=0)
    fence = "`" * max(3, longest + 1)
    return "\n".join([fence, *lines, fence])


def _describe_failure(result: BlockResult) -> str:
    where = f"{result.path}" if result.path else "a block with no file path"
    text = f"- Block {result.index} ({where}, line {result.line} of your reply): {result.reason}."
    closest = result.closest
    if closest is not None:
        shown = list(closest.lines[:MAX_CLOSEST_LINES])
        text += (
            f"\n  The closest lines in {result.path} (from line {closest.start}, "
            f"{closest.similarity:.0%} similar) are:\n{_fence(shown)}"
        )
    return text


def feedback_message(
    proposal_or_results: Proposal | Sequence[BlockResult], round_number: int | None = None
) -> str | None:
    """The message that asks the model to fix its failed blocks; None if none failed.

    With a Proposal, the blocks of `round_number` (default: its latest round) are considered.
    """
    if isinstance(proposal_or_results, Proposal):
        blocks = proposal_or_results.blocks
        wanted = (
            round_number if round_number is not None else max((b.round for b in blocks), default=0)
        )
        results: Sequence[BlockResult] = [b for b in blocks if b.round == wanted]
    else:
        results = proposal_or_results
    failed = [r for r in results if r.status is BlockStatus.REFUSED]
    if not failed:
        return None
    applied = [r for r in results if r.status is not BlockStatus.REFUSED]
    kept = (
        f"The other {len(applied)} block(s) applied and are kept; do not send them again."
        if applied
        else "No block applied."
    )
    parts = [
        f"{len(failed)} of your edit block(s) could not be applied:",
        *(_describe_failure(r) for r in failed),
        "",
        kept,
        "Reply with corrected blocks for the failed ones only. The SEARCH section must copy the "
        "file's current lines exactly (all of them, in order, with their indentation), and must "
        'match only one place. Never use placeholders such as "... existing code ...": write '
        "the code in full.",
    ]
    return "\n".join(parts)


@dataclass(slots=True)
class RetryOutcome:
    proposal: Proposal
    replies: list[str] = field(default_factory=list)  # the first reply, then one per retry
    messages: list[Message] = field(default_factory=list)  # the conversation, feedback included

    @property
    def retries(self) -> int:
        return max(0, len(self.replies) - 1)


def propose_with_retries(
    folder: Path,
    messages: Sequence[Message],
    generate: Generate,
    *,
    first_reply: str | None = None,
    max_retries: int = MAX_RETRIES,
) -> RetryOutcome:
    """Ask (unless `first_reply` is given), propose, and send failed blocks back up to twice."""
    history = list(messages)
    builder = ProposalBuilder(folder)
    reply = first_reply if first_reply is not None else generate(list(history))
    replies = [reply]
    results = builder.add_reply(reply, 0)
    for round_number in range(1, max_retries + 1):
        feedback = feedback_message(results)
        if feedback is None:
            break
        history += [
            {"role": "assistant", "content": reply},
            {"role": "user", "content": feedback},
        ]
        reply = generate(list(history))
        replies.append(reply)
        results = builder.add_reply(reply, round_number)
    history.append({"role": "assistant", "content": reply})
    return RetryOutcome(builder.build(), replies, history)
