"""`--threads` for every command that loads a model: one definition, one way to report notes.

The count itself is decided (and clamped to the machine's logical cores) by
`app.core.llm.threads` when the engine loads; a changed setting comes back as a note in
`ModelInfo.notes`, which `print_load_notes` writes to stderr.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from app.core.llm.engine import ModelInfo


def thread_count(text: str) -> int:
    """argparse type: a whole number of threads, 0 for automatic."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of threads") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be 1 or more (0: chosen for this machine)")
    return value


def add_threads_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--threads",
        type=thread_count,
        default=None,
        help="CPU threads for the model (default: the physical cores, prompts on every logical "
        "core; at most the logical cores)",
    )


def print_load_notes(info: ModelInfo, err: TextIO) -> None:
    """What the load changed or decided for the user (a lowered thread count, a shorter context)."""
    for note in info.notes:
        err.write(f"note: {note}\n")
