"""The GGUF metadata keys LeanCoder reads, each with the type and range it must have.

A GGUF header is data from anywhere: `context_length` can arrive as text, NaN or a list, and
`block_count` as fifty million. Every key LeanCoder uses is declared here once, and `checked`
is the only way to read one: it returns a value of the declared type within the declared range, or
raises ModelFileError with a sentence naming the file, the key and what it holds instead. Ranges
follow llama.cpp's own limits (32-bit counts, at most a few thousand layers), generously.
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from app.core.errors import ModelFileError

if TYPE_CHECKING:
    from app.core.gguf.header import GGUFHeader

Kind = Literal["int", "text", "per_layer", "flags", "array"]
INT32_MAX = 2**31 - 1
MAX_LAYERS = 4096  # llama.cpp allows 512; room for what comes next
MAX_DISPLAY_CHARS = 120


@dataclass(frozen=True, slots=True)
class KeySpec:
    """`int`: one whole number; `text`: a string; `per_layer`: a whole number or one per layer;
    `flags`: a whole number or one true/false per layer; `array`: any array (only its length is
    used)."""

    kind: Kind
    low: int = 0
    high: int = INT32_MAX
    power_of_two: bool = False


GENERAL_KEYS: dict[str, KeySpec] = {
    "general.architecture": KeySpec("text", 1, 128),  # a length range for text
    "general.name": KeySpec("text", 0, 4096),
    "general.alignment": KeySpec("int", 1, 2**24, power_of_two=True),
    "tokenizer.chat_template": KeySpec("text", 0, 4 * 1024 * 1024),
    "tokenizer.ggml.tokens": KeySpec("array"),
    # A split model's first part (llama.cpp's gguf-split) may hold few or none of the tensors.
    "split.count": KeySpec("int", 0, 2**16),
    "split.tensors.count": KeySpec("int", 0, 2**31 - 1),
}
# Stored as `<architecture>.<key>`.
ARCH_KEYS: dict[str, KeySpec] = {
    "context_length": KeySpec("int", 1, INT32_MAX),
    "block_count": KeySpec("int", 0, MAX_LAYERS),
    "embedding_length": KeySpec("int", 0, 2**20),
    "feed_forward_length": KeySpec("per_layer", 0, 2**24),
    "attention.head_count": KeySpec("per_layer", 0, 2**16),
    "attention.head_count_kv": KeySpec("per_layer", 0, 2**16),
    "attention.key_length": KeySpec("int", 0, 2**16),
    "attention.value_length": KeySpec("int", 0, 2**16),
    "attention.sliding_window": KeySpec("int", 0, INT32_MAX),
    "attention.sliding_window_pattern": KeySpec("flags", 0, MAX_LAYERS),
    "vocab_size": KeySpec("int", 0, 2**24),
    "expert_count": KeySpec("int", 0, 2**16),
    "expert_used_count": KeySpec("int", 0, 2**16),
    "expert_feed_forward_length": KeySpec("int", 0, 2**24),
}


def checked(metadata: dict[str, Any], key: str, spec: KeySpec, path: Path) -> Any:
    """The value of `key` if it has the declared type and range; None when it is absent.

    `int` -> int, `text` -> str, `per_layer` -> int or list[int], `flags` -> int or list[bool],
    `array` -> anything with a length (a list, or a long array that was skipped)."""
    if key not in metadata:
        return None
    value = metadata[key]
    if spec.kind == "int":
        return _whole(value, key, spec, path)
    if spec.kind == "text":
        if not isinstance(value, str):
            raise _wrong(path, key, "text", value)
        if not spec.low <= len(value) <= spec.high:
            raise _wrong(path, key, f"text of {spec.low:,} to {spec.high:,} characters", value)
        return value
    if spec.kind == "array":
        if isinstance(value, (str, bytes)) or not hasattr(value, "__len__"):
            raise _wrong(path, key, "an array", value)
        return value
    if isinstance(value, list):
        if spec.kind == "flags":
            return [_flag(v, key, path) for v in value]
        return [_whole(v, key, spec, path) for v in value]
    if hasattr(value, "__len__") and not isinstance(value, str):  # a skipped long array
        raise _damaged(
            path,
            f"its header key {key} holds {len(value):,} values, more than a model has layers "
            f"({MAX_LAYERS:,} at most)",
        )
    return _whole(value, key, spec, path)


def check_keys(header: GGUFHeader) -> None:
    """Every key LeanCoder reads has its type and range, and the layer and width figures are
    ones the file's weights can hold (a header cannot claim 50 million layers in 170 bytes)."""
    for key in GENERAL_KEYS:
        header.value(key)
    for key in ARCH_KEYS:
        header.arch_value(key)
    path, arch = header.path, header.value("general.architecture")
    n_layer = header.arch_int("block_count")
    split = header.is_split  # its other parts hold weights this part cannot vouch for
    n_tensors = (header.value("split.tensors.count") or 0) if split else len(header.tensors)
    if n_layer > n_tensors:
        raise _damaged(
            path,
            f"its header key {arch}.block_count says {n_layer:,} layers, but it has only "
            f"{n_tensors:,} tensors",
        )
    for key in ARCH_KEYS:
        value = header.arch_value(key)
        if isinstance(value, list) and len(value) != n_layer:
            raise _damaged(
                path, f"its header key {arch}.{key} lists {len(value):,} values for {n_layer:,} "
                f"layer{'' if n_layer == 1 else 's'}"
            )
    elements = sum(math.prod(t.shape) for t in header.tensors)
    widths = ("embedding_length", "feed_forward_length", "expert_feed_forward_length")
    for key in () if split else widths:
        width = header.arch_int(key)
        if width > elements:
            raise _damaged(
                path,
                f"its header key {arch}.{key} says {width:,}, more than all its weights hold "
                f"({elements:,} numbers)",
            )
    used, experts = header.arch_int("expert_used_count"), header.arch_int("expert_count")
    if used > experts:
        raise _damaged(
            path, f"it routes each token to {used:,} experts but has only {experts:,}"
        )



def _damaged(path: Path, what: str) -> ModelFileError:
    return ModelFileError(f"{path.name} is damaged or not a usable model file: {what}.")


def _whole(value: Any, key: str, spec: KeySpec, path: Path) -> int:
    expected = f"a whole number from {spec.low:,} to {spec.high:,}"
    if spec.power_of_two:
        expected = f"a power of two from {spec.low:,} to {spec.high:,}"
    # bool is an int in Python, but a GGUF true/false is not a count.
    if isinstance(value, bool) or not isinstance(value, int):
        raise _wrong(path, key, expected, value)
    if not spec.low <= value <= spec.high or (spec.power_of_two and value & (value - 1)):
        raise _wrong(path, key, expected, value)
    return value


def _flag(value: Any, key: str, path: Path) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise _wrong(path, key, "true/false values, one per layer", value)


def _wrong(path: Path, key: str, expected: str, value: Any) -> ModelFileError:
    return ModelFileError(
        f"{path.name} is damaged or not a usable model file: its header key {key} should be "
        f"{expected}, but it is {describe(value)}."
    )


def describe(value: Any) -> str:
    """A value as a user would read it in a message (bounded: a 4 MB string stays short)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "NaN" if math.isnan(value) else f"the fractional number {value:g}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, str):
        shown = printable(value, 40)
        return f"the text {shown!r}" if value else "empty text"
    if isinstance(value, list):
        return f"a list of {len(value):,} values"
    if hasattr(value, "__len__"):
        return f"a list of {len(value):,} values"
    return type(value).__name__


def printable(text: str, limit: int = MAX_DISPLAY_CHARS) -> str:
    """`text` without control or format characters (terminal escapes, bidi overrides), at most
    `limit` characters: header strings are shown in the terminal and the window."""
    cleaned = "".join(
        " " if unicodedata.category(c).startswith("C") else c for c in text[: limit * 4]
    )
    cleaned = " ".join(cleaned.split())
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"
