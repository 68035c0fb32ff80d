"""Helpers for the fix-loop tests: the bundled buggy projects copied to a test's folder, as plain
folders or git repositories, and the test command that runs their pytest suites."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from app.core.session.chat import FolderChoice
from app.core.workspace.scan import scan_all

PROJECTS = Path(__file__).parent / "fix_projects"
PYTEST = f"{sys.executable} -m pytest -q -p no:cacheprovider"

# The one-line fix of each bundled project, as a whole-file reply (scripted, not the model's).
FIXED = {
    "add_numbers": "calc.py\n```python\ndef add(a, b):\n    return a + b\n```\n",
    "word_count": "text.py\n```python\ndef count_words(sentence):\n"
    "    return len(sentence.split())\n```\n",
    "greeting": 'greet.py\n```python\ndef greet(name):\n    return "Hello, " + name + "!"\n```\n',
}
# A wrong edit of add_numbers, and another that fails exactly the same way.
WRONG = "calc.py\n```python\ndef add(a, b):\n    return a * b\n```\n"
WRONG_AGAIN = "calc.py\n```python\ndef add(a, b):\n    return b * a\n```\n"


def copy_project(name: str, where: Path, *, git: bool = False) -> Path:
    folder = where / name
    shutil.copytree(PROJECTS / name, folder)
    if git:
        env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
               "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}  # fmt: skip
        for args in (["init", "-q"], ["add", "."], ["commit", "-q", "-m", "start"]):
            subprocess.run(["git", *args], cwd=folder, check=True, env=env)
    return folder


def task_of(name: str) -> str:
    return (PROJECTS / name / "task.txt").read_text().strip()


def folder_choice(folder: Path) -> FolderChoice:
    return FolderChoice(folder, tuple(f.path for f in scan_all(folder).files))


def files_outside_git(folder: Path) -> dict[str, bytes]:
    """Every file's bytes, .git left out (git keeps its own bookkeeping there)."""
    found = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if rel == ".git" or rel.startswith(".git/"):
            continue
        found[rel] = path.read_bytes() if path.is_file() else b"<dir>"
    return found


def worktrees(folder: Path) -> list[str]:
    out = subprocess.run(["git", "worktree", "list", "--porcelain"], cwd=folder, check=True,
                         capture_output=True, text=True).stdout  # fmt: skip
    return [line for line in out.splitlines() if line.startswith("worktree ")]
