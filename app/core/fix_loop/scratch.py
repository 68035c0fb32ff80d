"""The scratch copy the fix loop edits and tests in, so the user's folder is never touched.

In a git repository it is a detached `git worktree` of HEAD (the project's whole tracked tree, so
build files the scan leaves out are there), overlaid with the folder's current bytes of every
scanned file (so uncommitted work is what gets tested) and without the tracked files the user has
deleted. Outside git, or when git cannot make a worktree (no commits yet, no git installed), it is
a copy of the scanned files. Either way it lives in a private temporary folder (mode 0700) and is
removed, worktree registration included, when the loop ends.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from app.core.errors import LeanCoderError
from app.core.workspace.scan import safe_relative_parts

log = logging.getLogger(__name__)
GIT_TIMEOUT_S = 60.0


class ScratchError(LeanCoderError):
    """The scratch copy could not be made."""


class ScratchCopy:
    """A copy of `folder` to edit and test in; use as a context manager (removed on exit)."""

    def __init__(self, folder: Path, files: tuple[str, ...]) -> None:
        self.folder = folder.resolve()
        self.files = files
        self.kind = "copy"  # or "git worktree"
        self._base = Path(tempfile.mkdtemp(prefix="leancoder-fix-"))
        self._worktree: Path | None = None
        self._repo_top: Path | None = None
        self._digests: dict[str, str] = {}  # what each copied file held, for `original`
        try:
            self.root = self._make()
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> ScratchCopy:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _make(self) -> Path:
        worktree = self._git_worktree()
        if worktree is not None:
            self.kind = "git worktree"
            root = worktree
        else:
            root = self._base / "copy"
            root.mkdir()
        for rel in self.files:
            self._copy_in(rel, root)
        return root

    def _git_worktree(self) -> Path | None:
        top = _git(self.folder, "rev-parse", "--show-toplevel")
        if top is None or _git(self.folder, "rev-parse", "--verify", "-q", "HEAD") is None:
            return None
        top_path = Path(top).resolve()
        target = self._base / "worktree"
        if _git(top_path, "worktree", "add", "--detach", "--quiet", str(target), "HEAD") is None:
            return None
        self._worktree, self._repo_top = target, top_path
        prefix = self.folder.relative_to(top_path) if self.folder != top_path else Path()
        root = target / prefix
        deleted = _git(self.folder, "ls-files", "--deleted", "-z", "--", ".")
        for rel in (deleted or "").split("\0"):
            if rel:
                with contextlib.suppress(OSError, LeanCoderError):
                    (root / _safe(rel)).unlink()
        return root

    def _copy_in(self, rel: str, root: Path) -> None:
        source = self.folder / _safe(rel)
        target = root / _safe(rel)
        if source.is_symlink() or not source.is_file():
            return  # the scan lists regular files; a link is not followed out of the folder
        data = source.read_bytes()
        target.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            target.unlink()  # a worktree's file may be read-only; a fresh copy takes its bits
        target.write_bytes(data)
        shutil.copystat(source, target, follow_symlinks=False)
        self._digests[rel] = hashlib.sha256(data).hexdigest()

    def original(self, rel: str, seen: bytes | None) -> bytes | None:
        """What the user's folder held for `rel` when the copy was made, for a proposal against
        it. `seen` is what the scratch copy held before the model first changed `rel`; it stands
        in when the folder has changed since (so applying is refused as a conflict there)."""
        digest = self._digests.get(rel)
        if digest is None:
            return seen
        try:
            now = (self.folder / _safe(rel)).read_bytes()
        except OSError:
            return seen
        return now if hashlib.sha256(now).hexdigest() == digest else seen

    def read(self, rel: str) -> bytes | None:
        """The scratch copy's bytes of `rel` now; None if it does not exist there."""
        try:
            return (self.root / _safe(rel)).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None

    def close(self) -> None:
        if self._worktree is not None and self._repo_top is not None:
            _git(self._repo_top, "worktree", "remove", "--force", str(self._worktree))
            _git(self._repo_top, "worktree", "prune")
            self._worktree = None
        shutil.rmtree(self._base, ignore_errors=True)


def _safe(rel: str) -> Path:
    parts = safe_relative_parts(rel)
    if not parts:
        raise ScratchError(f"The path {rel!r} is not inside the folder.")
    return Path(*parts)


def _git(cwd: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_S,
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        log.info("git %s failed: %s", args[0], exc)
        return None
    if done.returncode != 0:
        log.info("git %s failed: %s", args[0], done.stderr.strip()[:500])
        return None
    return done.stdout.strip()
