"""`leancoder fix --folder DIR "task"`: rounds of edits and test runs until the tests pass.

Edits land in a scratch copy only; the rounds are printed as they go (on stderr with --json).
At the end the combined diff is printed. It is written to the folder only with `--apply` (one
undoable change set: `leancoder undo`), so nothing reaches the folder without the user asking:
without --apply, review and apply it in the window, or run again with --apply.

The test command is the folder's saved one, else the one detected from its files; `--test CMD`
uses (and saves) another. It is the project's own code: it runs as the user, in the scratch copy,
with a timeout.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from app.cli import options as opt
from app.cli.code import add_allow_secrets, folder_choice, report_context
from app.cli.prompt_input import add_prompt_arguments, resolve_prompt, stdin_bytes
from app.core.errors import LeanCoderError

if TYPE_CHECKING:
    from app.core.fix_loop.loop import FixEvent, FixSettings
    from app.core.fix_loop.report import FixReport, TestResult

EXIT_PASSED = 0
EXIT_NOT_PASSED = 1


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from app.core.fix_loop import defaults as loop

    fix = sub.add_parser(
        "fix",
        help="edit a scratch copy of a folder until its tests pass; print the diff "
        "(write it with --apply)",
    )
    add_prompt_arguments(fix, "task", "what to fix or build")
    fix.add_argument("--folder", required=True, help="the project folder")
    fix.add_argument(
        "--test",
        metavar="CMD",
        help="the test command (run without a shell, in the scratch copy); saved for the folder. "
        "Default: the folder's saved command, else one detected from its files",
    )
    fix.add_argument("--lint", metavar="CMD", help="a lint command run after the tests; saved too")
    fix.add_argument("--rounds", type=opt.positive_int, default=loop.DEFAULT_ROUNDS,
                     help=f"most rounds of edits (default: {loop.DEFAULT_ROUNDS})")  # fmt: skip
    fix.add_argument(
        "--task-budget",
        type=opt.positive_int,
        default=loop.DEFAULT_TASK_BUDGET,
        metavar="TOKENS",
        help="thinking + answer tokens for all rounds together "
        f"(default: {loop.DEFAULT_TASK_BUDGET:,})",
    )
    fix.add_argument(
        "--round-budget",
        type=opt.positive_int,
        default=loop.DEFAULT_ROUND_BUDGET,
        metavar="TOKENS",
        help=f"thinking + answer tokens for one round (default: {loop.DEFAULT_ROUND_BUDGET:,})",
    )
    fix.add_argument("--test-timeout", type=float, default=120.0, metavar="SECONDS",
                     help="stop a test run after this long (default: 120)")  # fmt: skip
    fix.add_argument(
        "--select",
        action="append",
        default=[],
        metavar="PATH",
        help="a file to send in full (repeatable); default: every file, as the context allows",
    )
    add_allow_secrets(fix)
    opt.add_model(fix)
    opt.add_load_options(fix)
    opt.add_sampling(fix, temperature=0.2, seed=1234, max_tokens=None)
    opt.add_template(fix)
    opt.add_thinking(fix)
    fix.add_argument(
        "--apply", action="store_true", help="write the combined diff to the folder (undoable)"
    )
    fix.add_argument("--yes", action="store_true", help="confirm removing most of a file")
    opt.add_json(fix, "print one JSON object: rounds, why it stopped, the final diff")
    fix.set_defaults(handler=_fix)


def _fix(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from app.core.edits import accept_and_apply
    from app.core.fix_loop.commands import load_commands, save_commands
    from app.core.fix_loop.loop import FixSettings, run_fix
    from app.core.llm.engine import Engine, SamplingParams

    task = resolve_prompt(args.task, args.prompt_file, stdin_bytes(), "what to fix")
    folder = Path(args.folder).expanduser()
    choice = folder_choice(folder, args.select, args.allow_secrets)
    saved = load_commands(folder)
    test, lint = args.test or saved.test, saved.lint if args.lint is None else args.lint
    if not test:
        raise LeanCoderError(
            f"No test command is known for {folder}: pass one with --test, for example "
            '--test "pytest -q".'
        )
    if args.test or args.lint is not None:
        save_commands(folder, test, lint)
        err.write(f"note: saved `{test}` as the test command for {folder}\n")
    elif saved.detected:
        err.write(f"note: detected the test command `{test}` (--test CMD to choose another)\n")
    err.write(
        "note: the test command is the project's own code; it runs as you, in a scratch copy, "
        f"with a {args.test_timeout:g} s timeout\n"
    )
    settings = FixSettings(test, lint, args.rounds, args.task_budget, args.round_budget,
                           args.test_timeout)  # fmt: skip
    settings.check()
    policy = opt.thinking_policy(args)
    engine = Engine()
    opt.load_model(engine, args, err, template=args.template)
    sampling = SamplingParams(
        temperature=args.temperature, max_tokens=args.max_tokens, seed=args.seed
    )
    report: FixReport | None = None
    progress = err if args.json else out
    try:
        loop = run_fix(engine, choice, task, settings, sampling, policy=policy,
                       force_thinking=args.force_thinking)  # fmt: skip
        for event in loop:
            _print_event(event, settings, progress, err)
            if event.kind == "done":
                report = event.report
    finally:
        engine.unload()
    if report is None:
        raise LeanCoderError("The fix loop ended without a report.")
    applied = None
    if args.apply and report.proposal is not None:
        applied = accept_and_apply(report.proposal, confirm_big_deletions=args.yes)
    if args.json:
        data = report.to_dict()
        data["applied"] = None if applied is None else applied.to_dict()
        out.write(json.dumps(data, ensure_ascii=False) + "\n")
    else:
        out.write(f"{report.message}\n")
        out.write(report.diff())
        if applied is not None and applied.result is not None:
            out.write(f"Applied to {', '.join(applied.result.files)} "
                      f"(undo with `leancoder undo --folder {folder}`).\n")  # fmt: skip
            for path in applied.unconfirmed:
                out.write(f"not written: {path} (removes most of the file; --yes to confirm)\n")
        elif report.proposal is not None:
            out.write("Not applied: review it in the window, or run again with --apply.\n")
    final = report.final
    return EXIT_PASSED if final is not None and final.passed else EXIT_NOT_PASSED


def _print_event(event: FixEvent, settings: FixSettings, out: TextIO, err: TextIO) -> None:
    if event.kind == "baseline" and event.tests is not None:
        out.write(f"baseline: {_tests(event.tests)}\n")
    elif event.kind == "session" and event.session is not None:
        session_event = event.session
        if session_event.kind == "context" and session_event.context is not None:
            if event.round == 1:
                report_context(session_event.context, err)
        elif session_event.kind == "feedback":
            out.write(f"round {event.round}: some edit blocks did not apply; asking again\n")
    elif event.kind == "round_start":
        spent = f"{event.task_tokens:,} of {settings.task_budget:,} tokens spent"
        out.write(f"round {event.round} of {settings.rounds} ({spent})\n")
    elif event.kind == "applied":
        out.write(f"round {event.round}: edited {', '.join(event.files)} in the scratch copy\n")
    elif event.kind == "tests" and event.tests is not None:
        out.write(f"round {event.round}: {_tests(event.tests)}\n")
    elif event.kind == "done" and event.report is not None:
        for summary in event.report.rounds:
            out.write(f"round {summary.number}: {summary.tokens:,} tokens "
                      f"({summary.thinking_tokens:,} thinking), {summary.replies} "
                      f"repl{'y' if summary.replies == 1 else 'ies'}\n")  # fmt: skip
        out.write(f"stopped: {event.report.stopped}: {event.report.message}\n")
    out.flush()


def _tests(result: TestResult) -> str:
    failing = f"; failing: {', '.join(result.failing[:8])}" if result.failing else ""
    lint = f"; lint {result.lint}" if result.lint else ""
    return f"tests {result.summary}{failing}{lint}"
