"""A git checkpoint before an apply: the working tree saved as a stash entry, touching nothing.

`git stash create` records the tracked files' current state as a commit without changing the
working tree or the index; `git stash store` lists it in `git stash list`, so the user can get it
back with `git stash apply`. A clean tree needs no stash: HEAD is the checkpoint. No git, no
repository, or a git that hangs is not an error: there is simply no checkpoint.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)
GIT_TIMEOUT_S = 15.0


@dataclass(frozen=True, slots=True)
class Checkpoint:
    commit: str
    kind: str  # "stash" (saved local changes) or "head" (the tree was clean)

    def describe(self) -> str:
        if self.kind == "stash":
            short = self.commit[:12]
            return f"git stash entry {short} (restore with: git stash apply {short})"
        return f"git commit {self.commit[:12]} (no local changes before the edit)"


def _git(folder: Path, *args: str) -> str | None:
    git = shutil.which("git")
    if git is None:
        return None
    env = dict(os.environ, GIT_TERMINAL_PROMPT="0", LC_ALL="C")
    # A stash commit needs an identity; supply one only where the user has none configured.
    env.setdefault("GIT_AUTHOR_NAME", "LeanCoder")
    env.setdefault("GIT_AUTHOR_EMAIL", "leancoder@localhost")
    env.setdefault("GIT_COMMITTER_NAME", "LeanCoder")
    env.setdefault("GIT_COMMITTER_EMAIL", "leancoder@localhost")
    try:
        done = subprocess.run(
            [git, "-C", str(folder), *args],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_S,
            env=env,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.info("git %s in %s failed: %s", args[0], folder, exc)
        return None
    if done.returncode != 0:
        log.info("git %s in %s: %s", args[0], folder, done.stderr.strip())
        return None
    return done.stdout.strip()


def in_git_repository(folder: Path) -> bool:
    return _git(folder, "rev-parse", "--is-inside-work-tree") == "true"


def git_checkpoint(
    folder: Path, message: str = "LeanCoder: before applying an edit"
) -> Checkpoint | None:
    """Save the folder's git state before an apply; None outside a repository or without git."""
    if not in_git_repository(folder):
        return None
    stash = _git(folder, "stash", "create", message)
    if stash:
        if _git(folder, "stash", "store", "-m", message, stash) is None:
            return None
        return Checkpoint(stash, "stash")
    head = _git(folder, "rev-parse", "--verify", "HEAD")
    return Checkpoint(head, "head") if head else None
