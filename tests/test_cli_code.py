"""`leancoder edit` and `leancoder ask --folder` with the real starter model on real folders.

The 135M starter almost never writes an edit block, so the edit paths (apply, undo, retries) are
driven by scripted answers (tests/scripted_answers.py): the CLI loads the real model and runs it
on the real messages, and each answer is swapped for the next scripted one before the edit
pipeline sees it. One test keeps the starter's own reply end to end.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from app.cli.main import main
from app.core.edits import list_change_sets
from tests.edit_corpus_support import snapshot
from tests.scripted_answers import ScriptedAnswers

APP_PY = b"def add(a, b):\n    return a + b\n"
APPLIES = "app.py\n<<<<<<< SEARCH\n    return a + b\n=======\n    return b + a\n>>>>>>> REPLACE\n"
FAILS = (
    "app.py\n<<<<<<< SEARCH\ndef mul(a, b):\n    return a * b\n=======\ndef mul(a, b):\n"
    "    return b * a\n>>>>>>> REPLACE\n"
)


@pytest.fixture
def project(tmp_path: Path, data_dir: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "app.py").write_bytes(APP_PY)
    (folder / ".env").write_text("SECRET=1\n")
    return folder


def _edit(project: Path, *extra: str) -> int:
    return main(
        ["edit", "--folder", str(project), "--model", "starter", "--select", "app.py",
         "--max-tokens", "8", *extra, "Swap the operands in add"]
    )  # fmt: skip


@pytest.mark.model
def test_edit_without_apply_reports_the_edit_and_writes_nothing(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    script = ScriptedAnswers(monkeypatch, [APPLIES])
    before = snapshot(project)
    assert _edit(project, "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["replies"] == [APPLIES]
    assert report["dry_run"] is True and report["ok"] is True
    assert [(b["path"], b["status"]) for b in report["blocks"]] == [("app.py", "applied")]
    assert [(f["path"], f["state"], f["added"], f["removed"]) for f in report["files"]] == [
        ("app.py", "would write", 1, 1)
    ]
    assert report["change_set"] is None
    assert snapshot(project) == before
    assert script.asked == 1


@pytest.mark.model
def test_edit_with_apply_writes_the_edit_and_undo_restores_the_bytes(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ScriptedAnswers(monkeypatch, [APPLIES])
    before = snapshot(project)
    assert _edit(project, "--apply") == 0
    assert "applied; undo with: leancoder undo" in capsys.readouterr().out
    assert (project / "app.py").read_bytes() == b"def add(a, b):\n    return b + a\n"
    assert len(list_change_sets(project)) == 1
    assert main(["undo", "--folder", str(project)]) == 0
    assert snapshot(project) == before
    assert list_change_sets(project) == []


@pytest.mark.model
def test_failed_blocks_go_back_twice_then_the_edit_stops(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    script = ScriptedAnswers(monkeypatch, [FAILS, FAILS, FAILS, APPLIES])
    before = snapshot(project)
    assert _edit(project, "--apply") == 1  # a refused block: partial
    captured = capsys.readouterr()
    assert "note: 2 follow-up(s) sent for blocks that did not apply" in captured.err
    assert script.asked == 3 and script.replies == [APPLIES]  # the fourth never asked
    first, *follow_ups = script.prompts
    for previous, prompt in zip([first, *follow_ups], follow_ups, strict=False):
        assert prompt[: len(previous)] == previous and len(prompt) == len(previous) + 2
        assert prompt[-2] == {"role": "assistant", "content": FAILS}
        assert prompt[-1]["role"] == "user" and "could not be applied" in prompt[-1]["content"]
    assert snapshot(project) == before
    assert list_change_sets(project) == []


@pytest.mark.model
def test_the_starters_own_reply_applied_or_not_is_undoable(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """End to end with the real model's words: whatever it wrote, undo gets back the bytes."""
    before = snapshot(project)
    code = main(
        ["edit", "--folder", str(project), "--model", "starter", "--select", "app.py",
         "--max-tokens", "120", "--apply", "Add a function mul(a, b) to app.py"]
    )  # fmt: skip
    output = capsys.readouterr().out
    applied = "applied; undo with" in output
    assert len(list_change_sets(project)) == (1 if applied else 0)  # the report tells the truth
    if "The model proposed no edits" in output:
        assert code == 1 and not applied
    if applied:
        assert main(["undo", "--folder", str(project)]) == 0
    assert snapshot(project) == before


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
