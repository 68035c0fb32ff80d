"""`leancoder` / `python -m app`: the window by default; the same core headless with a command."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import TextIO

from app import __version__
from app.cli import chat, code, edits, fix, hardware, models, recommend, serve, workspace
from app.cli.logging_options import add_logging_arguments, start_logging
from app.cli.options import add_model
from app.core.errors import LeanCoderError
from app.core.models.starter import STARTER_KEY
from app.core.storage import logs

Handler = Callable[[argparse.Namespace, TextIO, TextIO], int]

# Each area's commands live in their own module with `register(sub)`, which adds sub-parsers and
# sets `handler` on each (`set_defaults(handler=...)`). A handler prints its result and returns an
# exit status; a LeanCoderError it raises becomes one clear line. The modules import what is
# heavy (llama.cpp, Qt, the hub client) inside their handlers, so importing them here is cheap.
COMMAND_MODULES: tuple[ModuleType, ...] = (
    chat, code, hardware, models, recommend, edits, fix, workspace, serve
)  # fmt: skip

EXIT_OK = 0
EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="leancoder",
        description="Private, local AI coding. With no command, opens the window.",
    )
    parser.add_argument("--version", action="version", version=f"LeanCoder {__version__}")
    parser.add_argument(
        "--self-test",
        action="store_true",
        help="check this installation (starter model, llama.cpp, window) offline, then exit",
    )
    add_logging_arguments(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    gui = sub.add_parser("gui", help="open the window (the default)")
    add_model(gui, help=f"a GGUF file to load at start, or '{STARTER_KEY}'")
    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    start_logging(args, sys.stderr)
    if args.self_test:
        from app.self_test import run_self_test

        return run_self_test()
    if args.command in (None, "gui"):
        from app.qt_system_libraries import EXIT_MISSING_LIBRARIES, check_window_libraries

        libraries = check_window_libraries()  # before Qt loads: Qt aborts naming no package
        if not libraries.ok:
            sys.stderr.write(libraries.message() + "\n")
            return EXIT_MISSING_LIBRARIES
        from app.ui.application import run_gui  # Qt only when the window is wanted

        return run_gui(model=getattr(args, "model", None))
    logs.install_exception_hooks()  # a bug's traceback goes into the log, then to stderr
    return _run_reporting_errors(args.handler, args, sys.stdout, sys.stderr)


def _run_reporting_errors(
    command: Handler,
    args: argparse.Namespace,
    out: TextIO,
    err: TextIO,
) -> int:
    """One place that turns a user's error into one clear line and an exit status."""
    try:
        return command(args, out, err)
    except LeanCoderError as exc:
        if getattr(args, "json", False):
            out.write(json.dumps({"error": str(exc)}) + "\n")
        err.write(f"error: {exc}\n")
    except OSError as exc:  # writing a report or results
        where = f" {exc.filename}" if exc.filename else ""
        err.write(f"error: cannot write{where}: {exc.strerror or exc}\n")
    except KeyboardInterrupt:
        err.write("\ninterrupted\n")
        return EXIT_INTERRUPTED
    return EXIT_USER_ERROR


