"""What an edit may never do: leave the folder, touch .git/, or swap real code for a placeholder.

`resolve_in_folder` turns the path a model wrote into a real path inside the folder or refuses it.
`placeholder_problem` spots the classic data-loss edit: a REPLACE (or a whole new file) that says
"... existing code ..." where the file had real lines. `removal_share` measures how much of a file
an edit deletes, so a large deletion can be confirmed by the user first.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from difflib import SequenceMatcher
from pathlib import Path, PurePosixPath

from app.core.edits.errors import UnsafePathError
from app.core.edits.merge import content_key

BIG_DELETION_SHARE = 0.5
BIG_DELETION_MIN_LINES = 3

# A comment that stands for code instead of being code.
_COMMENT = r"(?:#+|//+|/\*+|\*|<!--|--|;+|%|\{/\*)"
_DOTS = r"(?:\.\.\.|…)"
_KEPT = r"(?:unchanged|the\s+same|as\s+(?:before|is)|omitted|elided|not\s+shown)"
_PLACEHOLDER_WORDS = (
    rf"(?:the\s+)?(?:rest|remainder)\s+(?:of\s+(?:the\s+)?\w+\s*)?(?:is\s+|are\s+|remains?\s+|"
    rf"stays?\s+)?{_KEPT}"
    r"|(?:the\s+)?rest\s+of\s+(?:the\s+)?(?:file|code|function|class|method|module|"
    r"implementation|body|component|script|page|config|test|tests)\b"
    r"|(?:keep|keeping)\s+(?:the\s+)?(?:rest|remaining|existing|other|same)\b"
    r"|(?:existing|previous|original|remaining|other|unchanged)\s+(?:code|lines|methods|functions|"
    r"imports|content|logic|implementation|tests|fields|props|jsx|html|markup|styles|rules|cases|"
    r"routes|handlers|config|configuration|settings|definitions|classes|members)\b"
    rf"|(?:code|implementation|content|body|everything\s+else)\s+(?:is\s+|stays\s+|remains\s+)?"
    rf"{_KEPT}"
    r"|same\s+as\s+(?:before|above|original)"
    rf"|(?:\w+\s+){{0,3}}{_KEPT}\s+for\s+brevity"
    rf"|(?:\w+\s+){{0,3}}(?:unchanged|omitted)\s*(?:{_DOTS}|\)|\*/|-->)?\s*$"
)
_PLACEHOLDER = re.compile(
    rf"^\s*(?:{_COMMENT}\s*)?\(?\s*(?:{_DOTS}\s*)?\(?\s*(?:{_PLACEHOLDER_WORDS})"
    rf"|^\s*{_COMMENT}\s*{_DOTS}\s*(?:\*/|-->|\*/\}})?\s*$|^\s*{_DOTS}\s*$",
    re.IGNORECASE,
)
_BARE_ELLIPSIS = re.compile(r"^\s*(?:\.\.\.|…)\s*$")
_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:[\\/]")


# Every placeholder has one of these; checking for them first keeps the full pattern off most lines.
_HINT = re.compile(
    r"\.\.\.|…|rest|remain|keep|existing|previous|original|other|unchanged|same|omit|elide",
    re.IGNORECASE,
)


# What the model sees instead of a line holding a secret (app.core.workspace.secrets.REDACTED; the
# two packages stay independent, tests/test_edits_hostile.py checks they agree). Writing it back
# would replace the user's real secret with the note.
REDACTION_NOTE = "[LeanCoder removed this line: it holds a secret"


def writes_redaction_note(old: list[str], new: list[str]) -> str | None:
    """A new line carrying the redaction note where the file had none, if there is one."""
    if not any(REDACTION_NOTE in line for line in new):
        return None
    had = {line.strip() for line in old if REDACTION_NOTE in line}
    return next((ln.strip() for ln in new if REDACTION_NOTE in ln and ln.strip() not in had), None)


def is_placeholder(line: str) -> bool:
    return _HINT.search(line) is not None and _PLACEHOLDER.match(line) is not None


@dataclass(frozen=True, slots=True)
class PlaceholderProblem:
    line: str  # the placeholder as the model wrote it
    removed: int  # real lines it would delete


def placeholder_problem(old: list[str], new: list[str]) -> PlaceholderProblem | None:
    """A placeholder line in `new` standing where `old` had real lines, if there is one.

    A placeholder the old text already had is fine, and so is one in a brand new file; a bare
    `...` (valid Python) counts only when it replaces two or more real lines.
    """
    old_keys = {content_key(line) for line in old}
    if not any(is_placeholder(line) and content_key(line) not in old_keys for line in new):
        return None  # the common case, without diffing the whole file
    ops = SequenceMatcher(
        None, [content_key(x) for x in old], [content_key(x) for x in new], autojunk=False
    ).get_opcodes()
    removed_total = sum(
        1
        for tag, i1, i2, _, _ in ops
        if tag in ("replace", "delete")
        for line in old[i1:i2]
        if line.strip()
    )
    for tag, i1, i2, j1, j2 in ops:
        if tag not in ("replace", "insert"):
            continue
        removed_here = sum(1 for line in old[i1:i2] if line.strip())
        for line in new[j1:j2]:
            if not is_placeholder(line) or content_key(line) in old_keys:
                continue
            bare = _BARE_ELLIPSIS.match(line) is not None
            removed = removed_here if removed_here else removed_total
            if (bare and removed >= 2) or (not bare and removed >= 1):
                return PlaceholderProblem(line.strip(), removed)
    return None


def removal_share(old: list[str], new: list[str]) -> tuple[int, float]:
    """How many non-blank old lines the new text drops, and their share of the old non-blank."""
    total = sum(1 for line in old if line.strip())
    if total == 0:
        return 0, 0.0
    ops = SequenceMatcher(None, old, new, autojunk=False).get_opcodes()
    removed = sum(
        1
        for tag, i1, i2, _, _ in ops
        if tag in ("replace", "delete")
        for line in old[i1:i2]
        if line.strip()
    )
    return removed, removed / total


def is_big_deletion_count(removed: int, total: int) -> bool:
    """More than half of a file's non-blank lines go, and at least 3 of them."""
    return total > 0 and removed / total > BIG_DELETION_SHARE and removed >= BIG_DELETION_MIN_LINES


def relative_parts(raw: str) -> tuple[str, ...]:
    """The path's parts relative to the folder; absolute, `~`, `..` and .git/ are refused."""
    text = raw.strip()
    if not text:
        raise UnsafePathError("The edit names no file path.")
    if any(ord(ch) < 32 for ch in text):
        raise UnsafePathError(f"The path {text!r} contains control characters.")
    if text.startswith(("/", "\\", "~")) or _WINDOWS_DRIVE.match(text):
        raise UnsafePathError(f"The path {text} is absolute; edits may only name paths inside "
                              "the folder, relative to it.")  # fmt: skip
    parts = tuple(p for p in PurePosixPath(text.replace("\\", "/")).parts if p not in ("", "."))
    if not parts:
        raise UnsafePathError(f"The path {text} names the folder itself, not a file.")
    if ".." in parts:
        raise UnsafePathError(f"The path {text} goes up with '..' and could leave the folder.")
    if any(p.lower() == ".git" for p in parts):
        raise UnsafePathError(f"The path {text} is inside .git/, which edits never touch.")
    return parts


def resolve_in_folder(folder: Path, raw: str) -> Path:
    """The real path `raw` names inside `folder` (symlinks resolved), or UnsafePathError.

    The target may be missing (a new file) but, if present, must be a regular file, and its real
    location must be inside the folder and outside any .git/ directory.
    """
    parts = relative_parts(raw)
    try:
        root = folder.resolve(strict=True)
    except OSError:
        raise UnsafePathError(f"The folder {folder} no longer exists.") from None
    candidate = root.joinpath(*parts)
    real = Path(os.path.realpath(candidate))
    try:
        inside = real.relative_to(root)
    except ValueError:
        raise UnsafePathError(f"The path {raw.strip()} leads outside the folder (through a "
                              "symbolic link).") from None  # fmt: skip
    if any(p.lower() == ".git" for p in inside.parts):
        raise UnsafePathError(f"The path {raw.strip()} leads into .git/, which edits never touch.")
    try:
        info = os.stat(real)
    except (FileNotFoundError, NotADirectoryError):
        _check_parents(root, real, raw)
        return real
    except OSError as exc:  # a symlink loop, a permission problem
        raise UnsafePathError(f"The path {raw.strip()} cannot be checked: "
                              f"{exc.strerror or exc}.") from None  # fmt: skip
    if stat.S_ISDIR(info.st_mode):
        raise UnsafePathError(f"The path {raw.strip()} is a folder, not a file.")
    if not stat.S_ISREG(info.st_mode):
        raise UnsafePathError(f"The path {raw.strip()} is not a regular file (a device, pipe or "
                              "socket).")  # fmt: skip
    return real


def _check_parents(root: Path, real: Path, raw: str) -> None:
    """A new file's existing ancestors must be folders (not files) inside the folder."""
    parent = real.parent
    while parent != root and not parent.exists():
        parent = parent.parent
    if parent != root and not parent.is_dir():
        raise UnsafePathError(f"The path {raw.strip()} goes through {parent.name}, which is a "
                              "file, not a folder.")  # fmt: skip


def entry_path_in_folder(folder: Path, raw: str) -> Path:
    """The path `raw` names inside `folder`, its final part not followed if it is a link.

    The folders on the way are resolved and must stay inside `folder` and outside .git/; this is
    the path to remove or restore a symbolic link itself.
    """
    parts = relative_parts(raw)
    try:
        root = folder.resolve(strict=True)
    except OSError:
        raise UnsafePathError(f"The folder {folder} no longer exists.") from None
    parent = Path(os.path.realpath(root.joinpath(*parts[:-1])))
    try:
        inside = parent.relative_to(root)
    except ValueError:
        raise UnsafePathError(f"The path {raw.strip()} leads outside the folder (through a "
                              "symbolic link).") from None  # fmt: skip
    if any(p.lower() == ".git" for p in inside.parts):
        raise UnsafePathError(f"The path {raw.strip()} leads into .git/, which edits never touch.")
    return parent / parts[-1]


def symlink_in_folder(folder: Path, raw: str) -> Path | None:
    """The link itself if `raw` names a symbolic link inside `folder` (wherever it points)."""
    path = entry_path_in_folder(folder, raw)
    return path if path.is_symlink() else None
