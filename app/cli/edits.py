"""`leancoder apply` and `leancoder undo`: a saved model reply's edits, applied or undone."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from app.cli import options as opt
from app.core.errors import LeanCoderError

if TYPE_CHECKING:
    from app.core.edits import EditReport

EXIT_OK = 0
EXIT_PARTIAL = 1  # some block was refused or some change needs confirmation


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    apply = sub.add_parser(
        "apply",
        help="apply the edits in a saved model reply to a folder",
        description="Parse a model reply (SEARCH/REPLACE blocks, whole files, DELETE FILE lines) "
        "and apply its edits to FOLDER, atomically and undoably. Exit status: 0 all applied, "
        "1 some block refused or a big deletion not confirmed, 2 error (nothing written).",
    )
    apply.add_argument("--folder", required=True, help="the project folder the edits apply to")
    apply.add_argument("--reply", required=True, help="file holding the model's reply ('-': stdin)")
    apply.add_argument("--dry-run", action="store_true", help="report only; write nothing")
    opt.add_json(apply, "print one JSON report")
    apply.add_argument(
        "--yes", action="store_true", help="confirm changes that remove more than half of a file"
    )
    apply.add_argument(
        "--overwrite-read-only",
        action="store_true",
        help="also write files that have no write permission (they keep their permissions)",
    )
    apply.add_argument(
        "--checkpoint",
        action="store_true",
        help="in a git repository, save a git stash entry of the folder first",
    )
    apply.set_defaults(handler=_apply)
    undo = sub.add_parser("undo", help="undo the last edit applied to a folder, byte for byte")
    undo.add_argument("--folder", required=True, help="the project folder")
    opt.add_json(undo, "print one JSON report")
    undo.set_defaults(handler=_undo)


def _folder(text: str) -> Path:
    folder = Path(text).expanduser()
    if not folder.is_dir():
        raise LeanCoderError(f"The folder {text} does not exist.")
    return folder


def _read_reply(text: str) -> str:
    if text == "-":
        return sys.stdin.read()
    try:
        raw = Path(text).expanduser().read_bytes()
    except FileNotFoundError:
        raise LeanCoderError(f"The reply file {text} does not exist.") from None
    except IsADirectoryError:
        raise LeanCoderError(f"The reply file {text} is a folder.") from None
    except OSError as exc:
        raise LeanCoderError(f"The reply file {text} cannot be read: {exc.strerror}.") from None
    return raw.decode("utf-8", errors="replace")


def _apply(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from app.core.edits import ReadOnlyFileError, apply_reply

    folder = _folder(args.folder)
    try:
        report = apply_reply(
            folder,
            _read_reply(args.reply),
            dry_run=args.dry_run,
            confirm_big_deletions=args.yes,
            checkpoint=args.checkpoint,
            overwrite_read_only=args.overwrite_read_only,
        )
    except ReadOnlyFileError as exc:
        raise LeanCoderError(f"{exc} To write anyway, re-run with --overwrite-read-only.") from None
    for recovery in report.recovered:
        err.write(f"note: {recovery.describe()}\n")
    if args.json:
        out.write(json.dumps(report.to_dict(), ensure_ascii=False) + "\n")
        return EXIT_OK if report.ok else EXIT_PARTIAL
    write_report(report, out)
    if not report.proposal.blocks:
        err.write("note: the reply holds no edit blocks\n")
    return EXIT_OK if report.ok else EXIT_PARTIAL


def write_report(report: EditReport, out: TextIO) -> None:
    """Per block, applied or refused and why; per file, what was (or would be) written."""
    data = report.to_dict()
    for block in report.proposal.blocks:
        out.write(block.describe() + "\n")
        if block.closest is not None:
            out.write(f"    closest lines in {block.path} (from line {block.closest.start}, "
                      f"{block.closest.similarity:.0%} similar):\n")  # fmt: skip
            for line in block.closest.lines[:12]:
                out.write(f"    | {line}\n")
    if data["files"]:
        out.write("\n")
    for entry in data["files"]:
        out.write(
            f"{entry['path']}: {entry['kind']}, +{entry['added']} -{entry['removed']} lines, "
            f"{entry['state']}\n"
        )
    if report.unconfirmed:
        out.write(
            f"\nnot written: the changes remove more than half of {', '.join(report.unconfirmed)}; "
            "re-run with --yes to confirm\n"
        )
    if report.result is not None and report.result.change_set:
        if report.result.checkpoint is not None:
            out.write(f"checkpoint: {report.result.checkpoint.describe()}\n")
        out.write(f"\napplied; undo with: leancoder undo --folder {report.proposal.folder}\n")
    elif report.dry_run:
        out.write("\ndry run: nothing was written\n")


def _undo(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from app.core.edits import undo_last

    result = undo_last(_folder(args.folder))
    if args.json:
        out.write(
            json.dumps(
                {
                    "change_set": result.change_set,
                    "restored": result.restored,
                    "removed": result.removed,
                    "checkpoint": result.checkpoint,
                }
            )
            + "\n"
        )
        return EXIT_OK
    for path in result.restored:
        out.write(f"restored {path}\n")
    for path in result.removed:
        out.write(f"removed {path} (created by the edit)\n")
    out.write(f"undid change set {result.change_set}\n")
    return EXIT_OK
