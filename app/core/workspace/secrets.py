"""Secrets inside ordinary files (an AWS key in settings.py, a token in .envrc), found by content.

The rules are detect-secrets' own plugins (AWS, GitHub, GitLab, OpenAI, Slack, Stripe, private
keys, JWTs, `password = "..."` assignments and more) with its false-positive filters, run
in-process over the whole file. Three of its plugins are left out on purpose: the two entropy
detectors flag every hash, lockfile checksum and base64 test fixture in a code folder, and a
public IP address is not a credential; redacting those would hide code from the model for nothing.

Scanning is lazy and cached: only a file whose text is about to go to the model is scanned, and
the result is kept by (path, size, mtime), so a 50,000-file folder costs nothing until files are
ticked, and a ticked file is scanned once however often the context is rebuilt.

Speed: detect-secrets checks each line against each plugin (about 4 µs a character here). Each
plugin's own patterns are first searched over the whole text at once (multi-line mode, trailing
spaces stripped as detect-secrets strips them, so it can only find more, never less), and only the
lines they hit go through the plugin proper and the filters.
"""

from __future__ import annotations

import os
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass

from app.core.workspace.scan import read_regular_file
from app.core.workspace.text import decode_source

# Plugins that flag code, not credentials (see the module docstring).
LEFT_OUT_PLUGINS = frozenset(
    {"Base64HighEntropyString", "HexHighEntropyString", "IPPublicDetector"}
)
CACHE_ENTRIES = 4096
# Where a private key's block ends; a key with no end marker is redacted to the end of the file.
_KEY_END = re.compile(r"-----END [A-Z0-9 ]*-----|---- END SSH2|^Private-MAC:")
PRIVATE_KEY = "Private Key"  # detect-secrets' PrivateKeyDetector.secret_type (tests check it)
REDACTED_PREFIX = "secrets redacted: "  # how a redacted file's reason starts in the Skipped list
REDACTED = "[LeanCoder removed this line: it holds a secret ({kind})]"


@dataclass(frozen=True, slots=True)
class SecretFinding:
    line: int  # 1-based
    kind: str  # detect-secrets' name for it: "AWS Access Key", "Slack Token", "Private Key"...


@dataclass(frozen=True, slots=True)
class Redacted:
    text: str
    lines: tuple[int, ...]  # 1-based, every line replaced
    kinds: tuple[str, ...]  # what was found, each once, in order of first appearance

    def describe(self) -> str:
        """'lines 3, 7 (AWS Access Key, Slack Token)' for a reason the user reads."""
        return f"{line_list(self.lines)} ({', '.join(self.kinds)})"


def find_secrets(filename: str, text: str) -> list[SecretFinding]:
    """The lines of `text` that hold a secret, by detect-secrets' rules (app.core.workspace.
    secret_rules). Imported here, when a file is first read for the model: detect-secrets brings
    in an HTTP client, which starting the app must not (tests/test_offline.py)."""
    from app.core.workspace.secret_rules import find_secrets as scan

    return scan(filename, text)


def redact(text: str, findings: list[SecretFinding]) -> Redacted:
    """`text` with each secret's line replaced by a note (indent kept); a private key's whole
    block, from its BEGIN line to its END line."""
    if not findings:
        return Redacted(text, (), ())
    lines = text.splitlines(keepends=True)
    kind_of: dict[int, str] = {}
    for finding in findings:
        kind_of[finding.line] = finding.kind
        if finding.kind == PRIVATE_KEY:
            end = finding.line
            while end < len(lines) and not _KEY_END.search(lines[end - 1]):
                end += 1
            for number in range(finding.line + 1, end + 1):
                kind_of.setdefault(number, finding.kind)
    for number, kind in kind_of.items():
        if 1 <= number <= len(lines):
            old = lines[number - 1]
            body = old.rstrip("\r\n")
            indent = body[: len(body) - len(body.lstrip())]
            lines[number - 1] = indent + REDACTED.format(kind=kind) + old[len(body) :]
    kinds = tuple(dict.fromkeys(f.kind for f in findings))
    return Redacted("".join(lines), tuple(sorted(kind_of)), kinds)


class SecretCache:
    """Findings by (real path, size, mtime): a changed file is scanned again, others never."""

    def __init__(self, entries: int = CACHE_ENTRIES) -> None:
        self._entries = entries
        self._found: OrderedDict[tuple[str, int, int], list[SecretFinding]] = OrderedDict()
        self._lock = threading.Lock()  # the window builds contexts off the GUI thread too

    def findings(self, abs_path: str, info: os.stat_result, text: str) -> list[SecretFinding]:
        key = (abs_path, info.st_size, info.st_mtime_ns)
        with self._lock:
            cached = self._found.get(key)
            if cached is not None:
                self._found.move_to_end(key)
                return cached
        found = find_secrets(os.path.basename(abs_path), text)
        with self._lock:
            self._found[key] = found
            while len(self._found) > self._entries:
                self._found.popitem(last=False)
        return found


SHARED_CACHE = SecretCache()


def file_secrets(
    root: str | os.PathLike[str], rel: str, max_bytes: int, cache: SecretCache = SHARED_CACHE
) -> str | None:
    """'secrets redacted: lines 3, 7 (AWS Access Key)' for a listed file, or None (none, or it
    cannot be read: the context says so when it is selected)."""
    abs_path = os.path.join(root, *rel.split("/"))
    try:
        data, info = read_regular_file(abs_path, max_bytes)
    except OSError:
        return None
    text = decode_source(data).text
    found = cache.findings(abs_path, info, text)
    return REDACTED_PREFIX + redact(text, found).describe() if found else None


def line_list(numbers: tuple[int, ...]) -> str:
    """'line 4', 'lines 3, 7', 'lines 10-40': runs of lines collapsed."""
    runs: list[str] = []
    start = prev = numbers[0]
    for number in (*numbers[1:], -1):
        if number == prev + 1:
            prev = number
            continue
        runs.append(str(start) if start == prev else f"{start}-{prev}")
        start = prev = number
    word = "line" if len(numbers) == 1 else "lines"
    return f"{word} {', '.join(runs)}"
