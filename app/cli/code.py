"""`leancoder edit --folder DIR --model M "instruction"`: the model proposes edits to a folder; the
diff is printed, and written only with `--apply`. Failed blocks go back to the model, at most
twice, exactly as in the app."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from app.cli.prompt_input import add_prompt_arguments, resolve_prompt, stdin_bytes
from app.cli.threads import add_threads_argument, print_load_notes
from app.core.errors import LeanCoderError
from app.core.models.starter import STARTER_KEY

if TYPE_CHECKING:
    from app.core.llm.chat_template import Message
    from app.core.workspace.context import WorkspaceContext

CONTEXT_SHARE = 0.5  # of the context window, for the folder; the rest for the reply


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    edit = sub.add_parser(
        "edit",
        help="ask a model for edits to a folder; print the diff (write it with --apply)",
    )
    add_prompt_arguments(edit, "instruction", "what to change")
    edit.add_argument("--folder", required=True, help="the project folder")
    edit.add_argument("--model", required=True, help=f"a GGUF file, or '{STARTER_KEY}'")
    edit.add_argument(
        "--select",
        action="append",
        default=[],
        metavar="PATH",
        help="a file to send in full (repeatable); the rest of the folder goes as a map",
    )
    add_allow_secrets(edit)
    edit.add_argument("--ctx", type=int, default=4096, help="context size in tokens")
    add_threads_argument(edit)
    edit.add_argument("--max-tokens", type=int, default=1024, help="most tokens per reply")
    edit.add_argument("--temperature", type=float, default=0.2)
    edit.add_argument("--seed", type=int, default=1234)
    edit.add_argument("--apply", action="store_true", help="write the edits (undoable)")
    edit.add_argument("--yes", action="store_true", help="confirm removing most of a file")
    edit.add_argument("--json", action="store_true", help="print one JSON report")
    edit.set_defaults(handler=_edit)


def add_allow_secrets(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--allow-secrets",
        action="append",
        default=[],
        metavar="PATH",
        help="send this file as it is, even if it looks like or holds a secret (repeatable); "
        "otherwise secret lines of selected files are replaced by a note",
    )


def folder_context(
    folder: Path,
    selected: list[str],
    budget: int,
    count_tokens: Callable[[str], int],
    allow_secrets: list[str] | None = None,
) -> WorkspaceContext:
    """The whole folder scanned, then the ticked files in full and a map of the rest."""
    from app.core.workspace.context import build_context
    from app.core.workspace.scan import scan_all

    return build_context(
        folder, scan_all(folder).files, selected, budget, count_tokens,
        allow_secrets=allow_secrets or (),
    )  # fmt: skip


def report_context(context: WorkspaceContext, err: TextIO) -> None:
    """What the model does not see of the folder: files left out, lines redacted."""
    err.write(f"context: {context.summary()}\n")
    for item in context.left_out:
        err.write(f"left out: {item.path}: {item.reason}\n")
    for redacted in context.redacted:
        err.write(
            f"redacted: {redacted.path}: {redacted.reason} "
            f"(--allow-secrets {redacted.path} sends it as it is)\n"
        )


def folder_messages(
    folder: Path,
    instruction: str,
    selected: list[str],
    budget: int,
    count_tokens: Callable[[str], int],
    allow_secrets: list[str] | None = None,
) -> tuple[list[Message], WorkspaceContext]:
    """The system message (edit format + folder context) and the user's instruction."""
    from app.core.edits import choose_edit_format, edit_system_prompt

    context = folder_context(folder, selected, budget, count_tokens, allow_secrets)
    sizes = [item.tokens * 4 for item in context.included]
    system = edit_system_prompt(choose_edit_format(None, sizes)) + "\n\n" + context.text
    messages: list[Message] = [
        {"role": "system", "content": system},
        {"role": "user", "content": instruction},
    ]
    return messages, context


def _edit(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from app.cli.edits import EXIT_OK, EXIT_PARTIAL, write_report
    from app.core.edits import accept_and_apply, propose_with_retries
    from app.core.llm.engine import Engine, LoadOptions, SamplingParams, run_to_completion
    from app.core.models.starter import resolve_model

    instruction = resolve_prompt(
        args.instruction, args.prompt_file, stdin_bytes(), "what to change"
    )
    folder = Path(args.folder).expanduser()
    if not folder.is_dir():
        raise LeanCoderError(f"The folder {args.folder} does not exist.")
    engine = Engine()
    options = LoadOptions(n_ctx=args.ctx, n_threads=args.threads)
    print_load_notes(engine.load(resolve_model(args.model), options), err)
    messages, context = folder_messages(
        folder, instruction, args.select, int(args.ctx * CONTEXT_SHARE), engine.count_tokens,
        args.allow_secrets,
    )  # fmt: skip
    report_context(context, err)
    sampling = SamplingParams(
        temperature=args.temperature, max_tokens=args.max_tokens, seed=args.seed
    )

    def generate(history: list[Message]) -> str:
        _thinking, answer, _stats = run_to_completion(engine, history, sampling)
        return answer

    outcome = propose_with_retries(folder, messages, generate)
    proposal = outcome.proposal
    if outcome.retries:
        err.write(f"note: {outcome.retries} follow-up(s) sent for blocks that did not apply\n")
    report = accept_and_apply(proposal, dry_run=not args.apply, confirm_big_deletions=args.yes)
    if args.json:
        data = report.to_dict()
        data["replies"] = outcome.replies
        out.write(json.dumps(data, ensure_ascii=False) + "\n")
    else:
        if not proposal.blocks:
            out.write("The model proposed no edits. Its reply:\n\n" + outcome.replies[-1] + "\n")
        out.write(proposal.unified_diff())
        write_report(report, out)
    return EXIT_OK if report.ok and proposal.blocks else EXIT_PARTIAL
