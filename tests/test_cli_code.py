"""`leancoder edit` and `leancoder ask --folder` with the real starter model on real folders."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from app.cli.main import main
from tests.edit_corpus_support import snapshot

APP_PY = b"def add(a, b):\n    return a + b\n"


@pytest.fixture
def project(tmp_path: Path, data_dir: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "app.py").write_bytes(APP_PY)
    (folder / ".env").write_text("SECRET=1\n")
    return folder


@pytest.mark.model
def test_edit_without_apply_writes_nothing(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = snapshot(project)
    code = main(
        ["edit", "--folder", str(project), "--model", "starter", "--select", "app.py",
         "--max-tokens", "120", "--json", "Rename add to plus"]
    )  # fmt: skip
    assert code in (0, 1)
    report = json.loads(capsys.readouterr().out)
    assert 1 <= len(report["replies"]) <= 3  # the reply plus at most two follow-ups
    assert snapshot(project) == before


@pytest.mark.model
def test_edit_with_apply_is_undoable_whatever_the_model_says(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = {p: p.read_bytes() for p in project.rglob("*") if p.is_file()}
    code = main(
        ["edit", "--folder", str(project), "--model", "starter", "--select", "app.py",
         "--max-tokens", "120", "--apply", "Add a function mul(a, b) to app.py"]
    )  # fmt: skip
    assert code in (0, 1)
    output = capsys.readouterr().out
    if "applied; undo with" in output:
        assert main(["undo", "--folder", str(project)]) == 0
    after = {p: p.read_bytes() for p in project.rglob("*") if p.is_file()}
    assert after == before  # applied then undone, or nothing applied: the same bytes


@pytest.mark.model
def test_ask_about_a_folder_leaves_secrets_out(project: Path) -> None:
    from app.cli.main import _run_reporting_errors, build_parser

    args = build_parser().parse_args(
        ["ask", "--model", "starter", "--folder", str(project), "--select", "app.py",
         "--select", ".env", "--max-tokens", "8", "What does app.py do?"]
    )  # fmt: skip
    out, err = io.StringIO(), io.StringIO()
    assert _run_reporting_errors(args.handler, args, out, err) == 0
    assert "1 file(s) in full" in err.getvalue()
    assert "left out: .env: looks like a secret" in err.getvalue()


def test_edit_in_a_missing_folder_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["edit", "--folder", str(tmp_path / "nope"), "--model", "starter", "x"])
    assert code == 2
    assert "does not exist" in capsys.readouterr().err
