"""Decoding a source file's bytes into text without ever failing.

Code folders hold UTF-8 mostly, but also UTF-8 with a BOM, UTF-16 with a BOM (Windows tools),
and legacy 8-bit files. The decoder tries those in turn; Latin-1 decodes any byte sequence, so
every file yields text, and the encoding it used is reported so callers can say so.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF32_LE, "utf-32"),  # before UTF-16 LE: its BOM starts with UTF-16 LE's
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


@dataclass(frozen=True, slots=True)
class DecodedText:
    text: str
    encoding: str  # the codec that decoded it: "utf-8", "utf-8-sig", "utf-16", "latin-1", ...


def unicode_bom_encoding(head: bytes) -> str | None:
    """The codec named by a byte-order mark at the start of `head`, if there is one."""
    for bom, encoding in _BOMS:
        if head.startswith(bom):
            return encoding
    return None


def decode_source(data: bytes) -> DecodedText:
    """Text of a file: BOM-declared encoding, else UTF-8, else Latin-1 (which never fails)."""
    encoding = unicode_bom_encoding(data)
    if encoding is not None:
        try:
            return DecodedText(data.decode(encoding), encoding)
        except UnicodeDecodeError:
            pass  # a stray BOM-like prefix on a broken file: fall through to the guesses
    try:
        return DecodedText(data.decode("utf-8"), "utf-8")
    except UnicodeDecodeError:
        return DecodedText(data.decode("latin-1"), "latin-1")
