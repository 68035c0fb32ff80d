"""`leancoder files` and `leancoder context` run as real subprocesses on a real sample folder."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.workspace_support import EXPECTED_FILES, EXPECTED_SKIPPED, make_sample_folder


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", *args], capture_output=True, text=True, timeout=120
    )


def test_files_lists_included_files_and_why_others_are_skipped(tmp_path: Path) -> None:
    root = make_sample_folder(tmp_path)
    plain = run_cli("files", "--folder", str(root))
    assert plain.returncode == 0, plain.stderr
    assert {line.split()[0] for line in plain.stdout.splitlines()} == EXPECTED_FILES
    assert f"{len(EXPECTED_FILES)} files listed, {len(EXPECTED_SKIPPED)} skipped" in plain.stderr
    assert "--skipped shows them" in plain.stderr

    detailed = run_cli("files", "--folder", str(root), "--skipped")
    skipped_part = detailed.stdout.split("\nskipped:\n")[1]
    lines = {line.split()[0]: line for line in skipped_part.splitlines()}
    assert set(lines) == set(EXPECTED_SKIPPED)
    for path, words in EXPECTED_SKIPPED.items():
        assert words in lines[path]


def test_files_json_and_options(tmp_path: Path) -> None:
    root = make_sample_folder(tmp_path)
    result = run_cli("files", "--folder", str(root), "--json", "--include-secrets")
    data = json.loads(result.stdout)
    assert data["folder"] == str(root.resolve())
    paths = {f["path"] for f in data["files"]}
    assert {".env", "server.pem", "id_rsa"} <= paths
    assert {"path": "main.py", "size": (root / "main.py").stat().st_size} in data["files"]
    assert {"path": "build/", "reason": "ignored by .gitignore (pattern: build/)",
            "is_dir": True, "secret": False} in data["skipped"]  # fmt: skip
    small = json.loads(run_cli("files", "--folder", str(root), "--json", "--max-file-kb", "1")
                       .stdout)  # fmt: skip
    assert "src/app.py" in {f["path"] for f in small["files"]}
    assert "big.txt" not in {f["path"] for f in small["files"]}


def test_context_prints_the_prompt_and_reports_what_it_leaves_out(tmp_path: Path) -> None:
    root = make_sample_folder(tmp_path)
    result = run_cli(
        "context", "--folder", str(root), "--select", "main.py", ".env", "--select", "src/app.py",
        "--budget", "300",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "### main.py\n```python\nimport os\n" in result.stdout
    assert "### src/app.py\n" in result.stdout
    assert "API_KEY" not in result.stdout
    assert "Not shown: .env (looks like a secret" in result.stdout
    assert "2 file(s) in full" in result.stderr and "(estimated)" in result.stderr
    assert ".env  looks like a secret" in result.stderr

    tight = json.loads(
        run_cli("context", "--folder", str(root), "--select", "main.py", "--budget", "60",
                "--json").stdout
    )  # fmt: skip
    assert tight["token_counter"] == "estimate" and tight["tokens"] <= 60
    listed = {i["path"] for i in tight["included"]} | set(tight["mapped"])
    assert listed | {i["path"] for i in tight["left_out"]} == EXPECTED_FILES


@pytest.mark.model
def test_context_counts_with_the_models_tokenizer(tmp_path: Path) -> None:
    root = make_sample_folder(tmp_path)
    result = run_cli(
        "context", "--folder", str(root), "--select", "main.py", "--model", "starter", "--json"
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["token_counter"] == "model"
    assert 0 < data["tokens"] <= 8192 and data["included"][0]["path"] == "main.py"


def test_bad_folder_and_bad_arguments_are_one_clear_line(tmp_path: Path) -> None:
    missing = run_cli("files", "--folder", str(tmp_path / "nope"))
    assert missing.returncode == 2
    assert missing.stderr == f"error: The folder {tmp_path / 'nope'} does not exist.\n"
    (tmp_path / "f.txt").write_text("x")
    a_file = run_cli("context", "--folder", str(tmp_path / "f.txt"))
    assert a_file.returncode == 2 and "is a file, not a folder" in a_file.stderr
    negative = run_cli("context", "--folder", str(tmp_path), "--budget", "-1")
    assert negative.returncode == 2 and "must be 0 or more" in negative.stderr
    assert "Traceback" not in missing.stderr + a_file.stderr + negative.stderr
