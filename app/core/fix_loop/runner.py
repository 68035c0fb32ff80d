"""Run a project's test (or lint) command: in the scratch copy, with a timeout, output capped.

The command is the project's own code and runs as the user. What bounds it: a wall-clock timeout
after which its whole process group is killed (a test runner's children and grandchildren too,
not just the runner), and an output cap: stdout and stderr are read together as they come, the
first `head` bytes and the last `tail` bytes are kept and the middle is counted, never stored, so
a test that prints gigabytes costs a few hundred KiB of memory. The tail matters most: it is where
test runners print what failed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from app.core.fix_loop.commands import CommandError, split_command
from app.core.llm.engine_types import CancelToken

DEFAULT_TIMEOUT_S = 120.0
HEAD_BYTES = 16 * 1024
TAIL_BYTES = 96 * 1024
_CHUNK = 64 * 1024
_KILL_GRACE_S = 2.0
_POLL_S = 0.1  # how soon Stop is seen while a command runs
_NEW_GROUP: int = getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)  # Windows; 0 elsewhere


@dataclass(frozen=True, slots=True)
class CommandRun:
    command: str
    exit_code: int | None  # None: it did not finish (timed out)
    output: str  # head and tail of stdout+stderr, with a note where bytes were dropped
    seconds: float
    timed_out: bool = False
    dropped_bytes: int = 0  # output bytes neither in the head nor the tail
    cancelled: bool = False  # stopped by the user before it finished

    @property
    def passed(self) -> bool:
        return self.exit_code == 0 and not self.timed_out and not self.cancelled

    def describe(self) -> str:
        if self.cancelled:
            return "stopped before it finished"
        if self.timed_out:
            return f"timed out after {self.seconds:.0f} s"
        return "passed" if self.passed else f"failed (exit code {self.exit_code})"


class _CappedOutput:
    """Keeps the first `head` and last `tail` bytes of a stream; counts the rest."""

    def __init__(self, head: int, tail: int) -> None:
        self.head_limit, self.tail_limit = head, tail
        self.head = bytearray()
        self.tail = bytearray()
        self.dropped = 0

    def add(self, data: bytes) -> None:
        room = self.head_limit - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        self.tail += data
        extra = len(self.tail) - self.tail_limit
        if extra > 0:
            del self.tail[:extra]
            self.dropped += extra

    def text(self) -> str:
        head = self.head.decode("utf-8", "replace")
        tail = self.tail.decode("utf-8", "replace")
        if self.dropped:
            return f"{head}\n[... {self.dropped:,} bytes of output left out ...]\n{tail}"
        return head + tail


def run_command(
    command: str,
    cwd: Path,
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    head_bytes: int = HEAD_BYTES,
    tail_bytes: int = TAIL_BYTES,
    what: str = "test command",
    cancel: CancelToken | None = None,
) -> CommandRun:
    """Run `command` in `cwd` and wait at most `timeout_s`; CommandError if it cannot start.

    `cancel` (the user's Stop) ends it early, its process group killed as on a timeout."""
    argv = split_command(command, what)
    env = dict(os.environ)
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # keep the scratch copy free of __pycache__ folders
    env.setdefault("CI", "1")  # test runners then neither watch files nor ask questions
    started = time.monotonic()
    try:
        process = subprocess.Popen(
            argv,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=os.name == "posix",  # its own process group, killed as one
            creationflags=_NEW_GROUP,
        )
    except FileNotFoundError:
        raise CommandError(
            f"The {what} `{command}` could not start: {argv[0]} was not found. Check the "
            "command (it runs without a shell) or install the tool."
        ) from None
    except OSError as exc:
        raise CommandError(
            f"The {what} `{command}` could not start: {exc.strerror or exc}."
        ) from None
    captured = _CappedOutput(head_bytes, tail_bytes)
    reader = threading.Thread(target=_read_all, args=(process, captured), daemon=True)
    reader.start()
    timed_out = cancelled = False
    deadline = started + timeout_s
    try:
        while process.poll() is None:
            if cancel is not None and cancel.is_set():
                cancelled = True
                break
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = True
                break
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=min(left, _POLL_S))
        if timed_out or cancelled:
            _kill_group(process)
    finally:
        if process.poll() is None:  # interrupted (KeyboardInterrupt): leave nothing running
            _kill_group(process)
    # A grandchild that left the group may still hold the pipe open: stop reading regardless.
    reader.join(_KILL_GRACE_S)
    if process.stdout is not None:
        with contextlib.suppress(OSError):
            process.stdout.close()
    reader.join(_KILL_GRACE_S)
    seconds = time.monotonic() - started
    code = None if timed_out or cancelled else process.returncode
    return CommandRun(command, code, captured.text(), seconds, timed_out, captured.dropped,
                      cancelled)  # fmt: skip


def _read_all(process: subprocess.Popen[bytes], captured: _CappedOutput) -> None:
    stream = process.stdout
    if stream is None:
        return
    with contextlib.suppress(OSError, ValueError):
        while chunk := os.read(stream.fileno(), _CHUNK):
            captured.add(chunk)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """Terminate the command and everything it started; kill what is still there after a grace."""
    if os.name != "posix":
        process.kill()
        process.wait()
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=_KILL_GRACE_S)
            if sig == signal.SIGTERM:  # the leader is gone; make sure the rest of the group is
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(process.pid, signal.SIGKILL)
            return
        except subprocess.TimeoutExpired:
            continue
