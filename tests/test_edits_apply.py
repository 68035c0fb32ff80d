"""Applying and undoing on real folders: conflicts, confirmation, rollback, permissions, git."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from app.core.edits import (
    ConfirmationRequiredError,
    ConflictError,
    EditError,
    NothingToUndoError,
    apply_proposal,
    apply_reply,
    git_checkpoint,
    list_change_sets,
    propose,
    undo_last,
)
from app.core.edits.fsio import TEMP_SUFFIX, current_umask

REPLY_A = "a.txt\n<<<<<<< SEARCH\nalpha\n=======\nALPHA\n>>>>>>> REPLACE\n"
REPLY_B = "b.txt\n<<<<<<< SEARCH\nbeta\n=======\nBETA\n>>>>>>> REPLACE\n"


@pytest.fixture
def project(tmp_path: Path, data_dir: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "a.txt").write_bytes(b"alpha\nkeep\n")
    (folder / "b.txt").write_bytes(b"beta\nkeep\n")
    return folder


def _tree(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and ".git" not in p.parts
    }


def test_conflict_when_a_file_changed_since_the_proposal(project: Path) -> None:
    proposal = propose(project, REPLY_A + "\n" + REPLY_B)
    proposal.accept_all()
    (project / "b.txt").write_bytes(b"beta\nedited by the user\n")
    before = _tree(project)
    with pytest.raises(ConflictError) as caught:
        apply_proposal(proposal)
    assert caught.value.files == ["b.txt"]
    assert "b.txt" in str(caught.value) and "nothing was written" in str(caught.value)
    assert _tree(project) == before  # a.txt was not written either
    assert list_change_sets(project) == []


def test_conflict_when_a_new_file_appeared_meanwhile(project: Path) -> None:
    proposal = propose(project, "c.txt\n```\nnew\n```\n")
    proposal.accept_all()
    (project / "c.txt").write_bytes(b"the user's own c\n")
    with pytest.raises(ConflictError):
        apply_proposal(proposal)
    assert (project / "c.txt").read_bytes() == b"the user's own c\n"


def test_conflict_when_a_file_became_a_symlink_out(project: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"alpha\nkeep\n")
    proposal = propose(project, REPLY_A)
    proposal.accept_all()
    (project / "a.txt").unlink()
    os.symlink(secret, project / "a.txt")
    with pytest.raises(ConflictError):
        apply_proposal(proposal)
    assert secret.read_bytes() == b"alpha\nkeep\n"


def test_big_deletion_needs_confirmation(project: Path) -> None:
    (project / "a.txt").write_bytes(b"one\ntwo\nthree\nfour\n")
    reply = "a.txt\n<<<<<<< SEARCH\none\ntwo\nthree\n=======\n>>>>>>> REPLACE\n"
    proposal = propose(project, reply)
    proposal.accept_all()
    assert [c.path for c in proposal.big_deletions()] == ["a.txt"]
    with pytest.raises(ConfirmationRequiredError) as caught:
        apply_proposal(proposal)
    assert caught.value.files == ["a.txt"]
    assert (project / "a.txt").read_bytes() == b"one\ntwo\nthree\nfour\n"
    apply_proposal(proposal, confirm_big_deletions=True)
    assert (project / "a.txt").read_bytes() == b"four\n"


def test_apply_reply_skips_unconfirmed_big_deletions(project: Path) -> None:
    report = apply_reply(project, "DELETE FILE b.txt\n\n" + REPLY_A)
    assert report.unconfirmed == ["b.txt"]
    assert not report.ok
    assert (project / "b.txt").exists()
    assert (project / "a.txt").read_bytes() == b"ALPHA\nkeep\n"


def test_nothing_accepted_writes_nothing(project: Path) -> None:
    before = _tree(project)
    proposal = propose(project, REPLY_A)
    result = apply_proposal(proposal)  # every hunk still pending
    assert result.change_set is None
    assert _tree(project) == before


def test_undo_is_last_in_first_out_and_exact(project: Path) -> None:
    original = _tree(project)
    apply_reply(project, REPLY_A)
    after_first = _tree(project)
    apply_reply(project, REPLY_B + "\nnew/dir/c.txt\n```\nc\n```\n")
    assert len(list_change_sets(project)) == 2
    undone = undo_last(project)
    assert undone.removed == ["new/dir/c.txt"] and undone.restored == ["b.txt"]
    assert _tree(project) == after_first
    assert not (project / "new").exists()  # the folders the edit created are gone too
    undo_last(project)
    assert _tree(project) == original
    with pytest.raises(NothingToUndoError):
        undo_last(project)


def test_undo_refuses_when_a_file_changed_since_the_apply(project: Path) -> None:
    apply_reply(project, REPLY_A)
    (project / "a.txt").write_bytes(b"ALPHA\nkeep\nand more from the user\n")
    with pytest.raises(ConflictError) as caught:
        undo_last(project)
    assert caught.value.files == ["a.txt"]
    assert (project / "a.txt").read_bytes() == b"ALPHA\nkeep\nand more from the user\n"
    (project / "a.txt").write_bytes(b"ALPHA\nkeep\n")  # the user takes the change back
    undo_last(project)
    assert (project / "a.txt").read_bytes() == b"alpha\nkeep\n"


def test_permission_bits_are_kept_and_new_files_follow_the_umask(project: Path) -> None:
    os.chmod(project / "a.txt", 0o750)
    apply_reply(project, REPLY_A + "\nc.txt\n```\nc\n```\n")
    assert os.stat(project / "a.txt").st_mode & 0o7777 == 0o750
    assert os.stat(project / "c.txt").st_mode & 0o7777 == 0o666 & ~current_umask()
    undo_last(project)
    assert os.stat(project / "a.txt").st_mode & 0o7777 == 0o750


def test_no_temporary_files_are_left(project: Path) -> None:
    apply_reply(project, REPLY_A + "\n" + REPLY_B)
    undo_last(project)
    assert not [p for p in project.rglob("*") if p.name.endswith(TEMP_SUFFIX)]


def test_a_failed_write_rolls_back_every_file(project: Path, data_dir: Path) -> None:
    """A real write failure (the file-size limit) half-way: the first file is put back."""
    script = textwrap.dedent(
        f"""
        import resource, signal, sys
        from pathlib import Path
        from app.core.edits import WriteFailedError, apply_reply
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))
        reply = {REPLY_A!r} + "\\nb.txt\\n```\\n" + "x" * 200_000 + "\\n```\\n"
        try:
            apply_reply(Path(sys.argv[1]), reply, confirm_big_deletions=True)
        except WriteFailedError as exc:
            print("restored" if exc.restored else "not restored", exc)
            sys.exit(3)
        sys.exit(0)
        """
    )
    before = _tree(project)
    done = subprocess.run(
        [sys.executable, "-c", script, str(project)],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, LEANCODER_DATA_DIR=str(data_dir)),
        check=False,
    )
    assert done.returncode == 3, done.stdout + done.stderr
    assert done.stdout.startswith("restored") and "b.txt" in done.stdout
    assert _tree(project) == before
    assert not [p for p in project.rglob("*") if p.name.endswith(TEMP_SUFFIX)]
    assert list_change_sets(project) == []


def _git(folder: Path, *args: str) -> str:
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@t")  # fmt: skip
    done = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True,
                          env=env, check=True, timeout=30)  # fmt: skip
    return done.stdout.strip()


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_git_checkpoint_saves_local_changes_as_a_stash_entry(project: Path) -> None:
    _git(project, "init", "-q")
    _git(project, "add", "a.txt", "b.txt")
    _git(project, "commit", "-q", "-m", "start")
    (project / "b.txt").write_bytes(b"beta\nkeep\nlocal change\n")
    report = apply_reply(project, REPLY_A, checkpoint=True)
    assert report.result is not None and report.result.checkpoint is not None
    checkpoint = report.result.checkpoint
    assert checkpoint.kind == "stash"
    assert "LeanCoder" in _git(project, "stash", "list")
    # The stash entry holds the state before the edit; the working tree keeps the local change.
    assert _git(project, "show", f"{checkpoint.commit}:a.txt") == "alpha\nkeep"
    assert (project / "b.txt").read_bytes() == b"beta\nkeep\nlocal change\n"
    assert (project / "a.txt").read_bytes() == b"ALPHA\nkeep\n"


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_git_checkpoint_of_a_clean_tree_is_head(project: Path) -> None:
    _git(project, "init", "-q")
    _git(project, "add", "a.txt", "b.txt")
    _git(project, "commit", "-q", "-m", "start")
    checkpoint = git_checkpoint(project)
    assert checkpoint is not None and checkpoint.kind == "head"
    assert checkpoint.commit == _git(project, "rev-parse", "HEAD")


def test_no_checkpoint_outside_git_or_without_git(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert git_checkpoint(project) is None
    empty = tmp_path / "empty-path"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # a machine without git
    report = apply_reply(project, REPLY_A, checkpoint=True)
    assert report.result is not None and report.result.checkpoint is None
    assert (project / "a.txt").read_bytes() == b"ALPHA\nkeep\n"


def test_a_folder_gone_since_the_proposal_is_a_conflict(project: Path) -> None:
    proposal = propose(project, REPLY_A)
    proposal.accept_all()
    shutil.rmtree(project)
    with pytest.raises(ConflictError):
        apply_proposal(proposal)
    assert not project.exists()


def test_a_damaged_undo_copy_undoes_nothing(project: Path) -> None:
    apply_reply(project, REPLY_A + "\n" + REPLY_B)
    (change_set,) = list_change_sets(project)
    backup = change_set.directory() / change_set.files[1].backup  # type: ignore[operator]
    backup.write_bytes(b"not what b.txt held\n")
    with pytest.raises(EditError, match="missing or damaged"):
        undo_last(project)
    assert (project / "a.txt").read_bytes() == b"ALPHA\nkeep\n"
    assert (project / "b.txt").read_bytes() == b"BETA\nkeep\n"
