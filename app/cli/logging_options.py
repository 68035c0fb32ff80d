"""The global --log-level and --log-content options, and starting the log for any command."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TextIO

from app.core.storage import logs, paths
from app.core.storage.settings import Settings

log = logging.getLogger(__name__)


def add_logging_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--log-level",
        choices=tuple(logs.LEVELS),
        default=logs.DEFAULT_LEVEL,
        help=f"how much goes into the log file (default: {logs.DEFAULT_LEVEL})",
    )
    parser.add_argument(
        "--log-content",
        action="store_true",
        help="also log prompts, replies and file contents (off unless this or the "
        "log_content setting is on)",
    )


def start_logging(args: argparse.Namespace, err: TextIO) -> Path | None:
    """Set up the log file for this run; on failure say so and go on without one."""
    log_content = bool(getattr(args, "log_content", False)) or _setting_on()
    try:
        path = logs.setup_logging(getattr(args, "log_level", logs.DEFAULT_LEVEL),
                                  log_content=log_content)  # fmt: skip
    except logs.LogFolderError as exc:
        err.write(f"warning: {exc}\n")
        return None
    # The command's name only: its arguments may hold a prompt.
    log.info("command: %s", getattr(args, "command", None) or "gui")
    return path


def _setting_on() -> bool:
    try:
        return Settings.load(paths.settings_path()).log_content
    except OSError:  # an unwritable data folder: the command itself will say so
        return False
