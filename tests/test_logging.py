"""The log file: where it goes, that it rotates, what reaches it (uncaught errors, failed background
jobs, the log level), and that prompts reach it only when the user turns content logging on."""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import platformdirs
import pytest

from app.core.llm.worker import SerialWorker
from app.core.storage import logs


@pytest.fixture
def logging_restored() -> Iterator[None]:
    """setup_logging changes the root logger of this process: put it back after the test."""
    root = logging.getLogger()
    level = root.level
    yield
    logs.stop_logging()
    root.setLevel(level)


def run_app(*args: str, data: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "LEANCODER_DATA_DIR": str(data), "NO_COLOR": "1"},
    )


def log_text(data: Path) -> str:
    return (data / "logs" / logs.LOG_FILE_NAME).read_text(encoding="utf-8")


def test_log_file_is_under_the_data_dir_when_set(data_dir: Path, logging_restored: None) -> None:
    path = logs.setup_logging("info")
    assert path == data_dir / "logs" / "leancoder.log"
    assert logs.log_file() == path
    logging.getLogger("app.test").info("a line from a module")
    text = path.read_text(encoding="utf-8")
    assert "LeanCoder" in text and "log level info" in text
    assert "app.test: a line from a module" in text


def test_log_file_is_in_the_platform_log_folder_otherwise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, logging_restored: None
) -> None:
    monkeypatch.delenv("LEANCODER_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))  # where Linux keeps logs
    expected = Path(platformdirs.user_log_dir("LeanCoder", appauthor=False))
    assert logs.log_dir() == expected
    assert tmp_path in expected.parents
    path = logs.setup_logging("info")
    assert path == expected / "leancoder.log" and path.is_file()


def test_the_log_rotates_and_keeps_a_bounded_number_of_files(
    tmp_path: Path, logging_restored: None
) -> None:
    path = logs.setup_logging("info", folder=tmp_path, max_bytes=2000, backup_count=2)
    writer = logging.getLogger("app.rotation")
    for i in range(200):
        writer.info("line %03d %s", i, "x" * 80)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["leancoder.log", "leancoder.log.1", "leancoder.log.2"]
    for name in files:
        assert (tmp_path / name).stat().st_size <= 2000
    assert "line 199" in path.read_text(encoding="utf-8")
    assert "line 000" not in "".join((tmp_path / n).read_text(encoding="utf-8") for n in files)


def test_setting_up_again_replaces_the_handlers(tmp_path: Path, logging_restored: None) -> None:
    logs.setup_logging("info", folder=tmp_path / "first")
    second = logs.setup_logging("debug", folder=tmp_path / "second")
    logging.getLogger("app.again").info("once")
    assert second.read_text(encoding="utf-8").count("once") == 1
    assert "once" not in (tmp_path / "first" / "leancoder.log").read_text(encoding="utf-8")
    rotating = logging.handlers.RotatingFileHandler
    files = [h for h in logging.getLogger().handlers if isinstance(h, rotating)]
    assert [Path(h.baseFilename) for h in files] == [second]


def test_debug_is_for_leancoder_libraries_log_from_info(
    tmp_path: Path, logging_restored: None
) -> None:
    path = logs.setup_logging("debug", folder=tmp_path)
    logging.getLogger("app.core.something").debug("our own detail")
    logging.getLogger("leancoder.qt").debug("a qt debug message")
    logging.getLogger("markdown_it.rules_block").debug("entering paragraph: the user's text")
    logging.getLogger("markdown_it.rules_block").info("library info")
    text = path.read_text(encoding="utf-8")
    assert "our own detail" in text and "a qt debug message" in text
    assert "the user's text" not in text and "library info" in text


def test_an_unwritable_log_folder_is_a_clear_error(tmp_path: Path, logging_restored: None) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(logs.LogFolderError, match="Cannot write the log file"):
        logs.setup_logging("info", folder=blocker / "logs")
    assert logs.log_file() is None


def test_content_is_withheld_unless_content_logging_is_on(
    tmp_path: Path, logging_restored: None
) -> None:
    writer = logging.getLogger("app.content")
    path = logs.setup_logging("info", folder=tmp_path)
    writer.info("prompt: %s", logs.content("the secret plan"))
    writer.info("messages: %s", logs.messages_content([{"role": "user", "content": "hidden"}]))
    text = path.read_text(encoding="utf-8")
    assert "secret plan" not in text and "hidden" not in text
    assert "15 characters, not logged" in text
    logs.setup_logging("info", folder=tmp_path, log_content=True)
    writer.info("prompt: %s", logs.content("the secret plan"))
    assert "prompt: the secret plan" in path.read_text(encoding="utf-8")


def test_a_failed_background_job_reaches_the_log_and_the_reporter(
    tmp_path: Path, logging_restored: None
) -> None:
    path = logs.setup_logging("info", folder=tmp_path)
    reported: list[tuple[str, BaseException]] = []
    heard = threading.Event()

    def on_error(job: str, exc: BaseException) -> None:
        reported.append((job, exc))
        heard.set()

    worker = SerialWorker(name="test-worker", on_error=on_error)

    def unload_that_breaks() -> None:
        raise ValueError("worker-job-broke-7731")

    worker.submit(unload_that_breaks)  # nobody reads this Future
    assert heard.wait(5)
    assert worker.submit(lambda: 5).result(timeout=5) == 5  # the worker goes on
    assert worker.shutdown()
    [(job, exc)] = reported
    assert "unload_that_breaks" in job and str(exc) == "worker-job-broke-7731"
    text = path.read_text(encoding="utf-8")
    assert "background job" in text and "unload_that_breaks" in text
    assert "Traceback" in text and "ValueError: worker-job-broke-7731" in text


def test_a_job_whose_caller_reads_the_future_is_left_to_the_caller(
    tmp_path: Path, logging_restored: None
) -> None:
    path = logs.setup_logging("info", folder=tmp_path)
    reported: list[str] = []
    worker = SerialWorker(name="test-worker", on_error=lambda job, exc: reported.append(job))

    def fails() -> None:
        raise KeyError("read-by-caller")

    with pytest.raises(KeyError, match="read-by-caller"):
        worker.call(fails).result(timeout=5)
    assert worker.shutdown()
    assert reported == []
    assert "read-by-caller" not in path.read_text(encoding="utf-8")


def test_a_reporter_that_breaks_does_not_stop_the_worker(
    tmp_path: Path, logging_restored: None
) -> None:
    path = logs.setup_logging("info", folder=tmp_path)

    def broken_reporter(job: str, exc: BaseException) -> None:
        raise RuntimeError("reporter broke")

    worker = SerialWorker(name="test-worker", on_error=broken_reporter)
    worker.submit(lambda: 1 / 0)
    assert worker.submit(lambda: "alive").result(timeout=5) == "alive"
    assert worker.shutdown()
    text = path.read_text(encoding="utf-8")
    assert "ZeroDivisionError" in text and "reporter broke" in text


def test_threading_excepthook_writes_the_traceback_to_the_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, logging_restored: None
) -> None:
    path = logs.setup_logging("info", folder=tmp_path)
    chained: list[BaseException | None] = []
    # The hook that was there before ours (pytest's, here a recorder) still hears the error.
    monkeypatch.setattr(threading, "excepthook", lambda args: chained.append(args.exc_value))
    reports: list[tuple[str, str]] = []
    uninstall = logs.install_exception_hooks(lambda summary, details: reports.append((summary,
                                                                                      details)))
    try:

        def crash() -> None:
            raise RuntimeError("thread-crash-4242")

        thread = threading.Thread(target=crash, name="doomed-thread")
        thread.start()
        thread.join(5)
    finally:
        uninstall()
    text = path.read_text(encoding="utf-8")
    assert "uncaught exception in thread doomed-thread" in text
    assert "RuntimeError: thread-crash-4242" in text and "in crash" in text
    assert [str(e) for e in chained] == ["thread-crash-4242"]
    [(summary, details)] = reports
    assert summary == "RuntimeError: thread-crash-4242" and "Traceback" in details


def test_installing_the_hooks_twice_logs_an_error_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, logging_restored: None
) -> None:
    path = logs.setup_logging("info", folder=tmp_path)
    monkeypatch.setattr(threading, "excepthook", lambda args: None)
    logs.install_exception_hooks()
    uninstall = logs.install_exception_hooks()  # main() may run more than once in a process
    try:
        thread = threading.Thread(target=lambda: 1 / 0, name="twice")
        thread.start()
        thread.join(5)
    finally:
        uninstall()
    assert path.read_text(encoding="utf-8").count("ZeroDivisionError") == 1


def test_sys_excepthook_writes_an_uncaught_error_to_the_log(tmp_path: Path) -> None:
    """A real process that dies of an uncaught exception: the log has it, stderr too."""
    script = (
        "from app.core.storage import logs\n"
        "logs.setup_logging('info')\n"
        "logs.install_exception_hooks()\n"
        "def main():\n"
        "    raise LookupError('uncaught-in-main-9090')\n"
        "main()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "LEANCODER_DATA_DIR": str(tmp_path)},
    )
    assert done.returncode == 1
    assert "LookupError: uncaught-in-main-9090" in done.stderr  # the previous hook still prints
    text = log_text(tmp_path)
    assert "uncaught exception" in text
    assert "Traceback" in text and "LookupError: uncaught-in-main-9090" in text


def test_log_level_debug_takes_effect(tmp_path: Path) -> None:
    debug = run_app("--log-level", "debug", "hardware", data=tmp_path / "debug")
    assert debug.returncode == 0, debug.stderr
    text = log_text(tmp_path / "debug")
    assert " DEBUG " in text and "log level debug" in text
    assert "command: hardware" in text
    plain = run_app("hardware", data=tmp_path / "plain")
    assert plain.returncode == 0, plain.stderr
    text = log_text(tmp_path / "plain")
    assert " DEBUG " not in text and "log level info" in text
    quiet = run_app("--log-level", "error", "hardware", data=tmp_path / "quiet")
    assert quiet.returncode == 0, quiet.stderr
    assert log_text(tmp_path / "quiet") == ""


PROMPT = "Name the zebrafish-quokka-31337 colour."


@pytest.mark.model
def test_prompts_stay_out_of_the_log_by_default(tmp_path: Path) -> None:
    done = run_app("ask", "--model", "starter", "--max-tokens", "4", PROMPT, data=tmp_path)
    assert done.returncode == 0, done.stderr
    text = log_text(tmp_path)
    assert "command: ask" in text and "not logged: content logging is off" in text
    assert "zebrafish" not in text
    reply = done.stdout.strip()
    if len(reply) > 3:
        assert reply not in text


@pytest.mark.model
@pytest.mark.parametrize("how", ["setting", "flag"])
def test_prompts_are_logged_when_the_user_turns_it_on(tmp_path: Path, how: str) -> None:
    args = ["ask", "--model", "starter", "--max-tokens", "4", PROMPT]
    if how == "setting":
        tmp_path.mkdir(exist_ok=True)
        (tmp_path / "settings.json").write_text(json.dumps({"log_content": True}))
    else:
        args.insert(0, "--log-content")
    done = run_app(*args, data=tmp_path)
    assert done.returncode == 0, done.stderr
    text = log_text(tmp_path)
    assert "content logging on" in text
    assert f"ask: {PROMPT}" in text
    assert "ask: reply (" in text and "not logged" not in text
