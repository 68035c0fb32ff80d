"""`leancoder edit --folder DIR --model M "instruction"`: the model proposes edits to a folder; the
diff is printed, and written only with `--apply`. Failed blocks go back to the model, at most
twice, exactly as in the app."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from app.cli import options as opt
from app.cli.prompt_input import add_prompt_arguments, resolve_prompt, stdin_bytes
from app.core.errors import LeanCoderError
from app.core.thinking.parser import Channel

if TYPE_CHECKING:
    from app.core.llm.engine_types import ReplyStats
    from app.core.session.chat import FolderChoice
    from app.core.workspace.context import WorkspaceContext

def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    edit = sub.add_parser(
        "edit",
        help="ask a model for edits to a folder; print the diff (write it with --apply)",
    )
    add_prompt_arguments(edit, "instruction", "what to change")
    edit.add_argument("--folder", required=True, help="the project folder")
    opt.add_model(edit)
    edit.add_argument(
        "--select",
        action="append",
        default=[],
        metavar="PATH",
        help="a file to send in full (repeatable); the rest of the folder goes as a map",
    )
    add_allow_secrets(edit)
    opt.add_load_options(edit)
    opt.add_sampling(edit, temperature=0.2, seed=1234, max_tokens=1024)
    opt.add_template(edit)
    opt.add_thinking(edit)
    edit.add_argument("--apply", action="store_true", help="write the edits (undoable)")
    edit.add_argument("--yes", action="store_true", help="confirm removing most of a file")
    opt.add_json(edit, "print one JSON report")
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


def folder_choice(
    folder: Path, selected: list[str], allow_secrets: list[str] | None = None
) -> FolderChoice:
    """The whole folder scanned; the ticked files go in full, the rest as a map."""
    from app.core.session.chat import FolderChoice
    from app.core.workspace.scan import scan_all

    if not folder.is_dir():
        raise LeanCoderError(f"The folder {folder} does not exist.")
    files = tuple(entry.path for entry in scan_all(folder).files)
    return FolderChoice(folder, files, tuple(selected), tuple(allow_secrets or ()))


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


def _edit(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from app.cli.edits import EXIT_OK, EXIT_PARTIAL, write_report
    from app.core.edits import accept_and_apply
    from app.core.llm.engine import SamplingParams
    from app.core.session.chat import ChatSession

    instruction = resolve_prompt(
        args.instruction, args.prompt_file, stdin_bytes(), "what to change"
    )
    session = ChatSession()
    session.folder = folder_choice(Path(args.folder).expanduser(), args.select, args.allow_secrets)
    session.propose_edits = True
    session.policy = opt.thinking_policy(args)
    session.force_thinking = args.force_thinking
    engine = opt.engine_for(args)
    opt.load_model(engine, args, err, template=args.template)
    sampling = SamplingParams(
        temperature=args.temperature, max_tokens=args.max_tokens, seed=args.seed,
        speculative=args.speculative,
    )
    replies: list[str] = []
    reply_stats: list[ReplyStats] = []
    proposal = None
    try:
        for event in session.send(engine, instruction, sampling):
            if event.kind == "context" and event.context is not None and not replies:
                report_context(event.context, err)
            elif event.kind == "reply_start":
                replies.append("")
            elif event.kind == "text" and event.channel is Channel.ANSWER:
                replies[-1] += event.text
            elif event.kind == "failed":
                raise LeanCoderError(event.text)
            elif event.kind in ("proposal", "no_edits"):
                proposal = event.proposal
            elif event.kind == "done" and event.stats is not None:
                reply_stats.append(event.stats)
    finally:
        engine.unload()
    if len(replies) > 1:
        err.write(f"note: {len(replies) - 1} follow-up(s) sent for blocks that did not apply\n")
    if proposal is None:
        raise LeanCoderError("The model gave no reply.")
    report = accept_and_apply(proposal, dry_run=not args.apply, confirm_big_deletions=args.yes)
    if args.json:
        data = report.to_dict()
        data["replies"] = replies
        data["stats"] = [stats.to_dict() for stats in reply_stats]
        out.write(json.dumps(data, ensure_ascii=False) + "\n")
    else:
        if not proposal.blocks:
            out.write("The model proposed no edits. Its reply:\n\n" + replies[-1] + "\n")
        out.write(proposal.unified_diff())
        write_report(report, out)
        for stats in reply_stats:
            err.write(_reply_line(stats) + "\n")
    return EXIT_OK if report.ok and proposal.blocks else EXIT_PARTIAL


def _reply_line(stats: ReplyStats) -> str:
    """One reply's decode figures, drafts included (speculative decoding)."""
    line = f"[reply: {stats.generated_tokens} tokens at {stats.decode_tokens_per_s:.1f} tok/s"
    if stats.drafted_tokens:
        line += f"; {stats.accepted_tokens} of {stats.drafted_tokens} drafted tokens accepted"
    return line + "]"
