"""The log file: one rotating file in the platform's log folder, set up once per process.

Both front ends call `setup_logging` at start (the CLI in `main`, the window in `run_gui`), so a
bug report can come with a log. What a user typed or what their files hold is private: it goes into
the log only through `content(text)`, which writes the text only when the user turned content
logging on (`--log-content`, or `log_content` in the settings) and otherwise writes its length.

`install_exception_hooks` routes `sys.excepthook` and `threading.excepthook` into the log, so an
error nobody caught is recorded with its traceback before anything else happens to it.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import platform
import sys
import threading
import traceback
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

import platformdirs

from app.core.errors import LeanCoderError
from app.core.storage.paths import APP_NAME

LOG_FILE_NAME = "leancoder.log"
MAX_BYTES = 2 * 1024 * 1024
BACKUP_COUNT = 5  # leancoder.log.1 ... .5: at most 12 MB of logs
LEVELS: dict[str, int] = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}
DEFAULT_LEVEL = "info"
FILE_FORMAT = "%(asctime)s %(levelname)-7s %(process)d %(threadName)s %(name)s: %(message)s"
# LeanCoder's own loggers follow the chosen level; libraries log from INFO up whatever it is, as
# some are chatty at DEBUG (qasync: a line per callback; markdown-it: per rule per render) and
# their debug lines may quote what they process (a chat message being rendered).
OWN_LOGGERS = ("app", "leancoder")

ErrorReport = Callable[[str, str], None]  # (one-line summary, formatted traceback)

log = logging.getLogger("leancoder")
_state: dict[str, object] = {"content": False, "path": None}
_handlers: list[logging.Handler] = []
_PREVIOUS = "_leancoder_previous_hook"


class LogFolderError(LeanCoderError):
    """The log folder cannot be created or written."""


def log_dir() -> Path:
    """Where logs go: under LEANCODER_DATA_DIR when set (tests, portable installs stay in one
    folder), else the platform's log folder (e.g. ~/.local/state/LeanCoder/log)."""
    override = os.environ.get("LEANCODER_DATA_DIR")
    if override:
        return Path(override) / "logs"
    return Path(platformdirs.user_log_dir(APP_NAME, appauthor=False))


def log_file() -> Path | None:
    """The file this process logs to, or None before `setup_logging` (or when it failed)."""
    path = _state["path"]
    return path if isinstance(path, Path) else None


def content_logging() -> bool:
    return _state["content"] is True


class _Content:
    """Prompt or file text for a log message: the text itself only with content logging on."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __str__(self) -> str:
        if content_logging():
            return self.text
        return f"<{len(self.text)} characters, not logged: content logging is off>"

    __repr__ = __str__


def content(text: str) -> _Content:
    """Wrap user content for a log call: `log.info("prompt: %s", content(prompt))`."""
    return _Content(text)


def messages_content(messages: Sequence[Mapping[str, Any]]) -> _Content:
    """Chat messages (system, folder context, history) for a log call, one per line, gated like
    `content`: with content logging off only their total length is written."""
    lines = [f"[{m.get('role', '?')}] {m.get('content', '')}" for m in messages]
    return _Content("\n".join(lines))


class _CurrentStderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is at the time (like logging's last-resort handler), so a
    replaced or captured stderr never leaves the handler writing to a closed stream."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


def setup_logging(
    level: str = DEFAULT_LEVEL,
    *,
    log_content: bool = False,
    folder: Path | None = None,
    max_bytes: int = MAX_BYTES,
    backup_count: int = BACKUP_COUNT,
    stderr_level: int | None = logging.WARNING,
) -> Path:
    """Log to `folder`/leancoder.log (rotating) at `level`; returns the file's path.

    Calling it again replaces what an earlier call installed (never adds a second file handler).
    `stderr_level`: also print records from this level up to stderr as bare messages (what Python
    printed before logging was configured); None for no stderr output. Raises LogFolderError when
    the folder cannot be written: callers carry on without a log file rather than refuse to run.
    """
    if level not in LEVELS:
        raise LogFolderError(f"Unknown log level {level!r}: use one of {', '.join(LEVELS)}.")
    threshold = LEVELS[level]
    root = logging.getLogger()
    stop_logging()
    _state["content"] = log_content
    root.setLevel(max(threshold, logging.INFO))
    for name in OWN_LOGGERS:
        logging.getLogger(name).setLevel(threshold)
    if stderr_level is not None:
        console = _CurrentStderr()
        console.setLevel(max(threshold, stderr_level))
        console.setFormatter(logging.Formatter("%(message)s"))
        _add(root, console)
    target = (folder or log_dir()) / LOG_FILE_NAME
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        file_handler = logging.handlers.RotatingFileHandler(
            target, maxBytes=max_bytes, backupCount=backup_count, encoding="utf-8", delay=False
        )
    except OSError as exc:
        raise LogFolderError(
            f"Cannot write the log file {target}: {exc.strerror or exc}. "
            "LeanCoder runs without one."
        ) from exc
    file_handler.setLevel(threshold)
    file_handler.setFormatter(logging.Formatter(FILE_FORMAT))
    _add(root, file_handler)
    _state["path"] = target
    from app import __version__

    log.info(
        "LeanCoder %s, Python %s on %s; log level %s, content logging %s",
        __version__, platform.python_version(), platform.platform(), level,
        "on" if log_content else "off",
    )  # fmt: skip
    log.debug("logging to %s (rotating at %d bytes, %d old files kept)", target, max_bytes,
              backup_count)  # fmt: skip
    return target


def stop_logging() -> None:
    """Remove and close what `setup_logging` installed (tests; a process that ends needs not)."""
    root = logging.getLogger()
    for handler in _handlers:
        root.removeHandler(handler)
        handler.close()
    _handlers.clear()
    _state.update(content=False, path=None)
    for name in OWN_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET)


def _add(root: logging.Logger, handler: logging.Handler) -> None:
    root.addHandler(handler)
    _handlers.append(handler)


def install_exception_hooks(on_error: ErrorReport | None = None) -> Callable[[], None]:
    """Log every uncaught exception (main thread and other threads) with its traceback, then call
    `on_error` (the window shows a dialog) and the hook that was there before (which prints the
    traceback to stderr). Returns a function that puts the previous hooks back."""
    # Installing again replaces our hooks instead of wrapping them (main() may run many times in
    # one process, as in tests): chain to what was there before the first of ours.
    previous_sys = getattr(sys.excepthook, _PREVIOUS, sys.excepthook)
    previous_thread = getattr(threading.excepthook, _PREVIOUS, threading.excepthook)

    def sys_hook(
        kind: type[BaseException], value: BaseException, tb: TracebackType | None
    ) -> None:
        if not issubclass(kind, KeyboardInterrupt):
            _record("uncaught exception", kind, value, tb, on_error)
        previous_sys(kind, value, tb)

    def thread_hook(args: threading.ExceptHookArgs) -> None:
        if args.exc_value is not None and not issubclass(args.exc_type, SystemExit):
            name = args.thread.name if args.thread is not None else "?"
            _record(f"uncaught exception in thread {name}", args.exc_type, args.exc_value,
                    args.exc_traceback, on_error)  # fmt: skip
        previous_thread(args)

    setattr(sys_hook, _PREVIOUS, previous_sys)
    setattr(thread_hook, _PREVIOUS, previous_thread)
    sys.excepthook = sys_hook
    threading.excepthook = thread_hook

    def uninstall() -> None:
        sys.excepthook = previous_sys
        threading.excepthook = previous_thread

    return uninstall


def _record(
    what: str,
    kind: type[BaseException],
    value: BaseException,
    tb: TracebackType | None,
    on_error: ErrorReport | None,
) -> None:
    log.error("%s", what, exc_info=(kind, value, tb))
    if on_error is None:
        return
    summary = f"{kind.__name__}: {value}" if str(value) else kind.__name__
    details = "".join(traceback.format_exception(kind, value, tb))
    try:
        on_error(summary, details)
    except Exception:  # a broken reporter must not hide the original error or loop
        log.exception("reporting an uncaught exception failed")
