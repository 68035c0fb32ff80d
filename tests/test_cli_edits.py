"""`leancoder apply` and `leancoder undo` through `app.cli.main` on real temporary folders."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from app.cli.main import main

REPLY = """I renamed the function and added a test.

src/greet.py
```python
<<<<<<< SEARCH
def hello(name):
    return "Hello " + name
=======
def greet(name):
    return "Hello " + name
>>>>>>> REPLACE
```

tests/test_greet.py
```python
from src.greet import greet


def test_greet():
    assert greet("Ann") == "Hello Ann"
```

src/missing.py
<<<<<<< SEARCH
nothing
=======
something
>>>>>>> REPLACE
"""
GREET = b'def hello(name):\n    return "Hello " + name\n'


@pytest.fixture
def project(tmp_path: Path, data_dir: Path) -> Path:
    folder = tmp_path / "project"
    (folder / "src").mkdir(parents=True)
    (folder / "src" / "greet.py").write_bytes(GREET)
    return folder


@pytest.fixture
def reply_file(tmp_path: Path) -> Path:
    path = tmp_path / "reply.md"
    path.write_text(REPLY, encoding="utf-8")
    return path


def test_apply_reports_each_block_and_writes(
    project: Path, reply_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["apply", "--folder", str(project), "--reply", str(reply_file)])
    out = capsys.readouterr().out
    assert status == 1  # one block was refused
    assert "block 1 (src/greet.py): applied (exact)" in out
    assert "block 2 (tests/test_greet.py): applied (new file)" in out
    assert "block 3 (src/missing.py): refused: src/missing.py does not exist" in out
    assert "leancoder undo --folder" in out
    assert (project / "src" / "greet.py").read_bytes() == GREET.replace(b"hello", b"greet")
    assert (project / "tests" / "test_greet.py").exists()


def test_dry_run_writes_nothing(
    project: Path, reply_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main(["apply", "--folder", str(project), "--reply", str(reply_file), "--dry-run"])
    out = capsys.readouterr().out
    assert status == 1
    assert "would write" in out and "dry run: nothing was written" in out
    assert (project / "src" / "greet.py").read_bytes() == GREET
    assert not (project / "tests").exists()


def test_json_report(project: Path, reply_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["apply", "--folder", str(project), "--reply", str(reply_file), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert [b["status"] for b in report["blocks"]] == ["applied", "applied", "refused"]
    assert report["blocks"][0]["method"] == "exact"
    assert "does not exist" in report["blocks"][2]["reason"]
    assert {f["path"]: f["state"] for f in report["files"]} == {
        "src/greet.py": "written",
        "tests/test_greet.py": "written",
    }
    assert report["change_set"] and report["ok"] is False


def test_undo_restores_bytes(
    project: Path, reply_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["apply", "--folder", str(project), "--reply", str(reply_file)])
    capsys.readouterr()
    assert main(["undo", "--folder", str(project)]) == 0
    out = capsys.readouterr().out
    assert "restored src/greet.py" in out and "removed tests/test_greet.py" in out
    assert (project / "src" / "greet.py").read_bytes() == GREET
    assert not (project / "tests").exists()
    assert main(["undo", "--folder", str(project)]) == 2
    assert "error: Nothing to undo" in capsys.readouterr().err


def test_big_deletion_needs_yes(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reply = tmp_path / "delete.md"
    reply.write_text("DELETE FILE src/greet.py\n")
    status = main(["apply", "--folder", str(project), "--reply", str(reply)])
    assert status == 1
    assert "re-run with --yes" in capsys.readouterr().out
    assert (project / "src" / "greet.py").exists()
    assert main(["apply", "--folder", str(project), "--reply", str(reply), "--yes"]) == 0
    assert not (project / "src" / "greet.py").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["apply", "--folder", "/no/such/folder", "--reply", "x"], "does not exist"),
        (["apply", "--folder", ".", "--reply", "/no/such/reply.md"], "reply file"),
        (["undo", "--folder", "/no/such/folder"], "does not exist"),
    ],
)
def test_bad_input_is_one_clear_line(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str], data_dir: Path
) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err


def test_creating_over_an_existing_file_is_refused_in_json(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An empty SEARCH for a file that exists: refused in the report, nothing written."""
    reply = tmp_path / "r.md"
    reply.write_text("src/greet.py\n<<<<<<< SEARCH\n=======\nx = 1\n>>>>>>> REPLACE\n")
    status = main(["apply", "--folder", str(project), "--reply", str(reply), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert status == 1
    assert report["blocks"][0]["status"] == "refused"
    assert (project / "src" / "greet.py").read_bytes() == GREET


def test_apply_reads_the_reply_from_stdin(project: Path, data_dir: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "app", "apply", "--folder", str(project), "--reply", "-"],
        input=REPLY,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert "applied (exact)" in done.stdout
    assert (project / "src" / "greet.py").read_bytes() == GREET.replace(b"hello", b"greet")
