"""Text files as LeanCoder edits them: bytes in, lines with their own endings, bytes out.

A file is decoded as UTF-8 (with or without a BOM) or Latin-1, and every byte survives untouched:
a UTF-8 file with a few bytes that are not UTF-8 (a stray Latin-1 byte, a pasted binary fragment)
stays UTF-8, its undecodable bytes carried as lone surrogates ("surrogateescape") and written back
exactly, while new text is written as UTF-8. Only a file whose bytes look like Latin-1 more than
UTF-8 (no valid multi-byte UTF-8 sequence, or fewer than its undecodable bytes) is Latin-1, which
maps every byte to one character and back. Lines keep their own ending ("\\n", "\\r\\n" or
"\\r"), so a CRLF file stays CRLF and a file with mixed endings keeps them on every line the edit
does not touch; new lines get the file's most common ending.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from app.core.edits.errors import UnreadableFileError

MAX_EDIT_BYTES = 4 * 1024 * 1024
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")
_UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
# Undecodable bytes, as surrogateescape carries them; and characters beyond ASCII that decoded.
_ESCAPED = re.compile("[\udc80-\udcff]")
_MULTIBYTE = re.compile("[^\x00-\x7f\udc80-\udcff]")


@dataclass(frozen=True, slots=True)
class TextFile:
    raw: bytes
    encoding: str  # "utf-8", "utf-8-sig" (a BOM) or "latin-1"
    lines: tuple[str, ...]  # each with its own ending; the last may have none
    newline: str  # the ending given to new lines
    stray_bytes: int = 0  # bytes of a UTF-8 file that are not UTF-8, kept exactly as they are

    @property
    def contents(self) -> list[str]:
        return [strip_ending(line) for line in self.lines]


def split_lines(text: str) -> list[str]:
    """Lines with their endings; only \\n, \\r\\n and \\r end a line (unlike str.splitlines)."""
    return _LINE.findall(text)


def strip_ending(line: str) -> str:
    return line.rstrip("\r\n")


def ending_of(line: str) -> str:
    return line[len(strip_ending(line)) :]


def decode(raw: bytes, name: str) -> TextFile:
    """Decode a file's bytes; binary, UTF-16 or oversized files are refused with a reason."""
    if len(raw) > MAX_EDIT_BYTES:
        raise UnreadableFileError(
            f"{name} is {len(raw) // 1024} KiB; LeanCoder edits files up to "
            f"{MAX_EDIT_BYTES // (1024 * 1024)} MiB."
        )
    if raw.startswith(_UTF16_BOMS):
        raise UnreadableFileError(f"{name} is UTF-16 text, which LeanCoder does not edit.")
    if b"\x00" in raw:
        raise UnreadableFileError(f"{name} is a binary file, which LeanCoder does not edit.")
    encoding = "utf-8-sig" if raw.startswith(_UTF8_BOM) else "utf-8"
    text = raw.decode(encoding, _errors(encoding))
    stray = len(_ESCAPED.findall(text))
    if stray and len(_MULTIBYTE.findall(text)) < stray:
        encoding, stray = "latin-1", 0  # more like Latin-1 text than UTF-8 with stray bytes
        text = raw.decode(encoding)
    lines = split_lines(text)
    endings = Counter(ending_of(line) for line in lines if ending_of(line))
    newline = endings.most_common(1)[0][0] if endings else "\n"
    return TextFile(raw, encoding, tuple(lines), newline, stray)


def encode(text: str, encoding: str, name: str) -> bytes:
    """The bytes of `text` in the file's encoding; a character it cannot hold is refused.

    A UTF-8 file's undecodable bytes (carried as lone surrogates) are written back as they were.
    """
    try:
        return text.encode(encoding, _errors(encoding))
    except UnicodeEncodeError as exc:
        bad = text[exc.start : exc.end]
        raise UnreadableFileError(
            f"{name} is saved as {encoding}, which cannot hold {bad!r} from the new text."
        ) from None


def displayable(text: str) -> str:
    """`text` for a person, a terminal or a model: each undecodable byte becomes U+FFFD."""
    return _ESCAPED.sub("\ufffd", text)


def _errors(encoding: str) -> str:
    return "surrogateescape" if encoding.startswith("utf-8") else "strict"
