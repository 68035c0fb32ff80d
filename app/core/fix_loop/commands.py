"""A folder's test command (and optional lint command): detected, editable, saved per folder.

Detection reads only marker files (pyproject.toml, package.json, go.mod, Cargo.toml, a Makefile
with a `test` target), never runs anything. What the user chose is kept in one small JSON file in
LeanCoder's data folder, beside the settings, keyed by the folder's resolved path: a project's own
files are never written to remember it. A command is a program and its arguments (split like a
shell would, without running a shell: no pipes, no `&&`), so what runs is exactly what is shown.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path

from app.core.errors import LeanCoderError
from app.core.storage.json_file import read_json_object, write_json
from app.core.storage.paths import data_dir

FILE_NAME = "fix_commands.json"
MAX_COMMAND_CHARS = 1000
MAX_FOLDERS = 500  # the oldest entries go first: the file stays small
_MAKE_TEST = re.compile(r"^test\s*:", re.MULTILINE)


class CommandError(LeanCoderError):
    """A test or lint command that cannot be used as written."""


@dataclass(frozen=True, slots=True)
class FolderCommands:
    test: str = ""
    lint: str = ""
    detected: bool = False  # `test` was guessed from the folder's files, not chosen by the user


def split_command(command: str, what: str = "test command") -> list[str]:
    """The program and its arguments; a clear error for an empty or unbalanced command."""
    if len(command) > MAX_COMMAND_CHARS:
        raise CommandError(f"The {what} is longer than {MAX_COMMAND_CHARS} characters.")
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise CommandError(f"The {what} `{command}` cannot be read: {exc}.") from None
    if not argv:
        raise CommandError(f"The {what} is empty.")
    return argv


def detect_test_command(folder: Path) -> str | None:
    """The usual test command for the project in `folder`, from its marker files; None if none."""
    if _is_python_project(folder):
        return "pytest -q" if shutil.which("pytest") else "python3 -m pytest -q"
    package = folder / "package.json"
    if package.is_file():
        try:
            scripts = json.loads(package.read_text(encoding="utf-8")).get("scripts", {})
        except (OSError, ValueError, AttributeError):
            scripts = {}
        if isinstance(scripts, dict) and "test" in scripts:
            return "npm test"
    if (folder / "go.mod").is_file():
        return "go test ./..."
    if (folder / "Cargo.toml").is_file():
        return "cargo test"
    for name in ("Makefile", "makefile", "GNUmakefile"):
        try:
            text = (folder / name).read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        if _MAKE_TEST.search(text):
            return "make test"
    return None


def _is_python_project(folder: Path) -> bool:
    for marker in ("pytest.ini", "conftest.py", "tox.ini", "setup.cfg"):
        if (folder / marker).is_file():
            return True
    pyproject = folder / "pyproject.toml"
    if pyproject.is_file():
        return True
    if (folder / "tests").is_dir() and any((folder / "tests").glob("test_*.py")):
        return True
    return any(folder.glob("test_*.py")) or any(folder.glob("*_test.py"))


def _store_path() -> Path:
    return data_dir() / FILE_NAME


def _key(folder: Path) -> str:
    return str(folder.expanduser().resolve())


def load_commands(folder: Path) -> FolderCommands:
    """The saved commands for `folder`; else the detected test command (`detected=True`)."""
    entry = read_json_object(_store_path(), "Test commands").get(_key(folder))
    if isinstance(entry, dict) and isinstance(entry.get("test"), str) and entry["test"]:
        lint = entry.get("lint")
        return FolderCommands(entry["test"], lint if isinstance(lint, str) else "")
    detected = detect_test_command(folder)
    return FolderCommands(detected or "", "", detected is not None)


def save_commands(folder: Path, test: str, lint: str = "") -> FolderCommands:
    """Remember `test` (and `lint`) for `folder`; both are checked as commands first."""
    test, lint = test.strip(), lint.strip()
    split_command(test)
    if lint:
        split_command(lint, "lint command")
    path = _store_path()
    data = read_json_object(path, "Test commands")
    key = _key(folder)
    data.pop(key, None)
    data[key] = {"test": test, "lint": lint}
    kept = dict(list(data.items())[-MAX_FOLDERS:])
    write_json(path, kept)
    return FolderCommands(test, lint)
