"""llama.cpp's own log lines, kept in a ring buffer instead of sprayed on stderr.

A failed load can then quote the line that says why (`last_error_line`), and the fit measurement
reads the buffer sizes llama.cpp reports. The callback is installed when this module is imported,
which `app.core.llm.backend` does before any model is loaded.
"""

from __future__ import annotations

import ctypes
import logging
from collections import deque

import llama_cpp

log = logging.getLogger("leancoder.llama")

_LOG_LINES: deque[tuple[int, str]] = deque(maxlen=4000)
_partial: list[str] = []
_partial_level = [0]
# enum ggml_log_level: NONE, DEBUG, INFO, WARN, ERROR, CONT (CONT continues the previous line)
_DEBUG, _WARN, _CONT = 1, 3, 5


def _on_log(level: int, text: bytes, _user: ctypes.c_void_p) -> None:
    if level != _CONT:
        _partial_level[0] = level
    piece = text.decode("utf-8", errors="replace")
    _partial.append(piece)
    if piece.endswith("\n"):
        line = "".join(_partial).rstrip()
        _partial.clear()
        _LOG_LINES.append((_partial_level[0], line))
        if _partial_level[0] >= _WARN:
            log.debug("llama.cpp: %s", line)


_log_callback = llama_cpp.llama_log_callback(_on_log)  # kept referenced: C holds the pointer
llama_cpp.llama_log_set(_log_callback, ctypes.c_void_p(0))


def recent_log(n: int = 20, debug: bool = False) -> list[str]:
    """The last `n` lines; debug lines (one per graph input, per tensor...) only when asked, as
    they would bury the lines that explain a failure or report buffer sizes."""
    lines = [line for level, line in _LOG_LINES if debug or level != _DEBUG]
    return lines[-n:]


def clear_log() -> None:
    _LOG_LINES.clear()


def last_error_line() -> str | None:
    """The most informative recent llama.cpp line: an explicit error, else the last line."""
    for _level, line in reversed(_LOG_LINES):
        lowered = line.lower()
        if "error" in lowered or "failed" in lowered or "unable" in lowered:
            return line.strip()
    return None
