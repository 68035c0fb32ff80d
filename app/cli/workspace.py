"""`leancoder files` and `leancoder context`: what a folder scan lists or skips, and the context
a model would be given from it."""

from __future__ import annotations

import argparse
import json
from typing import TextIO

from app.cli import options as opt
from app.cli.code import add_allow_secrets
from app.core.models.starter import STARTER_KEY

EXIT_OK = 0
DEFAULT_BUDGET = 8192


def _size_kb(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return value


def _budget(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    files = sub.add_parser(
        "files",
        help="list the files a folder scan includes (and, with --skipped, what it skips and why)",
        description="Scan FOLDER as the app does: .gitignore files at every level and "
        ".git/info/exclude are honoured; .git/, dependency and cache folders, binary files, "
        "files over the size limit and likely secrets (.env, *.pem, *.key, id_rsa...) are "
        "skipped, each with a reason.",
    )
    files.add_argument("--folder", required=True, help="the project folder")
    files.add_argument("--skipped", action="store_true", help="also list skipped paths and why")
    opt.add_json(files, "print one JSON object (both lists)")
    files.add_argument(
        "--check-contents",
        action="store_true",
        help="also read every listed file and report the lines holding secrets (AWS, GitHub, "
        "OpenAI, Slack keys...), which are replaced by a note when the file is sent; slow on "
        "big folders (the app checks a file only when it is selected)",
    )
    _scan_options(files)
    files.set_defaults(handler=_files)

    context = sub.add_parser(
        "context",
        help="print the context a model would get from a folder",
        description="Print the prompt text built from FOLDER: the selected files in full, then a "
        "map of the other files (paths and top-level symbols), within a token budget. What does "
        "not fit is listed on stderr with the reason; nothing is cut silently.",
    )
    context.add_argument("--folder", required=True, help="the project folder")
    context.add_argument(
        "--select",
        nargs="+",
        action="extend",
        default=[],
        metavar="PATH",
        help="files to include in full (relative to the folder)",
    )
    add_allow_secrets(context)
    context.add_argument(
        "--budget", type=_budget, default=DEFAULT_BUDGET, help="token budget (default: 8192)"
    )
    opt.add_model(
        context,
        help=f"count tokens with this model's tokenizer (GGUF path or '{STARTER_KEY}'); "
        "default: a cheap estimate (3.5 characters a token)",
    )
    opt.add_json(context)
    _scan_options(context)
    context.set_defaults(handler=_context)


def _scan_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--include-secrets",
        action="store_true",
        help="do not skip files that look like secrets (.env, keys, tokens)",
    )
    parser.add_argument(
        "--max-file-kb",
        type=_size_kb,
        default=1024,
        help="skip files larger than this many KB (default: 1024)",
    )


def _files(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from app.core.units import binary_bytes
    from app.core.workspace.scan import SkippedEntry, open_root, scan_all

    root = open_root(args.folder)
    result = scan_all(
        root, max_file_bytes=args.max_file_kb * 1024, include_secrets=args.include_secrets
    )
    if args.check_contents and not args.include_secrets:
        from app.core.workspace.secrets import file_secrets

        for entry in result.files:
            reason = file_secrets(root, entry.path, args.max_file_kb * 1024)
            if reason is not None:
                result.skipped.append(SkippedEntry(entry.path, reason, secret=True))
    if args.json:
        data = {
            "folder": str(root),
            "files": [{"path": f.path, "size": f.size} for f in result.files],
            "skipped": [
                {"path": s.path, "reason": s.reason, "is_dir": s.is_dir, "secret": s.secret}
                for s in result.skipped
            ],
        }
        out.write(json.dumps(data, ensure_ascii=False) + "\n")
        return EXIT_OK
    width = max((len(f.path) for f in result.files), default=0)
    for entry in result.files:
        out.write(f"{entry.path.ljust(width)}  {binary_bytes(entry.size):>9}\n")
    if args.skipped:
        out.write("\nskipped:\n")
        width = max((len(s.path) for s in result.skipped), default=0)
        for skipped in result.skipped:
            out.write(f"{skipped.path.ljust(width)}  {skipped.reason}\n")
    hint = "" if args.skipped or not result.skipped else " (--skipped shows them and why)"
    err.write(f"{len(result.files):,} files listed, {len(result.skipped):,} skipped{hint}\n")
    return EXIT_OK


def _context(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from app.core.workspace.context import NO_ROOM, build_context, estimate_tokens
    from app.core.workspace.scan import open_root, scan_all

    root = open_root(args.folder)
    result = scan_all(
        root, max_file_bytes=args.max_file_kb * 1024, include_secrets=args.include_secrets
    )
    allow, limit = args.allow_secrets, args.max_file_kb * 1024
    if args.model is None:
        context = build_context(
            root, result.files, args.select, args.budget, estimate_tokens,
            allow_secrets=allow, max_file_bytes=limit,
        )  # fmt: skip
        counter = "estimate"
    else:
        from app.core.llm.engine import Engine
        from app.core.models.starter import resolve_model
        from app.core.session.load_plan import load_planned, wished_options

        engine = Engine()
        try:
            # Only the tokenizer is used: a tiny context on the CPU, whatever the plan would pick.
            base, _ = wished_options(n_ctx=256, n_gpu_layers=0, n_threads=None)
            load_planned(engine, resolve_model(args.model), base, keep_gpu_layers=True)
            context = build_context(
                root, result.files, args.select, args.budget, engine.count_tokens,
                allow_secrets=allow, max_file_bytes=limit,
            )  # fmt: skip
        finally:
            engine.unload()
        counter = "model"
    if args.json:
        data = {"folder": str(root), "token_counter": counter, **context.to_dict()}
        out.write(json.dumps(data, ensure_ascii=False) + "\n")
        return EXIT_OK
    out.write(context.text)
    how = "estimated" if counter == "estimate" else "counted with the model's tokenizer"
    err.write(f"\n{context.summary()} ({how})\n")
    named = [item for item in context.left_out if item.reason != NO_ROOM]
    unnamed = len(context.left_out) - len(named)
    for redacted in context.redacted:
        err.write(
            f"redacted: {redacted.path}: {redacted.reason} "
            f"(--allow-secrets {redacted.path} sends it as it is)\n"
        )
    if named or unnamed:
        err.write("left out:\n")
    width = max((len(item.path) for item in named), default=0)
    for item in named:
        err.write(f"  {item.path.ljust(width)}  {item.reason}\n")
    if unnamed:  # a big folder's map overflow would be thousands of identical lines
        err.write(f"  {unnamed:,} other file(s) not in the map: {NO_ROOM} (--json lists them)\n")
    return EXIT_OK
