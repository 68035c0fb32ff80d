"""The fix loop's parts without a model: the test runner (timeout, process group, capped output),
failure summaries within a token budget, test command detection and storage, the scratch copy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from app.core.fix_loop.commands import (
    FILE_NAME,
    CommandError,
    detect_test_command,
    load_commands,
    save_commands,
)
from app.core.fix_loop.failures import failing_tests, summarise
from app.core.fix_loop.runner import HEAD_BYTES, TAIL_BYTES, run_command
from app.core.fix_loop.scratch import ScratchCopy
from app.core.workspace.context import estimate_tokens
from tests.fix_support import PYTEST, copy_project, files_outside_git, folder_choice, worktrees

PY = sys.executable


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")  # a zombie has ended; only its exit status is left


@pytest.mark.skipif(os.name != "posix", reason="process groups as POSIX has them")
def test_a_hanging_command_is_killed_with_everything_it_started(tmp_path: Path) -> None:
    script = tmp_path / "hang.py"
    script.write_text(
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'])\n"
        "open('child.pid', 'w').write(str(child.pid))\n"
        "print('started', flush=True)\n"
        "time.sleep(300)\n"
    )
    started = time.monotonic()
    run = run_command(f"{PY} hang.py", tmp_path, timeout_s=2.0)
    assert time.monotonic() - started < 15
    assert run.timed_out and run.exit_code is None and not run.passed
    assert run.describe() == "timed out after 2 s" or run.describe().startswith("timed out")
    assert "started" in run.output
    child = int((tmp_path / "child.pid").read_text())
    deadline = time.monotonic() + 5
    while not _gone(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _gone(child), "the test command's child outlived the timeout"


def test_megabytes_of_output_keep_only_the_head_and_the_tail(tmp_path: Path) -> None:
    code = ("import sys\nfor n in range(400000):\n    print('line', n)\n"
            "print('the real failure: assert 1 == 2')\nsys.exit(3)\n")  # fmt: skip
    (tmp_path / "loud.py").write_text(code)
    run = run_command(f"{PY} loud.py", tmp_path, timeout_s=60)
    assert run.exit_code == 3 and run.describe() == "failed (exit code 3)"
    last = "the real failure: assert 1 == 2\n"
    total = sum(len(f"line {n}\n") for n in range(400000)) + len(last)
    assert run.dropped_bytes == total - HEAD_BYTES - TAIL_BYTES
    assert len(run.output.encode()) < HEAD_BYTES + TAIL_BYTES + 200
    assert run.output.startswith("line 0\n") and "bytes of output left out" in run.output
    assert run.output.rstrip().endswith("the real failure: assert 1 == 2")
    summary = summarise(run, estimate_tokens, 300)
    assert estimate_tokens(summary.text) <= 300
    assert summary.text.rstrip("`\n").endswith("the real failure: assert 1 == 2")


@pytest.mark.parametrize("command_length", [10, 37, 38, 39, 40, 41, 120])
def test_the_summary_fits_its_budget_whatever_the_command_length(command_length: int) -> None:
    # CI failed by one token when the checkout's path (part of the command) was a few characters
    # longer: the budget must hold for the whole text, not for its parts counted apart.
    from app.core.fix_loop.runner import CommandRun

    output = "\n".join(f"line {n}" for n in range(5000)) + "\nthe real failure: assert 1 == 2\n"
    run = CommandRun("x" * command_length, 3, output, 0.1, False, 0)
    for budget in range(60, 320, 7):
        summary = summarise(run, estimate_tokens, budget)
        assert estimate_tokens(summary.text) <= budget, (command_length, budget)
        if budget >= 120:  # room for the intro and the last line, whatever the command
            assert summary.text.rstrip("`\n").endswith("the real failure: assert 1 == 2")


def test_one_enormous_line_is_cut_to_the_budget_too(tmp_path: Path) -> None:
    run = run_command(f"{PY} -c \"print('x' * 5_000_000, end='')\"", tmp_path, timeout_s=60)
    assert run.passed and run.dropped_bytes == 5_000_000 - HEAD_BYTES - TAIL_BYTES
    summary = summarise(run, estimate_tokens, 200)
    assert estimate_tokens(summary.text) <= 200 and "xxxx" in summary.text


def test_a_command_that_does_not_exist_or_cannot_be_read_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="no-such-runner was not found"):
        run_command("no-such-runner -q", tmp_path)
    with pytest.raises(CommandError, match="cannot be read"):
        run_command('pytest "-k', tmp_path)
    with pytest.raises(CommandError, match="is empty"):
        run_command("   ", tmp_path)


def test_failing_tests_are_named_for_each_runners_style() -> None:
    output = "\n".join([
        "FAILED tests/test_a.py::test_one - assert 1 == 2",
        "ERROR tests/test_b.py::test_two",
        "--- FAIL: TestParse (0.00s)",
        "test parser::tests::empty ... FAILED",
        "  ✕ adds numbers (3 ms)",
        "FAIL: test_x (test_mod.Case)",
        "ok: test_fine",
    ])  # fmt: skip
    assert failing_tests(output) == (
        "tests/test_a.py::test_one", "tests/test_b.py::test_two", "TestParse",
        "parser::tests::empty", "adds numbers", "test_x (test_mod.Case)",
    )  # fmt: skip


def test_the_same_failure_has_the_same_signature_whatever_the_timing(tmp_path: Path) -> None:
    def failing(seconds: str, value: int) -> str:
        return (f"import sys\nprint('FAILED t.py::test_a - assert {value} == 5')\n"
                f"print('1 failed in {seconds}s at 0x7f{value}ab')\nsys.exit(1)\n")  # fmt: skip

    runs = []
    for seconds, value in (("0.12", 6), ("3.40", 6), ("0.12", 7)):
        (tmp_path / "t.py").write_text(failing(seconds, value))
        runs.append(summarise(run_command(f"{PY} t.py", tmp_path), estimate_tokens, 200))
    assert runs[0].signature == runs[1].signature
    assert runs[0].signature != runs[2].signature


def test_the_test_command_is_detected_from_the_project_files(tmp_path: Path) -> None:
    cases = {
        "py": ("pyproject.toml", "[project]\nname = 'x'\n"),
        "js": ("package.json", json.dumps({"scripts": {"test": "jest"}})),
        "go": ("go.mod", "module x\n"),
        "rust": ("Cargo.toml", "[package]\nname = 'x'\n"),
        "make": ("Makefile", "build:\n\tcc x.c\n\ntest: build\n\t./run-tests\n"),
    }
    for name, (marker, text) in cases.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / marker).write_text(text)
    assert detect_test_command(tmp_path / "py") in ("pytest -q", "python3 -m pytest -q")
    assert detect_test_command(tmp_path / "js") == "npm test"
    assert detect_test_command(tmp_path / "go") == "go test ./..."
    assert detect_test_command(tmp_path / "rust") == "cargo test"
    assert detect_test_command(tmp_path / "make") == "make test"
    (tmp_path / "none").mkdir()
    (tmp_path / "none" / "package.json").write_text('{"scripts": {"build": "tsc"}}')
    (tmp_path / "none" / "Makefile").write_text("all:\n\tcc x.c\n")
    assert detect_test_command(tmp_path / "none") is None


def test_commands_are_saved_per_folder_and_a_damaged_file_gives_the_detected_one(
    tmp_path: Path, data_dir: Path
) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    for folder in (one, two):
        folder.mkdir()
        (folder / "go.mod").write_text("module x\n")
    assert load_commands(one).test == "go test ./..." and load_commands(one).detected
    save_commands(one, "go test -run TestFast ./...", "go vet ./...")
    saved = load_commands(one)
    assert (saved.test, saved.lint, saved.detected) == ("go test -run TestFast ./...",
                                                        "go vet ./...", False)  # fmt: skip
    assert load_commands(two).test == "go test ./..."  # another folder keeps its own
    assert oct((data_dir / FILE_NAME).stat().st_mode & 0o777) == "0o600"
    with pytest.raises(CommandError, match="cannot be read"):
        save_commands(two, "go test 'oops")
    (data_dir / FILE_NAME).write_text("{not json")
    assert load_commands(one).test == "go test ./..."


def test_a_git_scratch_copy_is_a_worktree_with_the_uncommitted_work_and_goes_away(
    tmp_path: Path,
) -> None:
    folder = copy_project("add_numbers", tmp_path, git=True)
    (folder / "calc.py").write_text("def add(a, b):\n    return a + b  # uncommitted\n")
    (folder / "task.txt").unlink()  # a tracked file deleted, not committed
    (folder / "notes.md").write_text("untracked\n")
    before = files_outside_git(folder)
    choice = folder_choice(folder)
    with ScratchCopy(folder, choice.files) as scratch:
        assert scratch.kind == "git worktree"
        assert scratch.read("calc.py") == (folder / "calc.py").read_bytes()
        assert scratch.read("notes.md") == b"untracked\n"
        assert scratch.read("task.txt") is None
        assert len(worktrees(folder)) == 2
        run = run_command(PYTEST, scratch.root)
        assert run.passed, run.output
        (scratch.root / "calc.py").write_text("changed in the scratch copy\n")
        base = scratch.root.parent
    assert not base.exists() and len(worktrees(folder)) == 1
    assert files_outside_git(folder) == before


def test_a_plain_scratch_copy_holds_the_scanned_files_only(tmp_path: Path) -> None:
    folder = copy_project("word_count", tmp_path)
    (folder / "node_modules").mkdir()
    (folder / "node_modules" / "big.js").write_text("x")
    choice = folder_choice(folder)
    assert "node_modules/big.js" not in choice.files  # the scan leaves dependencies out
    with ScratchCopy(folder, choice.files) as scratch:
        assert scratch.kind == "copy"
        assert sorted(p.relative_to(scratch.root).as_posix() for p in scratch.root.rglob("*")
                      if p.is_file()) == sorted(choice.files)  # fmt: skip
        root = scratch.root
    assert not root.exists()


def test_a_folder_inside_a_repository_gets_its_own_part_of_the_worktree(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    project = copy_project("greeting", repo)
    for args in (["init", "-q"], ["add", "."], ["-c", "user.name=t", "-c", "user.email=t@e",
                                                "commit", "-q", "-m", "x"]):  # fmt: skip
        subprocess.run(["git", *args], cwd=repo, check=True)
    with ScratchCopy(project, folder_choice(project).files) as scratch:
        assert scratch.kind == "git worktree" and scratch.root.name == "greeting"
        assert scratch.read("greet.py") == (project / "greet.py").read_bytes()


def test_stop_ends_a_running_command_at_once(tmp_path: Path) -> None:
    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()
    started = time.monotonic()
    run = run_command(f"{PY} -c \"import time; time.sleep(60)\"", tmp_path, cancel=stop)
    assert time.monotonic() - started < 10
    assert run.cancelled and not run.passed and not run.timed_out
    assert run.describe() == "stopped before it finished"
