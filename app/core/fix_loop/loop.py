"""Fix until the tests pass: rounds of edits and test runs in a scratch copy, within budgets.

The loop runs the tests once as a baseline, then in each round asks for edits through the
conversation core (`ChatSession` with edits on: the same prompt, edit retries and thinking policy
as the window's Propose edits) with the folder context of the scratch copy, the task and what
failed; applies the round's proposal to the scratch copy only; and runs the tests there. It stops
when they pass, when two rounds in a row end with the same failure, when a budget is spent, after
the last round, or on Stop. Small local models loop (the same request again and again, tens of
thousands of thinking tokens on one step: design notes, section 9), so the budgets are enforced
token by token: a `_BudgetGate` is the reply's cancel token and closes it the moment a round's
thinking and answer tokens reach the round's budget, or the task's reach the task budget.

Nothing is written to the user's folder here. The result is one proposal of all rounds against
the folder (see `report`), for the user to review and apply as one undoable step.

`run_fix` is a plain generator of `FixEvent`s, like `ChatSession.send`: the CLI iterates it, the
window runs it on the model worker and forwards the events.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Literal

from app.core.edits.apply import plan_writes
from app.core.edits.errors import EditError
from app.core.edits.proposal import BlockResult, BlockStatus, Proposal
from app.core.edits.transaction import run_steps
from app.core.errors import LeanCoderError
from app.core.fix_loop.commands import CommandError, split_command
from app.core.fix_loop.defaults import (
    DEFAULT_ROUND_BUDGET,
    DEFAULT_ROUNDS,
    DEFAULT_TASK_BUDGET,
    MAX_ROUNDS,
)
from app.core.fix_loop.failures import DEFAULT_SUMMARY_TOKENS, FailureSummary, summarise
from app.core.fix_loop.report import (
    STOP_MESSAGES,
    FixReport,
    RoundReport,
    StopReason,
    TestResult,
    combined_proposal,
    renumber,
)
from app.core.fix_loop.runner import DEFAULT_TIMEOUT_S, run_command
from app.core.fix_loop.scratch import ScratchCopy
from app.core.llm.engine import CancelToken, Engine, SamplingParams
from app.core.session.chat import FEEDBACK_PREFIX, ChatSession, FolderChoice, SessionEvent
from app.core.thinking.policy import UNPRUNED, ThinkingPolicy

FixEventKind = Literal[
    "baseline",  # the tests before any change: `tests`
    "round_start",  # round `round` begins
    "session",  # an event of the round's conversation: `session`
    "tokens",  # the spend changed: `task_tokens`, `round_tokens`, `thinking_tokens`
    "applied",  # the round's edits are in the scratch copy: `files`
    "tests",  # the tests after round `round`: `tests`
    "done",  # the loop ended: `report`
]


@dataclass(frozen=True, slots=True)
class FixSettings:
    test_command: str
    lint_command: str = ""
    rounds: int = DEFAULT_ROUNDS
    task_budget: int = DEFAULT_TASK_BUDGET  # thinking + answer tokens over all rounds
    round_budget: int = DEFAULT_ROUND_BUDGET  # thinking + answer tokens of one round's replies
    test_timeout_s: float = DEFAULT_TIMEOUT_S
    summary_tokens: int = DEFAULT_SUMMARY_TOKENS  # what goes back to the model of a failure

    def check(self) -> None:
        split_command(self.test_command)
        if self.lint_command:
            split_command(self.lint_command, "lint command")
        if not 1 <= self.rounds <= MAX_ROUNDS:
            raise LeanCoderError(f"The number of rounds must be between 1 and {MAX_ROUNDS}.")
        if self.task_budget < 1 or self.round_budget < 1:
            raise LeanCoderError("The token budgets must be at least 1 token.")
        if self.test_timeout_s <= 0:
            raise LeanCoderError("The test timeout must be more than 0 seconds.")


@dataclass(frozen=True, slots=True)
class FixEvent:
    kind: FixEventKind
    round: int = 0
    session: SessionEvent | None = None
    tests: TestResult | None = None
    files: tuple[str, ...] = ()
    task_tokens: int = 0
    round_tokens: int = 0
    thinking_tokens: int = 0  # of this round
    report: FixReport | None = None


@dataclass(slots=True)
class _BudgetGate:
    """The reply's cancel token: the user's Stop, or a budget reached."""

    user: CancelToken | None
    round_limit: int
    task_left: int
    spent: int = 0  # this round's thinking + answer tokens so far

    def is_set(self) -> bool:
        return self.user_stopped or self.spent >= min(self.round_limit, self.task_left)

    @property
    def user_stopped(self) -> bool:
        return self.user is not None and self.user.is_set()


@dataclass(slots=True)
class _State:
    report: FixReport
    files: list[str]
    originals: dict[str, bytes | None] = field(default_factory=dict)
    blocks: list[BlockResult] = field(default_factory=list)


def run_fix(
    engine: Engine,
    folder: FolderChoice,
    task: str,
    settings: FixSettings,
    sampling: SamplingParams | None = None,
    *,
    policy: ThinkingPolicy = UNPRUNED,
    force_thinking: bool = False,
    cancel: CancelToken | None = None,
    stop_thinking: CancelToken | None = None,
) -> Generator[FixEvent, None, FixReport]:
    """Run the loop for `task` on `folder`; the last event is "done" with the report."""
    settings.check()
    if not task.strip():
        raise LeanCoderError("Say what to fix: the task is empty.")
    report = FixReport(folder.root, task, settings.test_command, "copy", settings.rounds,
                       settings.task_budget, settings.round_budget)  # fmt: skip
    with ScratchCopy(folder.root, folder.files) as scratch:
        report.scratch_kind = scratch.kind
        state = _State(report, list(folder.files))
        session = ChatSession()
        session.propose_edits = True
        session.policy, session.force_thinking = policy, force_thinking
        reason = yield from _rounds(engine, folder, task, settings, sampling, scratch, state,
                                    session, cancel, stop_thinking)  # fmt: skip
        report.stopped = reason
        report.message = report.message or STOP_MESSAGES[reason]
        if state.originals:
            proposal = combined_proposal(folder.root, state.originals, scratch.read, state.blocks)
            report.proposal = proposal if proposal.files else None
    yield FixEvent("done", report=report, task_tokens=report.tokens)
    return report


def _rounds(
    engine: Engine,
    folder: FolderChoice,
    task: str,
    settings: FixSettings,
    sampling: SamplingParams | None,
    scratch: ScratchCopy,
    state: _State,
    session: ChatSession,
    cancel: CancelToken | None,
    stop_thinking: CancelToken | None,
) -> Generator[FixEvent, None, StopReason]:
    report = state.report
    try:
        baseline, summary = _run_tests(settings, scratch, engine, cancel)
    except CommandError as exc:
        report.message = str(exc)
        return "test_command"
    report.baseline = baseline
    yield FixEvent("baseline", tests=baseline)
    if cancel is not None and cancel.is_set():
        return "stopped"
    previous: str | None = None
    for number in range(1, settings.rounds + 1):
        if cancel is not None and cancel.is_set():
            return "stopped"
        if report.tokens >= settings.task_budget:
            return "task_budget"
        current = RoundReport(number)
        report.rounds.append(current)
        yield FixEvent("round_start", round=number, task_tokens=report.tokens)
        session.folder = FolderChoice(scratch.root, tuple(state.files),
                                      folder.selected or tuple(state.files),
                                      folder.allow_secrets)  # fmt: skip
        prompt = _first_prompt(task, settings, baseline, summary) if number == 1 else (
            _follow_up(number, settings, summary))  # fmt: skip
        gate = _BudgetGate(cancel, settings.round_budget, settings.task_budget - report.tokens)
        outcome = yield from _ask(engine, session, prompt, sampling, gate, stop_thinking, current,
                                  report)  # fmt: skip
        if isinstance(outcome, str):
            report.message = outcome
            return "model_failed"
        if outcome is None:  # the reply was cut: by Stop or by a budget
            if gate.user_stopped:
                return "stopped"
            return "task_budget" if gate.task_left <= settings.round_budget else "round_budget"
        current.blocks_applied = sum(1 for b in outcome.blocks
                                     if b.status is not BlockStatus.REFUSED)  # fmt: skip
        current.blocks_refused = len(outcome.refused)
        state.blocks.extend(renumber(outcome.blocks, number))
        if not outcome.files:
            return "no_edits"
        try:
            current.files = _apply_to_scratch(outcome, scratch, state)
        except EditError as exc:
            report.message = f"The round's edits could not be written to the scratch copy: {exc}"
            return "no_edits"
        yield FixEvent("applied", round=number, files=tuple(current.files))
        try:
            current.tests, summary = _run_tests(settings, scratch, engine, cancel)
        except CommandError as exc:  # it ran before; something in the round broke it
            report.message = str(exc)
            return "test_command"
        yield FixEvent("tests", round=number, tests=current.tests, task_tokens=report.tokens)
        if cancel is not None and cancel.is_set() and not current.tests.passed:
            return "stopped"
        if current.tests.passed:
            return "passed"
        if previous is not None and summary.signature == previous:
            return "repeated_failure"
        previous = summary.signature
    return "rounds"


def _ask(
    engine: Engine,
    session: ChatSession,
    prompt: str,
    sampling: SamplingParams | None,
    gate: _BudgetGate,
    stop_thinking: CancelToken | None,
    current: RoundReport,
    report: FixReport,
) -> Generator[FixEvent, None, Proposal | str | None]:
    """One round's conversation; the proposal, a failure's message, or None if it was cut."""
    proposal: Proposal | None = None
    base_thinking = base_answer = 0
    for event in session.send(engine, prompt, sampling, cancel=gate, stop_thinking=stop_thinking):
        if event.kind == "reply_start":
            current.replies += 1
            base_thinking, base_answer = current.thinking_tokens, current.answer_tokens
        yield FixEvent("session", round=current.number, session=event)
        if event.stats is not None and event.kind in ("text", "done"):
            current.thinking_tokens = base_thinking + event.stats.thinking_tokens
            current.answer_tokens = base_answer + event.stats.answer_tokens
            gate.spent = current.tokens
            yield FixEvent("tokens", round=current.number, task_tokens=report.tokens,
                           round_tokens=current.tokens,
                           thinking_tokens=current.thinking_tokens)  # fmt: skip
        if event.kind == "failed":
            return event.text
        if event.kind in ("proposal", "no_edits") and event.proposal is not None:
            proposal = event.proposal
    return proposal


def _apply_to_scratch(proposal: Proposal, scratch: ScratchCopy, state: _State) -> list[str]:
    """Write every hunk of the round's proposal into the scratch copy (never the folder)."""
    if proposal.folder != scratch.root.resolve():
        raise EditError("The proposal is not for the scratch copy.")
    proposal.accept_all()
    for change in proposal.files:
        if change.path not in state.originals:
            state.originals[change.path] = scratch.original(change.path, change.original)
        if change.path not in state.files:
            state.files.append(change.path)
    run_steps(proposal.folder, plan_writes(proposal, overwrite_read_only=True))
    return [change.path for change in proposal.files]


def _run_tests(
    settings: FixSettings, scratch: ScratchCopy, engine: Engine, cancel: CancelToken | None
) -> tuple[TestResult, FailureSummary]:
    run = run_command(settings.test_command, scratch.root, timeout_s=settings.test_timeout_s,
                      cancel=cancel)  # fmt: skip
    root = str(scratch.root)
    budget = settings.summary_tokens
    lint = None
    if settings.lint_command:
        lint = run_command(settings.lint_command, scratch.root, timeout_s=settings.test_timeout_s,
                           what="lint command", cancel=cancel)  # fmt: skip
        budget = settings.summary_tokens * 2 // 3
    summary = summarise(run, engine.count_tokens, budget, scratch_root=root)
    text, sig = summary.text, summary.signature
    if lint is not None and not lint.passed:
        linted = summarise(lint, engine.count_tokens, settings.summary_tokens - budget,
                           scratch_root=root)  # fmt: skip
        text, sig = f"{text}\n\n{linted.text}", f"{sig}\n--lint--\n{linted.signature}"
    result = TestResult.of(run, summary.failing, text, lint)
    return result, FailureSummary(summary.failing, text, sig)


def _first_prompt(
    task: str, settings: FixSettings, baseline: TestResult, summary: FailureSummary
) -> str:
    if baseline.passed:
        state = f"Before any change, `{settings.test_command}` passes."
    else:
        state = f"Before any change, the tests fail.\n{summary.text}"
    return (
        f"{task.strip()}\n\nThe project's tests run with `{settings.test_command}`. {state}\n\n"
        "Change the code so that the task is done and the tests pass. Change the tests only if "
        "the task asks for it."
    )


def _follow_up(number: int, settings: FixSettings, summary: FailureSummary) -> str:
    return (
        f"{FEEDBACK_PREFIX}Your edits are in place, but the tests still fail (round {number} of "
        f"{settings.rounds}).\n{summary.text}\n\nFix the code so that the tests pass."
    )
