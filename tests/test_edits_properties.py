"""Property tests (hypothesis) for the edit pipeline on real temporary folders.

- Applying any accepted subset of a proposal and then undoing restores every byte and mode.
- A refused or conflicting apply leaves every file exactly as it was.
- Whatever paths a reply names, nothing outside the folder is ever written.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from app.core.edits import (
    ConflictError,
    HunkStatus,
    apply_proposal,
    list_change_sets,
    propose,
    undo_last,
)
from tests.edit_corpus_support import data_dir_at, snapshot

SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)
TOKENS = ["x = 1", "    return x", "", "  ", "def f():", "\tpass", "# note", "café", "}", "if a:"]
ENDINGS = ["\n", "\r\n", "\r"]


@st.composite
def text_files(draw: st.DrawFn) -> bytes:
    """A text file: lines from a small vocabulary (so repeats happen), any line endings,
    UTF-8 with or without a BOM or Latin-1, with or without a final line break."""
    lines = draw(st.lists(st.sampled_from(TOKENS), min_size=0, max_size=12))
    uniform = draw(st.booleans())
    first = draw(st.sampled_from(ENDINGS))
    text = "".join(line + (first if uniform else draw(st.sampled_from(ENDINGS))) for line in lines)
    if lines and draw(st.booleans()):
        text = text.rstrip("\r\n")
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "latin-1"]))
    return text.encode(encoding)


def _search_replace(path: str, search: list[str], replace: list[str]) -> str:
    body = "".join(line + "\n" for line in search)
    new = "".join(line + "\n" for line in replace)
    return f"{path}\n<<<<<<< SEARCH\n{body}=======\n{new}>>>>>>> REPLACE\n\n"


@st.composite
def replies_for(draw: st.DrawFn, files: dict[str, bytes]) -> str:
    """A reply editing the given files: quoted line ranges (sometimes re-indented or with
    trailing spaces), whole files, new files, deletions and a little noise."""
    parts: list[str] = []
    for name, data in files.items():
        lines = data.decode("latin-1").replace("\r\n", "\n").replace("\r", "\n").split("\n")
        choice = draw(st.sampled_from(["range", "whole", "delete", "skip"]))
        if choice == "range" and any(line.strip() for line in lines):
            start = draw(st.integers(0, len(lines) - 1))
            end = draw(st.integers(start + 1, len(lines)))
            search = lines[start:end]
            if draw(st.booleans()):
                search = ["    " + line for line in search]  # indentation drift
            if draw(st.booleans()):
                search = [line + "  " for line in search]  # trailing spaces
            replace = draw(st.lists(st.sampled_from(TOKENS), max_size=5))
            parts.append(_search_replace(name, search, replace))
        elif choice == "whole":
            body = "".join(t + "\n" for t in draw(st.lists(st.sampled_from(TOKENS), max_size=6)))
            parts.append(f"{name}\n```\n{body}```\n\n")
        elif choice == "delete":
            parts.append(f"DELETE FILE {name}\n\n")
    if draw(st.booleans()):
        parts.append(_search_replace("new/made.txt", [], ["made = True"]))
    if draw(st.booleans()):
        parts.append("Some prose, then a stray marker:\n>>>>>>> REPLACE\n")
    order = draw(st.permutations(parts))
    return "".join(order)


@contextmanager
def workspace() -> Iterator[tuple[Path, Path]]:
    """A fresh project folder and data folder per example (pytest's tmp_path is per test)."""
    with tempfile.TemporaryDirectory(prefix="leancoder-prop-") as scratch:
        base = Path(scratch)
        (base / "project").mkdir()
        with data_dir_at(base / "data"):
            yield base, base / "project"


def _write(folder: Path, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        (folder / name).write_bytes(data)


def _project_only(base: Path) -> dict[str, tuple[str, bytes, int]]:
    return {k: v for k, v in snapshot(base).items() if not k.startswith("data")}


FILE_SETS = st.dictionaries(st.sampled_from(["a.py", "b.txt", "c.cfg"]), text_files(), min_size=1)


@SETTINGS
@given(data=st.data(), files=FILE_SETS)
def test_apply_then_undo_restores_exact_bytes(data: st.DataObject, files: dict[str, bytes]) -> None:
    with workspace() as (base, folder):
        _write(folder, files)
        before = _project_only(base)
        proposal = propose(folder, data.draw(replies_for(files)))
        assert _project_only(base) == before  # proposing writes nothing
        for change in proposal.files:
            for number in range(len(change.hunks)):
                status = data.draw(st.sampled_from([HunkStatus.ACCEPTED, HunkStatus.REJECTED]))
                change.set_status(number, status)
        expected = {c.path: c.final_bytes() for c in proposal.files if c.writes}
        result = apply_proposal(proposal, confirm_big_deletions=True)
        event(f"files written: {len(expected)}")
        for path, content in expected.items():
            target = folder / path
            assert (target.read_bytes() if target.exists() else None) == content
        untouched = {k: v for k, v in before.items() if k.removeprefix("project/") not in expected}
        now = _project_only(base)
        assert {k: now.get(k) for k in untouched} == untouched
        if result.change_set is not None:
            undo_last(folder)
        assert _project_only(base) == before
        assert list_change_sets(folder) == []


@SETTINGS
@given(data=st.data(), files=FILE_SETS)
def test_a_conflicting_apply_leaves_every_file_untouched(
    data: st.DataObject, files: dict[str, bytes]
) -> None:
    with workspace() as (base, folder):
        _write(folder, files)
        proposal = propose(folder, data.draw(replies_for(files)))
        proposal.accept_all()
        writing = [c for c in proposal.files if c.writes]
        if not writing:
            before = _project_only(base)
            assert apply_proposal(proposal, confirm_big_deletions=True).change_set is None
            assert _project_only(base) == before
            return
        event(f"files to write: {len(writing)}")
        victim = data.draw(st.sampled_from(writing))
        (folder / victim.path).parent.mkdir(parents=True, exist_ok=True)
        (folder / victim.path).write_bytes(b"the user's own edit\n")
        before = _project_only(base)
        try:
            apply_proposal(proposal, confirm_big_deletions=True)
            raise AssertionError("an apply over a changed file must be refused")
        except ConflictError as conflict:
            assert victim.path in conflict.files
        assert _project_only(base) == before
        assert list_change_sets(folder) == []


UNSAFE_PATHS = [
    "../outside/secret.txt",
    "../outside/new.txt",
    "sub/../../outside/secret.txt",
    "{outside}/secret.txt",
    "{outside}/created.txt",
    "escape/secret.txt",
    "escape/created.txt",
    "link.txt",
    ".git/config",
    "~/leancoder-should-not-exist.txt",
    "inside.txt",
    "sub/inside.txt",
]


@SETTINGS
@given(
    picks=st.lists(
        st.tuples(
            st.sampled_from(UNSAFE_PATHS),
            st.sampled_from(["create", "replace", "whole", "delete"]),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_nothing_is_written_outside_the_folder(picks: list[tuple[str, str]]) -> None:
    with workspace() as (base, folder):
        outside = base / "outside"
        outside.mkdir()
        (outside / "secret.txt").write_bytes(b"secret\n")
        os.symlink(outside, folder / "escape")
        os.symlink(outside / "secret.txt", folder / "link.txt")
        (folder / "inside.txt").write_bytes(b"secret\n")
        (folder / ".git").mkdir()
        (folder / ".git" / "config").write_bytes(b"secret\n")
        outside_before = snapshot(outside)
        git_before = snapshot(folder / ".git")
        parts = []
        for raw, action in picks:
            path = raw.replace("{outside}", str(outside))
            if action == "create":
                parts.append(_search_replace(path, [], ["pwned"]))
            elif action == "replace":
                parts.append(_search_replace(path, ["secret"], ["pwned"]))
            elif action == "whole":
                parts.append(f"{path}\n```\npwned\n```\n\n")
            else:
                parts.append(f"DELETE FILE {path}\n\n")
        proposal = propose(folder, "".join(parts))
        proposal.accept_all()
        for change in proposal.files:
            assert change.real_path.is_relative_to(folder.resolve())
            assert ".git" not in change.real_path.relative_to(folder.resolve()).parts
        result = apply_proposal(proposal, confirm_big_deletions=True)
        event(f"files written: {len(result.files)}")
        assert snapshot(outside) == outside_before
        assert snapshot(folder / ".git") == git_before
        assert not (Path.home() / "leancoder-should-not-exist.txt").exists()
        if result.change_set is not None:
            undo_last(folder)
        assert snapshot(outside) == outside_before


FRAGMENTS = [
    "<<<<<<< SEARCH",
    "<<<< SEARCH",
    "<<<<<<<<<< SEARCH",
    "=======",
    "====",
    ">>>>>>> REPLACE",
    ">>>>> REPLACE",
    "```",
    "````python",
    "```python a.py",
    "a.py",
    "`b.txt`:",
    "**../x.py**",
    "/etc/passwd",
    "DELETE FILE a.py",
    "DELETE FILE",
    "x = 1",
    "    return x",
    "# ... existing code ...",
    "...",
    "",
    "\r",
    "\t",
]


@SETTINGS
@given(pieces=st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=12)), max_size=30))
def test_any_reply_gives_results_never_an_exception(pieces: list[str]) -> None:
    with workspace() as (base, folder):
        (folder / "a.py").write_bytes(b"x = 1\n    return x\n")
        (folder / "b.txt").write_bytes(b"x = 1\n")
        before = _project_only(base)
        proposal = propose(folder, "\n".join(pieces))
        for block in proposal.blocks:
            assert block.status.value in ("applied", "unchanged", "refused")
            assert block.status.value != "refused" or block.reason
        assert _project_only(base) == before
