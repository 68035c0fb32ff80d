"""Map filler words ("Wait", "Hmm", ...) to the vocabulary tokens that spell them as whole words.

NoWait (arXiv 2506.08343) suppresses these words while a reasoning model thinks. Matching by
substring, as the paper's token list did, also hits " know" (for "now"), "Ohio" (for "oh") and
" mother"; here a token matches only when its text *is* the word: optional leading whitespace,
the word in lower, Capitalised or UPPER case, optional trailing punctuation. A lower-case piece
without leading whitespace is skipped, because such a piece is usually the tail of a longer word
("s" + "now"); capitalised pieces without a space are kept, as they start lines ("\\nWait").
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Iterable
from dataclasses import dataclass

# The 17 words of the NoWait paper.
DEFAULT_FILLER_WORDS: tuple[str, ...] = (
    "wait", "alternatively", "hmm", "but", "however", "alternative", "another", "check",
    "double-check", "oh", "maybe", "verify", "other", "again", "now", "ah", "any",
)  # fmt: skip

_TRAILING = re.escape(string.punctuation.replace("-", "") + "…")
_PIECE = re.compile(rf"^(?P<space>\s*)(?P<word>[A-Za-z][A-Za-z-]*)[{_TRAILING}]*$")


@dataclass(frozen=True, slots=True)
class FillerMatch:
    token_id: int
    text: str
    word: str


def normalise_words(words: Iterable[str]) -> tuple[str, ...]:
    """Lower-case, strip, de-duplicate, keep order; drop empties and anything with spaces."""
    seen: dict[str, None] = {}
    for word in words:
        w = word.strip().lower()
        if w and " " not in w:
            seen.setdefault(w, None)
    return tuple(seen)


def scan_vocabulary(
    n_vocab: int, piece: Callable[[int], bytes], words: Iterable[str]
) -> list[FillerMatch]:
    """Every token id whose text is one of `words` as a whole word (see module doc)."""
    wanted = set(normalise_words(words))
    if not wanted:
        return []
    matches: list[FillerMatch] = []
    for token_id in range(n_vocab):
        text = piece(token_id).decode("utf-8", errors="ignore")
        m = _PIECE.match(text)
        if m is None:
            continue
        word = m.group("word")
        lower = word.lower()
        if lower not in wanted:
            continue
        if word not in (lower, lower.capitalize(), lower.upper()):
            continue  # "wAIT" and other mixed case pieces are not the word
        if not m.group("space") and word == lower:
            continue  # could be the tail of a longer word
        matches.append(FillerMatch(token_id, text, lower))
    return matches
