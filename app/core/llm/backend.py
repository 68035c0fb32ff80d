"""The thin layer over llama-cpp-python that its high-level `Llama` class does not offer.

- llama.cpp's own log lines are kept in a ring buffer instead of sprayed on stderr, so a failed load
  can quote the line that says why.
- `Llama.__init__` builds `llama_model_params` itself and exposes no load-progress callback nor
  tensor buffer-type overrides (the field is declared as an untyped pointer and never set).
  `model_params_hook` wraps the params factory for the duration of one load so those fields can be
  filled: the overrides are how MoE expert tensors stay in host memory while attention goes to the
  GPU (llama.cpp's `-ot`/`--n-cpu-moe`). Loads are serialized by a lock, so the temporary wrap never
  leaks into another load.
- `Llama.__init__` also compiles every chat template in the GGUF metadata with its own unbounded
  Jinja environment, even when given a `chat_format`, and Jinja folds constants while compiling
  (`{{ 9**(9**9) }}` never returns). LeanCoder renders prompts itself under limits
  (`app.core.llm.chat_template`), so during a load the formatter class is swapped for one that
  keeps nothing and compiles nothing.
- Token pieces are decoded with a buffer large enough for any token and memoized: the vocabulary
  never changes while a model is loaded, and this is on the per-token path.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import llama_cpp
from llama_cpp import llama_chat_format
from llama_cpp import llama_cpp as llama_api

log = logging.getLogger("leancoder.llama")

_LOG_LINES: deque[tuple[int, str]] = deque(maxlen=4000)
_partial: list[str] = []
_partial_level = [0]
_LOAD_LOCK = threading.Lock()
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


ProgressFn = Callable[[float], bool]


class _TensorBuftOverride(ctypes.Structure):
    """`struct llama_model_tensor_buft_override { const char * pattern; ggml_backend_buffer_type_t
    buft; }` (llama.h); llama-cpp-python does not declare it."""

    _fields_ = (("pattern", ctypes.c_char_p), ("buft", ctypes.c_void_p))


def _override_array(overrides: Sequence[tuple[str, int]]) -> ctypes.Array[_TensorBuftOverride]:
    """A NULL-terminated array: llama.cpp reads until the entry whose pattern is NULL."""
    array = (_TensorBuftOverride * (len(overrides) + 1))()
    for i, (pattern, buft) in enumerate(overrides):
        array[i].pattern = pattern.encode()
        array[i].buft = buft
    return array


def refuse_chat_completion(*_args: Any, **_kwargs: Any) -> Any:
    """The chat handler given to `Llama`: its own chat formatting is never the one to use."""
    raise RuntimeError(
        "LeanCoder renders prompts with its own bounded chat template "
        "(app.core.llm.chat_template); Llama.create_chat_completion is not used"
    )


class _UncompiledChatFormatter:
    """Takes the place of `llama_chat_format.Jinja2ChatFormatter` while a model loads."""

    def __init__(self, *_args: Any, **_kwargs: Any) -> None:
        pass  # the template is not compiled, nor kept

    def to_chat_handler(self) -> Callable[..., Any]:
        return refuse_chat_completion


@contextlib.contextmanager
def model_params_hook(
    progress: ProgressFn | None, buffer_overrides: Sequence[tuple[str, int]] = ()
) -> Iterator[None]:
    """Within this block, `Llama(...)` loads with our progress callback and buffer overrides.

    `progress(fraction)` returns False to abort the load (llama.cpp then fails the load cleanly).
    `buffer_overrides` are (regex over tensor names, ggml buffer-type pointer) pairs; the first
    match places a tensor (see `app.core.llm.devices.cpu_buffer_type`).
    Within it, `Llama` also compiles none of the file's chat templates (see the module notes).
    """
    with _LOAD_LOCK:
        original = llama_api.llama_model_default_params
        original_formatter = llama_chat_format.Jinja2ChatFormatter
        keep_alive: list[Any] = []

        def patched() -> Any:
            params = original()
            if buffer_overrides:
                array = _override_array(buffer_overrides)
                keep_alive.append(array)  # llama.cpp reads it during the load only
                params.tensor_buft_overrides = ctypes.cast(array, ctypes.c_void_p)
            if progress is not None:

                def on_progress(fraction: float, _user: ctypes.c_void_p) -> bool:
                    try:
                        return bool(progress(float(fraction)))
                    except Exception:
                        log.exception("load progress callback failed")
                        return True

                c_callback = llama_cpp.llama_progress_callback(on_progress)
                keep_alive.append(c_callback)
                params.progress_callback = c_callback
            return params

        llama_api.llama_model_default_params = patched
        llama_chat_format.Jinja2ChatFormatter = _UncompiledChatFormatter  # type: ignore[misc,assignment]
        try:
            yield
        finally:
            llama_api.llama_model_default_params = original
            llama_chat_format.Jinja2ChatFormatter = original_formatter  # type: ignore[misc]


class TokenPieces:
    """Memoized token -> bytes (special tokens rendered, so thinking markers are visible)."""

    def __init__(self, vocab: Any) -> None:
        self._vocab = vocab
        self._cache: dict[int, bytes] = {}
        self._buffer = ctypes.create_string_buffer(256)

    def __call__(self, token: int) -> bytes:
        piece = self._cache.get(token)
        if piece is None:
            n = llama_cpp.llama_token_to_piece(self._vocab, token, self._buffer, 256, 0, True)
            if n < 0:  # piece longer than the buffer: ask again with the size it needs
                big = ctypes.create_string_buffer(-n)
                n = llama_cpp.llama_token_to_piece(self._vocab, token, big, -n, 0, True)
                piece = big.raw[:n]
            else:
                piece = self._buffer.raw[:n]
            self._cache[token] = piece
        return piece


def build_sampler(llm: Any, sampling: Any, logit_bias: dict[int, float] | None = None) -> Any:
    """The sampler chain `Llama._init_sampler` builds, with an optional native logit bias first.

    Filler suppression runs as llama.cpp's own logit-bias sampler: a Python logits processor would
    copy the whole vocabulary through numpy on every token, which halved the starter model's speed.
    """
    from llama_cpp import _internals as internals

    sampler = internals.LlamaSampler()  # type: ignore[no-untyped-call]
    n_vocab = llm.n_vocab()
    if logit_bias:
        sampler.add_logit_bias(n_vocab, logit_bias)
    sampler.add_penalties(
        n_vocab=n_vocab,
        penalty_last_n=llm.last_n_tokens_size,
        penalty_repeat=sampling.repeat_penalty,
        penalty_freq=0.0,
        penalty_present=0.0,
    )
    if sampling.temperature <= 0.0:
        sampler.add_greedy()  # type: ignore[no-untyped-call]
    else:
        sampler.add_top_k(sampling.top_k)
        sampler.add_typical(1.0, 1)
        sampler.add_top_p(sampling.top_p, 1)
        sampler.add_min_p(sampling.min_p, 1)
        sampler.add_temp(sampling.temperature)
        sampler.add_dist(llm._seed)
    return sampler


def top_token(llm: Any) -> int:
    """The highest-logit token of the last evaluated position, read in place (no copy)."""
    import numpy as np

    logits = llama_cpp.llama_get_logits_ith(llm._ctx.ctx, -1)
    return int(np.argmax(np.ctypeslib.as_array(logits, shape=(llm.n_vocab(),))))
