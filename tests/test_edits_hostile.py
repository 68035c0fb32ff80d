"""Edits that never cost a user data (issue #10 item 7): real folders, the real CLI, real kill -9.

Read-only files are refused by their mode bits (these tests run as root, which ignores them) and,
where `setpriv` can drop to an unprivileged user, once more as that user through `leancoder apply`.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from app.core.edits import ReadOnlyFileError, apply_reply, undo_last
from app.core.edits.fsio import TEMP_SUFFIX, temp_path
from app.core.edits.manifest import MANIFEST, ChangeSet, folder_store

NOBODY = 65534


def _block(path: str, search: str, replace: str) -> str:
    return f"{path}\n```\n<<<<<<< SEARCH\n{search}=======\n{replace}>>>>>>> REPLACE\n```\n"


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        capture_output=True, text=True, timeout=120, env=env, check=False,
    )  # fmt: skip


@pytest.fixture
def project(tmp_path: Path, data_dir: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    return folder


# Read-only files ---------------------------------------------------------------------------------


def test_read_only_file_is_refused_by_mode_bits_and_written_only_with_the_override(
    project: Path,
) -> None:
    locked = project / "locked.py"
    locked.write_text("x = 1\n")
    locked.chmod(0o444)
    reply = _block("locked.py", "x = 1\n", "x = 2\n")
    with pytest.raises(ReadOnlyFileError) as caught:
        apply_reply(project, reply)
    assert "locked.py" in str(caught.value) and caught.value.files == ["locked.py"]
    assert locked.read_text() == "x = 1\n"
    report = apply_reply(project, reply, overwrite_read_only=True)
    assert report.result is not None and report.result.modified == ["locked.py"]
    assert locked.read_text() == "x = 2\n"
    assert stat.S_IMODE(locked.stat().st_mode) == 0o444  # the permissions stay
    undo_last(project)
    assert locked.read_text() == "x = 1\n" and stat.S_IMODE(locked.stat().st_mode) == 0o444


def test_cli_refuses_a_read_only_file_and_names_it(project: Path, tmp_path: Path) -> None:
    (project / "ro.txt").write_text("old\n")
    (project / "ro.txt").chmod(0o444)
    reply = tmp_path / "reply.txt"
    reply.write_text(_block("ro.txt", "old\n", "new\n") + "\nDELETE FILE ro.txt\n")
    done = _cli("apply", "--folder", str(project), "--reply", str(reply), "--yes")
    assert done.returncode == 2
    assert "ro.txt" in done.stderr and "--overwrite-read-only" in done.stderr
    assert "Traceback" not in done.stderr
    assert (project / "ro.txt").read_text() == "old\n"


def _can_drop_privileges() -> bool:
    setpriv = shutil.which("setpriv")
    if os.geteuid() != 0 or setpriv is None:
        return False
    probe = subprocess.run(
        [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", sys.executable,
         "-c", "import app.core.edits"],
        capture_output=True, timeout=60, check=False, cwd=str(Path(__file__).parents[1]),
    )  # fmt: skip
    return probe.returncode == 0


def test_cli_as_unprivileged_user_refuses_a_read_only_file() -> None:
    if not _can_drop_privileges():
        pytest.skip("needs root, setpriv and a Python that user 65534 can run")
    base = Path(tempfile.mkdtemp(prefix="leancoder-nobody-"))  # pytest's tmp_path is root-only
    try:
        base.chmod(0o755)
        _as_nobody(base / "nobody")
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _as_nobody(home: Path) -> None:
    folder = home / "project"
    folder.mkdir(parents=True)
    (folder / "ro.txt").write_text("old\n")
    (home / "reply.txt").write_text(_block("ro.txt", "old\n", "new\n"))
    for path in (home, folder, folder / "ro.txt", home / "reply.txt"):
        os.chown(path, NOBODY, NOBODY)
    (folder / "ro.txt").chmod(0o444)
    env = dict(os.environ, LEANCODER_DATA_DIR=str(home / "data"), HOME=str(home))
    command = [shutil.which("setpriv") or "setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}",
               "--clear-groups", sys.executable, "-m", "app", "apply", "--folder", str(folder),
               "--reply", str(home / "reply.txt")]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env,
                          cwd=str(Path(__file__).parents[1]), check=False)  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "ro.txt" in done.stderr and "read-only" in done.stderr
    assert (folder / "ro.txt").read_text() == "old\n"
    done = subprocess.run([*command, "--overwrite-read-only"], capture_output=True, text=True,
                          timeout=120, env=env, cwd=str(Path(__file__).parents[1]),
                          check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (folder / "ro.txt").read_text() == "new\n"


# Symbolic links ----------------------------------------------------------------------------------


def test_delete_file_on_a_symlink_removes_the_link_never_its_target(
    project: Path, tmp_path: Path
) -> None:
    (project / "real.py").write_text("keep me\n")
    (project / "inside.py").symlink_to("real.py")
    outside = tmp_path / "outside.txt"
    outside.write_text("not yours\n")
    (project / "away.txt").symlink_to(outside)
    reply = tmp_path / "reply.txt"
    reply.write_text("DELETE FILE inside.py\n\nDELETE FILE away.txt\n")
    done = _cli("apply", "--folder", str(project), "--reply", str(reply), "--yes", "--json")
    assert done.returncode == 0, done.stderr
    assert not os.path.lexists(project / "inside.py")
    assert not os.path.lexists(project / "away.txt")
    assert (project / "real.py").read_text() == "keep me\n"
    assert outside.read_text() == "not yours\n"
    done = _cli("undo", "--folder", str(project))
    assert done.returncode == 0, done.stderr
    assert os.readlink(project / "inside.py") == "real.py"
    assert os.readlink(project / "away.txt") == str(outside)


def test_an_edit_through_a_link_out_of_the_folder_is_refused(project: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.py"
    outside.write_text("x = 1\n")
    (project / "link.py").symlink_to(outside)
    report = apply_reply(project, _block("link.py", "x = 1\n", "x = 2\n"))
    assert report.proposal.refused and "outside the folder" in report.proposal.refused[0].reason
    assert outside.read_text() == "x = 1\n"


# Encodings ---------------------------------------------------------------------------------------


def test_utf8_file_with_a_stray_byte_keeps_it_and_gets_new_text_in_utf8(
    project: Path, tmp_path: Path
) -> None:
    original = "name = 'café'\n".encode() + b"blob = b'\xff'\n" + b"x = 1\n"
    (project / "mixed.py").write_bytes(original)
    reply = tmp_path / "reply.txt"
    reply.write_text(_block("mixed.py", "x = 1\n", "x = 'über'\n"), encoding="utf-8")
    done = _cli("apply", "--folder", str(project), "--reply", str(reply))
    assert done.returncode == 0, done.stderr
    expected = "name = 'café'\n".encode() + b"blob = b'\xff'\n" + "x = 'über'\n".encode()
    assert (project / "mixed.py").read_bytes() == expected


def test_failed_block_on_a_file_with_stray_bytes_reports_without_a_traceback(
    project: Path, tmp_path: Path
) -> None:
    (project / "odd.py").write_bytes("é = 1\n".encode() + b"def handler(\xfe):\n    return 1\n")
    reply = tmp_path / "reply.txt"
    reply.write_text(_block("odd.py", "def handler(x):\n    return 2\n", "pass\n"))
    for extra in ((), ("--json",)):
        done = _cli("apply", "--folder", str(project), "--reply", str(reply), *extra)
        assert done.returncode == 1, done.stderr
        assert "Traceback" not in done.stderr and "handler" in done.stdout
    assert (project / "odd.py").read_bytes().count(b"\xfe") == 1


def test_latin1_file_stays_latin1(project: Path) -> None:
    (project / "old.txt").write_bytes(b"caf\xe9\nend\n")
    apply_reply(project, _block("old.txt", "end\n", "fin\u00e9\n"))
    assert (project / "old.txt").read_bytes() == b"caf\xe9\nfin\xe9\n"


# Damaged undo records --------------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["{not json", '{"id": 5}', "", '{"files": "x"}'])
def test_damaged_undo_manifest_is_reported_with_where_the_backup_is(
    project: Path, tmp_path: Path, damage: str
) -> None:
    (project / "a.py").write_text("a = 1\n")
    report = apply_reply(project, _block("a.py", "a = 1\n", "a = 2\n"))
    assert report.result is not None and report.result.change_set is not None
    record = folder_store(project) / report.result.change_set
    (record / MANIFEST).write_text(damage)
    done = _cli("undo", "--folder", str(project))
    assert done.returncode == 2
    assert "damaged" in done.stderr and str(record / "files") in done.stderr
    assert "Nothing to undo" not in done.stderr and "Traceback" not in done.stderr
    assert (record / "files" / "0.orig").read_text() == "a = 1\n"
    assert (project / "a.py").read_text() == "a = 2\n"


def test_manifest_naming_a_backup_outside_its_folder_is_damaged(project: Path) -> None:
    (project / "a.py").write_text("a = 1\n")
    report = apply_reply(project, _block("a.py", "a = 1\n", "a = 2\n"))
    assert report.result is not None and report.result.change_set is not None
    manifest = folder_store(project) / report.result.change_set / MANIFEST
    data = json.loads(manifest.read_text())
    data["files"][0]["backup"] = "../../../../etc/passwd"
    manifest.write_text(json.dumps(data))
    with pytest.raises(Exception, match="damaged"):
        undo_last(project)
    assert (project / "a.py").read_text() == "a = 2\n"


# kill -9 in the middle of a large apply ---------------------------------------------------------

FILES = 10_000


def _big_project(base: Path) -> tuple[Path, str]:
    folder = base / "big"
    folder.mkdir()
    parts = []
    for i in range(FILES):
        (folder / f"f{i:05d}.txt").write_text(f"value = {i}\n")
        parts.append(_block(f"f{i:05d}.txt", f"value = {i}\n", f"value = {i + 1}\n"))
    for i in range(FILES // 2, FILES // 2 + 20):
        parts.append(_block(f"d{i}/deep/new.txt", "", "hello\n"))  # sorts first
    return folder, "\n".join(parts)


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*")
            if p.is_file()}  # fmt: skip


@pytest.mark.parametrize("recover_with", ["undo", "apply", "start"])
def test_kill_9_during_a_10k_file_apply_is_cleaned_up_by_the_next_undo_apply_or_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, recover_with: str
) -> None:
    # fsync on tmpfs is cheap: the apply is slow enough to kill midway, fast enough for a test.
    shm = Path("/dev/shm")
    base = Path(os.environ.get("TMPDIR_FAST", shm if shm.is_dir() else tmp_path))
    work = base / f"leancoder-kill-{os.getpid()}-{recover_with}"
    work.mkdir()
    try:
        _kill_and_recover(work, monkeypatch, recover_with)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _kill_and_recover(work: Path, monkeypatch: pytest.MonkeyPatch, recover_with: str) -> None:
    data = work / "data"
    monkeypatch.setenv("LEANCODER_DATA_DIR", str(data))
    folder, reply_text = _big_project(work)
    before = _snapshot(folder)
    reply = work / "reply.txt"
    reply.write_text(reply_text)
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "apply", "--folder", str(folder), "--reply", str(reply)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    # Progress: the journal is saved and the apply has written past the first folder it creates.
    first_created = folder / f"d{FILES // 2}" / "deep" / "new.txt"
    deadline = time.monotonic() + 240
    try:
        while not first_created.exists():
            assert proc.poll() is None, "the apply finished before it could be killed"
            assert time.monotonic() < deadline, "the apply made no progress"
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    store = folder_store(folder)
    (change_set_dir,) = [p for p in store.iterdir() if p.is_dir()]
    change_set = ChangeSet.load(change_set_dir / MANIFEST)
    assert change_set.state == "applying"
    # What a kill between a temporary file's write and its rename leaves behind:
    temp_path(folder / "f09999.txt", change_set.tag).write_text("half")
    assert _snapshot(folder) != before
    if recover_with == "undo":
        done = _cli("undo", "--folder", str(folder), env=dict(os.environ))
        assert done.returncode == 0, done.stderr
    elif recover_with == "start":  # what the window does at start, for every folder
        from app.ui.application import _recover_interrupted_edits

        said: list[str] = []

        class StatusBar:  # the window's status bar, as far as the start-up check uses it
            def showMessage(self, message: str, _ms: int) -> None:
                said.append(message)

        class Window:
            def statusBar(self) -> StatusBar:
                return StatusBar()

        _recover_interrupted_edits(Window())  # type: ignore[arg-type]
        assert len(said) == 1 and str(folder) in said[0]
    else:
        later = work / "later.txt"
        later.write_text(_block("f00000.txt", "value = 0\n", "value = 100\n"))
        done = _cli("apply", "--folder", str(folder), "--reply", str(later), env=dict(os.environ))
        assert done.returncode == 0, done.stderr
        assert "interrupted" in done.stderr
        before["f00000.txt"] = b"value = 100\n"
    after = _snapshot(folder)
    assert after == before
    assert not list(folder.rglob(f"*{TEMP_SUFFIX}"))
    assert not [p for p in folder.iterdir() if p.is_dir()]  # the created folders are gone
    assert not change_set_dir.exists()


# The fuzzy search is bounded -------------------------------------------------------------------

BIG_LINES = 20_000
# Measured on 2 shared cores: 1.4 s (dissimilar) and 5 s (look-alike places) quiet, 4 s and 9.6 s
# at load average 8; it was 62 s before the bounds. Generous for a busy CI machine.
FUZZY_SECONDS = 30.0


def _twenty_thousand_lines(project: Path, repetitive: bool) -> list[str]:
    if repetitive:
        lines = [f"    result_{i % 7} = handler_{i % 5}(request, limit={i % 3})"
                 for i in range(BIG_LINES)]  # fmt: skip
    else:
        lines = [f"    value_{i % 97} = compute(item_{i}, factor={i % 13})  # step {i}"
                 for i in range(BIG_LINES)]  # fmt: skip
    (project / "big.py").write_text("\n".join(lines) + "\n")
    return lines


def test_five_failing_blocks_against_a_20k_line_file_finish_in_seconds(project: Path) -> None:
    _twenty_thousand_lines(project, repetitive=False)
    blocks = []
    for b in range(5):
        search = "".join(f"    totally_{b}_{k} = unknown_call(arg_{k}, other={k})\n"
                         for k in range(8))  # fmt: skip
        blocks.append(_block("big.py", search, "    x = 1\n"))
    started = time.perf_counter()
    report = apply_reply(project, "\n".join(blocks), dry_run=True)
    seconds = time.perf_counter() - started
    assert seconds < FUZZY_SECONDS
    assert len(report.proposal.refused) == 5
    assert all("not in the file" in b.reason and b.closest for b in report.proposal.refused)


def test_a_search_similar_to_thousands_of_places_is_refused_in_seconds(project: Path) -> None:
    lines = _twenty_thousand_lines(project, repetitive=True)
    blocks = []
    for b in range(5):
        search = "".join(line.replace("request", "reqest") + "\n"
                         for line in lines[100 + 7 * b : 108 + 7 * b])  # fmt: skip
        blocks.append(_block("big.py", search, "    x = 1\n"))
    started = time.perf_counter()
    report = apply_reply(project, "\n".join(blocks), dry_run=True)
    assert time.perf_counter() - started < FUZZY_SECONDS
    assert len(report.proposal.refused) == 5  # never a guess between look-alike places
    assert not report.proposal.files


def test_a_misremembered_search_still_applies_in_a_20k_line_file(project: Path) -> None:
    lines = _twenty_thousand_lines(project, repetitive=False)
    search = "".join(line + "\n" for line in lines[12_000:12_006]).replace("compute", "computr")
    report = apply_reply(project, _block("big.py", search, "    done = True\n"))
    assert [b.method for b in report.proposal.blocks] == ["fuzzy"]
    text = (project / "big.py").read_text().splitlines()
    assert text[12_000] == "    done = True" and len(text) == BIG_LINES - 5


# A secret hidden from the model is never replaced by the note that hid it ---------------------


def test_the_redaction_note_matches_what_the_context_writes() -> None:
    from app.core.edits.safety import REDACTION_NOTE
    from app.core.workspace.secrets import REDACTED

    assert REDACTED.startswith(REDACTION_NOTE)


def test_a_whole_file_written_back_with_the_redaction_note_is_refused(project: Path) -> None:
    from app.core.edits import propose
    from app.core.workspace.context import build_context

    secret = 'AWS_KEY = "AKIAIOSFODNN7EXAMPLE"\n'
    settings = project / "settings.py"
    settings.write_text("DEBUG = True\n" + secret + "NAME = 'demo'\n")
    context = build_context(project, ["settings.py"], ["settings.py"], 10_000)
    assert "AKIAIOSFODNN7EXAMPLE" not in context.text and context.redacted
    shown = context.text[context.text.index("DEBUG = True") :].split("NAME = 'demo'")[0]
    # What a model does with the file it was shown: rewrites it whole, note and all.
    reply = f"settings.py\n```python\n{shown}NAME = 'renamed'\n```\n"
    proposal = propose(project, reply)
    assert not proposal.files
    (block,) = proposal.blocks
    assert "hidden because it holds a secret" in block.reason
    search_replace = _block("settings.py", "NAME = 'demo'\n", "NAME = 'renamed'\n")
    assert [c.path for c in propose(project, search_replace).files] == ["settings.py"]
    assert settings.read_text().count("AKIAIOSFODNN7EXAMPLE") == 1
