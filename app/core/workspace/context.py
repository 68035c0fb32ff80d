"""The context a model sees from a folder: ticked files in full, a map of the rest, in a budget.

Nothing is cut silently. A ticked file that does not fit is left out whole (never cut mid-file)
and reported with the tokens it needed; map entries are added while they fit (a file's symbols
first, its bare path if only that fits), and the prompt itself says how many files it does not
show. `WorkspaceContext.left_out` lists every path that is not in the text and why.

A ticked file's text is checked for secrets (detect-secrets' rules, see `secrets`) before it goes
in: the lines holding one are replaced by a note, the file still goes (the model needs the code),
and `redacted` says which lines, as does the prompt. Files in `allow_secrets` go as they are.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import PurePosixPath
from typing import Any

from app.core.workspace import repo_map, rules, scan, secrets
from app.core.workspace.text import decode_source

TokenCounter = Callable[[str], int]
NO_ROOM = "no room left in the token budget"
# The context's first words; the context meter finds the folder's share of a system message by it.
FILES_HEADER = "Files from the folder `"


def estimate_tokens(text: str) -> int:
    """A cheap token count without a tokenizer: source code averages ~3.5 characters a token."""
    return math.ceil(len(text) / 3.5)


@dataclass(frozen=True, slots=True)
class IncludedFile:
    path: str
    tokens: int
    encoding: str


@dataclass(frozen=True, slots=True)
class LeftOut:
    path: str
    reason: str


@dataclass(frozen=True, slots=True)
class RedactedFile:
    path: str
    lines: tuple[int, ...]  # 1-based
    kinds: tuple[str, ...]
    reason: str  # "secrets redacted: lines 3, 7 (AWS Access Key)", for the Skipped list


@dataclass(slots=True)
class WorkspaceContext:
    text: str
    tokens: int
    budget: int
    included: list[IncludedFile] = field(default_factory=list)
    mapped: list[str] = field(default_factory=list)
    left_out: list[LeftOut] = field(default_factory=list)
    redacted: list[RedactedFile] = field(default_factory=list)

    def summary(self) -> str:
        """One line for a status bar or the CLI."""
        return (
            f"{len(self.included)} file(s) in full, {len(self.mapped)} in the map, "
            f"{len(self.left_out)} left out"
            + (f", {len(self.redacted)} with secrets redacted" if self.redacted else "")
            + f"; {self.tokens:,} of {self.budget:,} tokens"
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def build_context(
    root: str | os.PathLike[str],
    files: Iterable[str | scan.FileEntry],
    selected: Iterable[str],
    budget_tokens: int,
    count_tokens: TokenCounter = estimate_tokens,
    *,
    allow_secrets: Iterable[str] = (),
    max_file_bytes: int = rules.DEFAULT_MAX_FILE_BYTES,
    secret_cache: secrets.SecretCache = secrets.SHARED_CACHE,
) -> WorkspaceContext:
    """The prompt text for `selected` files in full plus a map of the other `files`.

    `files` are the scan's files (paths relative to `root`); `selected` may name any path, and
    one the scan would skip (a secret, a binary, outside the folder) is left out with the reason.
    `allow_secrets` names files the user allowed: sent unredacted, even if named like a secret.
    """
    real = scan.open_root(root)
    listed = [f.path if isinstance(f, scan.FileEntry) else f for f in files]
    builder = _Builder(count_tokens, budget_tokens)
    builder.allowed = {"/".join(scan.safe_relative_parts(p)) for p in allow_secrets if p}
    builder.max_file_bytes, builder.secret_cache = max_file_bytes, secret_cache
    builder.add_header(f"{FILES_HEADER}{real.name}` (paths are relative to it).\n\n")
    listed_set = set(listed)
    wanted: list[str] = []
    for raw in selected:
        rel = _normalise(raw, builder)
        if rel is not None and rel not in wanted:
            wanted.append(rel)
    for rel in wanted:
        builder.add_file(real, rel, known=rel in listed_set)
    in_full = {item.path for item in builder.result.included}
    rest = [rel for rel in listed if rel not in in_full]
    builder.add_map(str(real), _map_order(rest, wanted))
    return builder.finish()


class _Builder:
    def __init__(self, count: TokenCounter, budget: int) -> None:
        self.count = count
        self.parts: list[str] = []
        self.used = 0
        self.result = WorkspaceContext(text="", tokens=0, budget=max(0, budget))
        self.allowed: set[str] = set()
        self.max_file_bytes = rules.DEFAULT_MAX_FILE_BYTES
        self.secret_cache = secrets.SHARED_CACHE

    @property
    def room(self) -> int:
        return self.result.budget - self.used

    def _take(self, text: str, reserve: int = 0) -> int | None:
        """Append text if it fits (leaving `reserve`); its tokens, or None when it does not."""
        tokens = self.count(text)
        if tokens > self.room - reserve:
            return None
        self.parts.append(text)
        self.used += tokens
        return tokens

    def leave_out(self, path: str, reason: str) -> None:
        self.result.left_out.append(LeftOut(path, reason))

    def add_header(self, text: str) -> None:
        self._take(text)

    def add_file(self, root: os.PathLike[str], rel: str, known: bool) -> None:
        allowed = rel in self.allowed
        if not known or allowed:  # not in the scan: tell why it skips it, or take it if fine
            try:
                reason = scan.explain_path(
                    root, rel, max_file_bytes=self.max_file_bytes, include_secrets=allowed
                )
            except scan.WorkspaceError as exc:
                reason = str(exc)
            if reason is not None:
                self.leave_out(rel, reason)
                return
        abs_path = os.path.join(root, *rel.split("/"))
        try:
            data, info = scan.read_regular_file(abs_path, self.max_file_bytes)
        except OSError as exc:
            self.leave_out(rel, f"cannot be read ({(exc.strerror or str(exc)).lower()})")
            return
        decoded = decode_source(data)
        block = _file_block(rel, decoded.text)
        needs = self.count(block)
        if needs > self.room:  # checked before the secret scan: what cannot go needs no scan
            self.leave_out(
                rel, f"does not fit the token budget (needs {needs:,}, {self.room:,} left)"
            )
            return
        if not allowed:
            found = self.secret_cache.findings(os.fspath(abs_path), info, decoded.text)
            if found:
                redacted = secrets.redact(decoded.text, found)
                block = _file_block(rel, redacted.text)
                reason = secrets.REDACTED_PREFIX + redacted.describe()
                self.result.redacted.append(
                    RedactedFile(rel, redacted.lines, redacted.kinds, reason)
                )
        tokens = self._take(block)
        if tokens is None:  # the notes made it longer than the secrets were
            self.leave_out(rel, f"does not fit the token budget ({self.room:,} tokens left)")
            self.result.redacted = [r for r in self.result.redacted if r.path != rel]
            return
        self.result.included.append(IncludedFile(rel, tokens, decoded.encoding))

    def add_map(self, root: str, ordered: list[str]) -> None:
        if not ordered:
            return
        # Room is kept for the closing note, so the prompt can always say what it leaves out.
        reserve = self.count(self.omitted_note(len(ordered)))
        if (
            self._take("Other files in the folder, with their top-level symbols:\n", reserve)
            is None
        ):
            for rel in ordered:
                self.leave_out(rel, NO_ROOM)
            return
        index = 0
        for index, (rel, entry) in enumerate(repo_map.map_lines(root, ordered)):  # noqa: B007
            if self._take(entry, reserve) is None and (
                entry == rel + "\n" or self._take(rel + "\n", reserve) is None
            ):
                break
            self.result.mapped.append(rel)
        else:
            index = len(ordered)
        for rel in ordered[index:]:
            self.leave_out(rel, NO_ROOM)

    def finish(self) -> WorkspaceContext:
        if self.parts:
            self.parts.append(self.omitted_note(self._unlisted()))
        text = "".join(self.parts)
        tokens = self.count(text) if text else 0
        self.result.text, self.result.tokens = text, tokens
        return self.result

    def _unlisted(self) -> int:
        return sum(1 for item in self.result.left_out if item.reason == NO_ROOM)

    def omitted_note(self, unlisted: int) -> str:
        """What the prompt says it leaves out: requested files by name, the rest by number."""
        lines = [
            f"In {item.path}, {secrets.line_list(item.lines)} hold secrets and were replaced by"
            " a note: leave those lines as they are in any edit."
            for item in self.result.redacted
        ]
        lines += [
            f"Not shown: {item.path} ({item.reason})."
            for item in self.result.left_out
            if item.reason != NO_ROOM
        ]
        if unlisted:
            lines.append(f"{unlisted:,} more file(s) not listed: {NO_ROOM}.")
        return "\n" + "\n".join(lines) + "\n" if lines else ""


def _normalise(raw: str, builder: _Builder) -> str | None:
    try:
        return "/".join(scan.safe_relative_parts(raw))
    except scan.WorkspaceError as exc:
        builder.leave_out(raw, str(exc))
        return None


def _map_order(rest: list[str], selected: list[str]) -> list[str]:
    """Neighbours of the ticked files first, then shallow paths before deep ones."""
    near = {str(PurePosixPath(rel).parent) for rel in selected}
    return sorted(
        rest, key=lambda rel: (str(PurePosixPath(rel).parent) not in near, rel.count("/"), rel)
    )


def _file_block(rel: str, text: str) -> str:
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    lexer = repo_map.lexer_for(os.path.splitext(rel)[1].lower() or os.path.basename(rel))
    language = lexer.aliases[0] if lexer is not None and lexer.aliases else ""
    body = text if text.endswith("\n") or not text else text + "\n"
    return f"### {rel}\n{fence}{language}\n{body}{fence}\n\n"
