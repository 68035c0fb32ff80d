"""What `llama_cpp.Llama.__init__` does not let a caller choose, set for the length of one load.

- `Llama.__init__` builds `llama_model_params` itself and exposes no load-progress callback nor
  tensor buffer-type overrides (the field is declared as an untyped pointer and never set).
  `model_params_hook` wraps the params factory for the duration of one load so those fields can be
  filled: the overrides are how MoE expert tensors stay in host memory while attention goes to the
  GPU (llama.cpp's `-ot`/`--n-cpu-moe`). Loads are serialized by a lock, so the temporary wrap never
  leaks into another load.
- `Llama.__init__` turns flash attention fully on or fully off (`flash_attn`), where llama.cpp's
  own default is "auto": on where the backend supports it for the model, off otherwise. Within a
  load the context is created with "auto", as llama-server and llama-bench create theirs:
  measured on the CPU build, prompts evaluate about 8% faster with it and decoding is the same
  (bench/RESULTS.md, issue #19), and a model or device without support still loads. The memory
  fit counts on it: `app.core.fit.estimate.FLASH_ATTENTION` says which way every load goes (read
  at each load), and a load where llama.cpp turned it off is logged as a warning, since the
  estimate then leaves out the attention scores.
- `Llama.__init__` also compiles every chat template in the GGUF metadata with its own unbounded
  Jinja environment, even when given a `chat_format`, and Jinja folds constants while compiling
  (`{{ 9**(9**9) }}` never returns). LeanCoder renders prompts itself under limits
  (`app.core.llm.chat_template`), so during a load the formatter class is swapped for one that
  keeps nothing and compiles nothing.

Only `app.core.llm.backend.LlamaBackend.load` uses this module.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import llama_cpp
import llama_cpp._internals as llama_internals
from llama_cpp import llama_chat_format
from llama_cpp import llama_cpp as llama_api

from app.core.fit import estimate as fit_estimate
from app.core.llm.llama_log import recent_log

log = logging.getLogger("leancoder.llama")

_LOAD_LOCK = threading.Lock()

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


def _flash_attention_turned_off(lines: Sequence[str]) -> bool:
    """Whether llama.cpp's log of the context just created says "auto" found no support: only
    the lines after its `flash_attn = ...` setting count, so an earlier load's never do."""
    starts = [i for i, line in enumerate(lines) if "llama_context: flash_attn" in line]
    recent = lines[starts[-1] :] if starts else lines
    return any("Flash Attention not supported" in line for line in recent)


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

        original_context = llama_internals.LlamaContext

        def context_with_auto_flash_attention(*args: Any, **kwargs: Any) -> Any:
            params = kwargs.get("params")
            if params is not None:
                params.flash_attn_type = (
                    llama_cpp.LLAMA_FLASH_ATTN_TYPE_AUTO
                    if fit_estimate.FLASH_ATTENTION
                    else llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
                )
            context = original_context(*args, **kwargs)
            if fit_estimate.FLASH_ATTENTION and _flash_attention_turned_off(recent_log(400)):
                log.warning(
                    "llama.cpp runs this model without flash attention: its compute buffer also "
                    "holds the attention scores, which the memory estimate leaves out"
                )
            return context

        llama_api.llama_model_default_params = patched
        llama_chat_format.Jinja2ChatFormatter = _UncompiledChatFormatter  # type: ignore[misc,assignment]
        llama_internals.LlamaContext = context_with_auto_flash_attention  # type: ignore[misc,assignment]
        try:
            yield
        finally:
            llama_api.llama_model_default_params = original
            llama_chat_format.Jinja2ChatFormatter = original_formatter  # type: ignore[misc]
            llama_internals.LlamaContext = original_context  # type: ignore[misc]
