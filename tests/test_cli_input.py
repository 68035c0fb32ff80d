"""Prompts on the command line through a real `python -m app` subprocess: bytes that are not
UTF-8 in argv or a file give a clear message (exit 2), and a 2 MB prompt can be given at all
(stdin or --prompt-file) and then says it is too long for the context instead of a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BAD = b"fix this \xff\xfe please"
HUGE = ("def f(x):\n    return x * 2\n" * 80_000).encode()  # about 2 MB


def _app(*args: str | bytes, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "LC_ALL": "C.UTF-8"}
    return subprocess.run(
        [sys.executable, "-m", "app", *args], input=stdin, capture_output=True, cwd=REPO,
        env=env, timeout=240, check=False,
    )  # fmt: skip


def _clear_error(run: subprocess.CompletedProcess[bytes]) -> str:
    err = run.stderr.decode("utf-8", "replace")
    assert run.returncode == 2, err
    assert "Traceback" not in err
    return err


def test_invalid_utf8_in_argv_is_a_clear_error() -> None:
    err = _clear_error(_app("ask", BAD, "--model", "starter"))
    assert "The prompt from the command line is not UTF-8 text: byte 0xff at position 9" in err


def test_invalid_utf8_in_a_prompt_file_is_a_clear_error(tmp_path: Path) -> None:
    prompt = tmp_path / "prompt.txt"
    prompt.write_bytes(BAD)
    err = _clear_error(_app("ask", "--prompt-file", str(prompt), "--model", "starter"))
    assert f"The prompt from the file {prompt} is not UTF-8 text: byte 0xff" in err
    err = _clear_error(_app("ask", "-", "--model", "starter", stdin=BAD))
    assert "The prompt from stdin is not UTF-8 text" in err
    folder = tmp_path / "proj"
    folder.mkdir()
    err = _clear_error(
        _app("edit", "--prompt-file", str(prompt), "--folder", str(folder), "--model", "starter")
    )
    assert "is not UTF-8 text" in err


def test_prompt_sources_are_exclusive_and_required(tmp_path: Path) -> None:
    prompt = tmp_path / "p.txt"
    prompt.write_text("hi")
    err = _clear_error(_app("ask", "hi", "--prompt-file", str(prompt), "--model", "starter"))
    assert "not both" in err
    assert "--prompt-file FILE" in _clear_error(_app("ask", "--model", "starter"))
    err = _clear_error(_app("ask", "--prompt-file", str(tmp_path / "missing"), "--model", "x"))
    assert "Cannot read the prompt file" in err


@pytest.mark.model
@pytest.mark.timeout(600)
def test_a_2mb_prompt_by_stdin_or_file_is_too_long_for_the_context(tmp_path: Path) -> None:
    assert len(HUGE) > 2_000_000
    run = _app("ask", "-", "--model", "starter", "--ctx", "512", "--max-tokens", "4", stdin=HUGE)
    assert "context" in _clear_error(run)
    prompt = tmp_path / "huge.txt"
    prompt.write_bytes(HUGE)
    run = _app("ask", "--prompt-file", str(prompt), "--model", "starter", "--max-tokens", "4")
    assert "context" in _clear_error(run)


@pytest.mark.model
@pytest.mark.timeout(300)
def test_a_prompt_from_stdin_is_answered() -> None:
    run = _app(
        "ask", "-", "--model", "starter", "--max-tokens", "4", "--temperature", "0",
        "--seed", "1", "--json", stdin="Say hello. ✓".encode(),
    )  # fmt: skip
    assert run.returncode == 0, run.stderr.decode()
    assert b'"text"' in run.stdout
