"""Where a prompt comes from on the command line: an argument, stdin (`-`) or `--prompt-file`.

One argument is capped by the OS (128 KB on Linux), so a long prompt needs stdin or a file. Every
source is read as bytes, bounded, and must be UTF-8: Python hands invalid bytes in argv over as
lone surrogates, which would fail deep in the tokenizer with a traceback; here they are a clear
message naming the byte and its position instead.
"""

from __future__ import annotations

import argparse
import os
import stat
import sys
from typing import BinaryIO

from app.core.errors import LeanCoderError

STDIN = "-"
MAX_PROMPT_BYTES = 64 * 1024 * 1024  # far beyond any context; refuses a runaway pipe early


class PromptInputError(LeanCoderError):
    """A prompt that cannot be read, or is not UTF-8 text."""


def add_prompt_arguments(parser: argparse.ArgumentParser, name: str, what: str) -> None:
    """The positional prompt (optional: '-' reads stdin) and `--prompt-file FILE`."""
    parser.add_argument(
        name, nargs="?", default=None, help=f"{what}; '-' reads it from stdin"
    )
    parser.add_argument(
        "--prompt-file",
        default=None,
        metavar="FILE",
        help=f"read {what} from FILE (UTF-8), for text too long for one argument",
    )


def resolve_prompt(
    argument: str | None,
    prompt_file: str | None,
    stdin: BinaryIO | None,
    what: str = "the prompt",
) -> str:
    """The prompt text from exactly one source; PromptInputError if none, two, or bad bytes."""
    if argument is not None and prompt_file is not None:
        raise PromptInputError(
            f"Give {what} either as an argument or with --prompt-file, not both."
        )
    if prompt_file is not None:
        return decode_prompt(_read_file(prompt_file), f"the file {prompt_file}")
    if argument is None:
        raise PromptInputError(
            f"Give {what}: as an argument, '-' for stdin, or --prompt-file FILE."
        )
    if argument == STDIN:
        if stdin is None:
            raise PromptInputError("'-' reads the prompt from stdin, but there is no stdin here.")
        return decode_prompt(_read_bounded(stdin, "stdin"), "stdin")
    return checked_text(argument, "the command line")


def stdin_bytes() -> BinaryIO | None:
    """The process's stdin as bytes, or None when it has none (a windowed launch)."""
    return getattr(sys.stdin, "buffer", None)


def checked_text(text: str, source: str) -> str:
    """`text` from argv, refused if it carries bytes that are not UTF-8 (as lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raw = os.fsencode(text)  # the bytes as they were given
        return decode_prompt(raw, source)
    return text


def decode_prompt(data: bytes, source: str) -> str:
    """UTF-8 text (a leading BOM dropped), or a PromptInputError naming the first bad byte."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        bad = data[exc.start : exc.start + 1].hex()
        raise PromptInputError(
            f"The prompt from {source} is not UTF-8 text: byte 0x{bad} at position {exc.start:,} "
            "cannot be decoded. Save it as UTF-8 and try again."
        ) from None


def _read_file(path: str) -> bytes:
    try:
        info = os.stat(path)
    except OSError as exc:
        raise PromptInputError(
            f"Cannot read the prompt file {path}: {(exc.strerror or str(exc)).lower()}."
        ) from None
    if stat.S_ISDIR(info.st_mode):
        raise PromptInputError(f"The prompt file {path} is a folder.")
    if stat.S_ISREG(info.st_mode) and info.st_size > MAX_PROMPT_BYTES:
        raise PromptInputError(_too_big(f"The prompt file {path}"))
    try:
        with open(path, "rb") as handle:  # a pipe (/dev/stdin, <(...)) is read, bounded
            return _read_bounded(handle, f"The prompt file {path}")
    except OSError as exc:
        raise PromptInputError(
            f"Cannot read the prompt file {path}: {(exc.strerror or str(exc)).lower()}."
        ) from None


def _read_bounded(stream: BinaryIO, source: str) -> bytes:
    data = stream.read(MAX_PROMPT_BYTES + 1)
    if len(data) > MAX_PROMPT_BYTES:
        raise PromptInputError(_too_big(source[:1].upper() + source[1:]))
    return data


def _too_big(source: str) -> str:
    limit = MAX_PROMPT_BYTES // (1024 * 1024)
    return f"{source} is over {limit} MB: far more than any context holds."
