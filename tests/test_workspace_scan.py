"""Folder scan on real folders: Git's ignore rules, skipped paths and their reasons, streaming."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from app.core.workspace.scan import (
    WorkspaceError,
    explain_path,
    open_root,
    scan_all,
    scan_folder,
)
from tests.workspace_support import EXPECTED_FILES, EXPECTED_SKIPPED, make_sample_folder

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_sample_folder_lists_and_skips_every_case_with_its_reason(tmp_path: Path) -> None:
    root = make_sample_folder(tmp_path)
    result = scan_all(root)
    assert {f.path for f in result.files} == EXPECTED_FILES
    reasons = {s.path: s.reason for s in result.skipped}
    assert set(reasons) == set(EXPECTED_SKIPPED)
    for path, words in EXPECTED_SKIPPED.items():
        assert words in reasons[path], (path, reasons[path])
    sizes = {f.path: f.size for f in result.files}
    assert sizes["main.py"] == (root / "main.py").stat().st_size
    assert sizes["link_in.py"] == sizes["main.py"]  # an inside link counts as its target
    assert not result.cancelled
    # Folders are marked as such, and nothing under a skipped folder appears at all.
    skipped_dirs = {s.path for s in result.skipped if s.is_dir}
    assert skipped_dirs == {".git/", "build/", "node_modules/", "env/"}
    listed = [f.path for f in result.files] + [s.path for s in result.skipped]
    assert not any(p.startswith(d) and p != d for p in listed for d in skipped_dirs)


def test_include_secrets_lists_secret_files(tmp_path: Path) -> None:
    root = make_sample_folder(tmp_path)
    files = {f.path for f in scan_all(root, include_secrets=True).files}
    assert {".env", "server.pem", "id_rsa", "deploy/key.txt", "deploy/.npmrc"} <= files
    assert "debug.log" not in files  # .gitignore still applies


def test_max_file_bytes_is_configurable(tmp_path: Path) -> None:
    root = make_sample_folder(tmp_path)
    result = scan_all(root, max_file_bytes=10)
    reasons = {s.path: s.reason for s in result.skipped}
    assert reasons["main.py"] == f"larger than 10 bytes ({(root / 'main.py').stat().st_size} bytes)"
    assert "keep.log" not in {f.path for f in result.files}


def test_ignore_decisions_agree_with_git(tmp_path: Path) -> None:
    """Git itself is the reference: the untracked, not-ignored files it lists are ours."""
    git = shutil.which("git")
    if git is None:
        pytest.skip("git is not installed")
    root = tmp_path / "gitrepo"
    rules = {
        ".gitignore": "*.gen\n/top_only.txt\nlogs/\n**/gen/**\n!keep.gen\ndocs/*.html\n"
        "!docs/index.html\na?c.txt\n[xy].cfg\n\\#hash.txt\n trailing.txt\n",
        "lib/.gitignore": "!important.gen\n*.cache\n/local.txt\n",
        "lib/sub/.gitignore": "!*.cache\n",
    }
    names = [
        "main.c", "main.gen", "keep.gen", "top_only.txt", "lib/top_only.txt", "logs/a.txt",
        "lib/logs/b.txt", "pkg/gen/x.py", "pkg/gen/deep/y.py", "pkg/real.py", "docs/a.html",
        "docs/index.html", "docs/sub/b.html", "abc.txt", "abbc.txt", "x.cfg", "z.cfg",
        "#hash.txt", "lib/important.gen", "lib/other.gen", "lib/a.cache", "lib/sub/b.cache",
        "lib/local.txt", "lib/sub/local.txt", " trailing.txt", "trailing.txt",
    ]  # fmt: skip
    for rel, text in rules.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    for rel in names:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(f"{rel}\n")
    subprocess.run([git, "init", "-q", str(root)], check=True)
    listed = subprocess.run(
        [
            git,
            "-C",
            str(root),
            "-c",
            "core.excludesFile=",
            "ls-files",
            "--others",
            "--exclude-standard",
            "-z",
        ],
        check=True,
        capture_output=True,
    ).stdout.decode()
    git_files = {p for p in listed.split("\0") if p}
    ours = {f.path for f in scan_all(root).files}
    assert ours == git_files
    assert "main.gen" not in ours and "lib/important.gen" in ours  # the rules did something


def test_ignored_folder_is_never_entered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_sample_folder(tmp_path)
    entered: list[str] = []
    real_scandir = os.scandir

    def recording_scandir(path: str) -> object:
        entered.append(os.path.relpath(path, root))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", recording_scandir)
    files = {f.path for f in scan_all(root).files}
    assert "build/keep.js" not in files  # Git cannot re-include a file under an ignored folder
    assert {".", "src", "src/nested", "src/nested/deep", "deploy"} <= set(entered)
    for skipped in ("build", ".git", "node_modules", "env", "link_dir", "src/.."):
        assert skipped not in entered


def test_subfolder_of_a_repository_honours_the_gitignore_above(tmp_path: Path) -> None:
    root = make_sample_folder(tmp_path)
    reasons = {s.path: s.reason for s in scan_all(root / "src").skipped}
    assert reasons["debug.log"] == "ignored by ../.gitignore (pattern: *.log)"
    assert reasons["scratch.tmp"] == "ignored by .gitignore (pattern: *.tmp)"
    files = {f.path for f in scan_all(root / "src").files}
    assert files == {".gitignore", "app.py", "important.tmp", "nested/.gitignore",
                     "nested/debug.log", "nested/deep/util.js"}  # fmt: skip


def test_an_ignored_folder_opened_on_purpose_is_its_own_project(tmp_path: Path) -> None:
    root = make_sample_folder(tmp_path)
    assert {f.path for f in scan_all(root / "build").files} == {"keep.js", "out.js"}
    # A project below a home-style repository that ignores everything is listed too.
    home = tmp_path / "home"
    (home / ".git").mkdir(parents=True)
    (home / ".gitignore").write_text("*\n!.bashrc\n")
    (home / "projects" / "app").mkdir(parents=True)
    (home / "projects" / "app" / "main.py").write_text("print('hi')\n")
    assert [f.path for f in scan_all(home / "projects" / "app").files] == ["main.py"]
    at_home = scan_all(home)
    assert at_home.files == []
    assert {s.path: s.reason for s in at_home.skipped}["projects/"] == (
        "ignored by .gitignore (pattern: *)"
    )


def test_batches_are_small_and_cover_everything(tmp_path: Path) -> None:
    root = tmp_path / "many"
    for i in range(30):
        folder = root / f"pkg{i:02d}"
        folder.mkdir(parents=True)
        for j in range(40):
            (folder / f"m{j:02d}.py").write_text(f"X = {j}\n")
    batches = list(scan_folder(root, batch_size=50))
    assert all(0 < len(b.files) + len(b.skipped) <= 50 for b in batches)
    paths = [f.path for b in batches for f in b.files]
    assert len(paths) == len(set(paths)) == 1200
    assert paths[:2] == ["pkg00/m00.py", "pkg00/m01.py"]  # each folder's entries by name
    assert paths == sorted(paths)


def test_cancel_stops_the_scan_between_entries(tmp_path: Path) -> None:
    root = tmp_path / "many"
    root.mkdir()
    for i in range(2000):
        (root / f"f{i:04d}.txt").write_text("x\n")
    cancel = threading.Event()
    seen = 0
    for batch in scan_folder(root, cancel=cancel, batch_size=100):
        seen += len(batch.files)
        cancel.set()
    assert seen == 100  # no batch after the flag was set
    result = scan_all(root, cancel=cancel)
    assert result.cancelled and result.files == []


def test_folder_that_cannot_be_opened_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError, match="does not exist"):
        scan_folder(tmp_path / "missing")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(WorkspaceError, match="is a file, not a folder"):
        open_root(tmp_path / "file.txt")


def test_a_folder_removed_after_opening_is_a_clear_error(tmp_path: Path) -> None:
    folder = tmp_path / "gone"
    folder.mkdir()
    batches = scan_folder(folder)
    folder.rmdir()
    with pytest.raises(WorkspaceError, match=r"gone cannot be read \(no such file or directory\)"):
        next(batches)


def test_explain_path_checks_every_folder_above(tmp_path: Path) -> None:
    root = make_sample_folder(tmp_path)
    assert explain_path(root, "main.py") is None
    assert explain_path(root, "src/nested/debug.log") is None
    assert explain_path(root, ".env") == "looks like a secret: environment file with secrets (.env)"
    assert explain_path(root, "build/keep.js") == (
        "inside build/: ignored by .gitignore (pattern: build/)"
    )
    assert explain_path(root, ".git/HEAD") == "inside .git/: version-control data (.git/)"
    assert explain_path(root, "src/scratch.tmp") == "ignored by src/.gitignore (pattern: *.tmp)"
    assert explain_path(root, "link_out.txt") is not None
    assert explain_path(root, "link_dir/app.py", include_secrets=True) is not None
    for bad in ("../outside.txt", "/etc/passwd", "src/../../outside.txt", ""):
        with pytest.raises(WorkspaceError, match="not a path inside the folder"):
            explain_path(root, bad)
    with pytest.raises(WorkspaceError, match="not a file in the folder"):
        explain_path(root, "missing.py")
    with pytest.raises(WorkspaceError, match="is a folder"):
        explain_path(root, "src")


_UNREADABLE_SCRIPT = """
import json, sys
from app.core.workspace.scan import scan_all
r = scan_all(sys.argv[1])
print(json.dumps({"files": [f.path for f in r.files],
                  "skipped": {s.path: s.reason for s in r.skipped}}))
"""


def test_unreadable_file_and_folder_are_skipped_with_a_reason(tmp_path: Path) -> None:
    root = tmp_path / "locked"
    (root / "closed").mkdir(parents=True)
    (root / "closed" / "inner.py").write_text("x = 1\n")
    (root / "secret.py").write_text("y = 2\n")
    (root / "open.py").write_text("z = 3\n")
    (root / "secret.py").chmod(0)
    (root / "closed").chmod(0)
    try:
        if os.geteuid() != 0:
            result = scan_all(root)
            files = [f.path for f in result.files]
            skipped = {s.path: s.reason for s in result.skipped}
        else:
            # Root reads anything; without the override capabilities the mode bits apply again.
            setpriv = shutil.which("setpriv")
            if setpriv is None:
                pytest.skip("running as root without setpriv to drop the read override")
            drop = "-dac_override,-dac_read_search"
            out = subprocess.run(
                [setpriv, f"--bounding-set={drop}", f"--inh-caps={drop}", sys.executable,
                 "-c", _UNREADABLE_SCRIPT, str(root)],
                check=True, capture_output=True, text=True, cwd=REPO_ROOT,
            ).stdout  # fmt: skip
            data = json.loads(out)
            files, skipped = data["files"], data["skipped"]
    finally:
        (root / "secret.py").chmod(0o644)
        (root / "closed").chmod(0o755)
    assert files == ["open.py"]
    assert skipped == {
        "secret.py": "file cannot be read (permission denied)",
        "closed/": "folder cannot be read (permission denied)",
    }
