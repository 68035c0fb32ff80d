"""Read and validate a GGUF file's header without loading its weights.

llama.cpp reports a bad file with a bare "failed to load model"; reading the header ourselves lets
us say *what* is wrong (not GGUF, truncated, unsupported version, a key of the wrong type) before
llama.cpp ever sees it, and gives the fit estimator and the chat-template renderer the metadata they
need. Only the header and tensor table are read (kilobytes to a few megabytes), so this is cheap
even for a 20 GB model.

The header is untrusted input. Every count in it is bounded by the bytes the file actually has (an
entry cannot be smaller than its encoding), strings and array nesting have fixed limits, the work
per file has a budget, and the keys LeanCoder uses are type- and range-checked (`keys.py`), so a
hostile or damaged file costs at most a few seconds and megabytes and ends in a ModelFileError.
"""

from __future__ import annotations

import io
import math
import stat
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

from app.core.errors import ModelFileError
from app.core.gguf.keys import ARCH_KEYS, GENERAL_KEYS, check_keys, checked, printable

GGUF_MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
DEFAULT_ALIGNMENT = 32
# Long arrays (token lists, merges) are skipped rather than kept: nobody needs them from the
# header, and keeping 150k strings would cost time and memory on every open. Numbers are cheap,
# so per-layer arrays (up to keys.MAX_LAYERS) are always kept.
MAX_KEPT_ARRAY = 64
MAX_KEPT_NUMBERS = 4096
MAX_KEY_BYTES = 65535  # the GGUF specification's limit
MAX_STRING_BYTES = 16 * 1024 * 1024  # a chat template is kilobytes; no value needs more
MAX_TENSOR_NAME_BYTES = 63  # llama.cpp's GGML_MAX_NAME, less its terminating zero
MAX_DIMS = 4  # GGML_MAX_DIMS
MAX_ARRAY_DEPTH = 3  # real files nest arrays at most once; llama.cpp reads no nested arrays
# Array elements and entries visited one by one (a 256k vocabulary plus its merges is ~1M).
MAX_HEADER_ITEMS = 4_000_000
INT64_MAX = 2**63 - 1

# GGUF value types -> struct format (scalars only).
_SCALARS: dict[int, str] = {
    0: "<B",  # UINT8
    1: "<b",  # INT8
    2: "<H",  # UINT16
    3: "<h",  # INT16
    4: "<I",  # UINT32
    5: "<i",  # INT32
    6: "<f",  # FLOAT32
    7: "<?",  # BOOL
    10: "<Q",  # UINT64
    11: "<q",  # INT64
    12: "<d",  # FLOAT64
}
_STRING = 8
_ARRAY = 9
_U64 = struct.Struct("<Q")
# The fewest bytes one value of each type takes: a string is at least its 8-byte length, an
# array at least its element type and count.
_MIN_BYTES = {**{t: struct.calcsize(f) for t, f in _SCALARS.items()}, _STRING: 8, _ARRAY: 12}
_MIN_KV_BYTES = 8 + 4 + 1  # key length, value type, the smallest value
_MIN_TENSOR_BYTES = 8 + 4 + 4 + 8  # name length, dims, type, offset


@dataclass(frozen=True, slots=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]
    ggml_type: int
    offset: int  # relative to the start of the data section
    n_bytes: int


@dataclass(slots=True)
class GGUFHeader:
    path: Path
    version: int
    file_size: int
    data_offset: int
    metadata: dict[str, Any] = field(default_factory=dict)
    tensors: list[TensorInfo] = field(default_factory=list)

    @property
    def architecture(self) -> str:
        value = self.value("general.architecture")
        return printable(value) if value else "unknown"

    @property
    def name(self) -> str:
        """general.name (or the file's stem), safe to print: no control characters, bounded."""
        return printable(self.value("general.name") or "") or self.path.stem

    def value(self, key: str) -> Any:
        """A general key (`general.*`, `tokenizer.*`), type- and range-checked; None if absent."""
        return checked(self.metadata, key, GENERAL_KEYS[key], self.path)

    def arch_value(self, key: str, default: Any = None) -> Any:
        """A per-architecture key such as `context_length` (stored as `<arch>.context_length`),
        type- and range-checked when LeanCoder knows the key."""
        full = f"{self.value('general.architecture')}.{key}"
        spec = ARCH_KEYS.get(key)
        value = self.metadata.get(full) if spec is None else checked(self.metadata, full, spec,
                                                                     self.path)  # fmt: skip
        return default if value is None else value

    def arch_int(self, key: str, default: int = 0) -> int:
        """A per-architecture whole number; for a per-layer list, its largest entry."""
        value = self.arch_value(key)
        if value is None:
            return default
        return max(value, default=default) if isinstance(value, list) else int(value)

    def arch_per_layer(self, key: str, n_layer: int) -> list[int] | None:
        """A per-layer key as one whole number per layer; None when absent."""
        value = self.arch_value(key)
        if value is None:
            return None
        return [int(v) for v in value] if isinstance(value, list) else [int(value)] * n_layer

    @property
    def chat_template(self) -> str | None:
        value = self.value("tokenizer.chat_template")
        return value if value and value.strip() else None

    @property
    def context_length(self) -> int | None:
        value = self.arch_value("context_length")
        return int(value) if value is not None else None

    @property
    def is_split(self) -> bool:
        """The first part of a model split into several files (the rest hold more weights)."""
        return (self.value("split.count") or 1) > 1

    @property
    def tensor_bytes(self) -> int:
        return sum(t.n_bytes for t in self.tensors)


class _Reader:
    """Bounds-checked little-endian reads; running past the end means the file is truncated.
    Also counts the items read one by one against MAX_HEADER_ITEMS."""

    def __init__(self, stream: BinaryIO, path: Path, file_size: int) -> None:
        self._stream = stream
        self.path = path
        self._file_size = file_size
        self._items = 0

    @property
    def pos(self) -> int:
        return self._stream.tell()

    @property
    def remaining(self) -> int:
        return self._file_size - self.pos

    def read(self, n: int) -> bytes:
        if n < 0 or n > self.remaining:
            raise _truncated(self.path)
        data = self._stream.read(n)
        if len(data) != n:
            raise _truncated(self.path)
        return data

    def skip(self, n: int) -> None:
        if n < 0 or n > self.remaining:
            raise _truncated(self.path)
        self._stream.seek(n, io.SEEK_CUR)

    def scalar(self, fmt: str) -> Any:
        return struct.unpack(fmt, self.read(struct.calcsize(fmt)))[0]

    def u32(self) -> int:
        return int(self.scalar("<I"))

    def u64(self) -> int:
        return int(self.scalar("<Q"))

    def string(self, limit: int, what: str) -> str:
        length = self.u64()
        if length > limit:
            raise _damaged(self.path, f"{what} is {length:,} bytes long (at most {limit:,})")
        return self.read(length).decode("utf-8", errors="replace")

    def skip_strings(self, count: int) -> None:
        """Skip `count` strings: the tight loop that vocabularies (150k tokens) go through, so
        it calls the stream directly and checks the end once (a read past it comes back short)."""
        read, seek = self._stream.read, self._stream.seek
        for _ in range(count):
            raw = read(8)
            if len(raw) != 8:
                raise _truncated(self.path)
            (length,) = _U64.unpack(raw)
            if length > MAX_STRING_BYTES:
                raise _damaged(self.path, f"a text value is {length:,} bytes long")
            seek(length, io.SEEK_CUR)
        if self.remaining < 0:
            raise _truncated(self.path)

    def count(self, n: int, min_bytes: int, what: str, one_by_one: bool = True) -> int:
        """`n` entries of at least `min_bytes` each, checked against the bytes left and (when
        they are visited one by one, unlike numbers skipped in one seek) the item budget,
        before anything loops over them."""
        if n * min_bytes > self.remaining:
            raise ModelFileError(
                f"{self.path.name} is truncated or damaged: it claims {n:,} {what}, more than "
                f"its {self._file_size:,} bytes can hold. If it was downloaded or copied, get it "
                "again."
            )
        if one_by_one:
            self._items += n
            if self._items > MAX_HEADER_ITEMS:
                raise _damaged(self.path, f"its header has more than {MAX_HEADER_ITEMS:,} entries")
        return n


def _truncated(path: Path) -> ModelFileError:
    return ModelFileError(
        f"{path.name} is truncated or damaged: the GGUF header runs past the end of the file. "
        "The download was probably interrupted; download or copy it again."
    )


def _damaged(path: Path, what: str) -> ModelFileError:
    return ModelFileError(f"{path.name} is damaged or not a usable model file: {what}.")


def _read_value(r: _Reader, vtype: int, depth: int = 0) -> Any:
    if vtype in _SCALARS:
        return r.scalar(_SCALARS[vtype])
    if vtype == _STRING:
        return r.string(MAX_STRING_BYTES, "a text value")
    if vtype == _ARRAY:
        if depth >= MAX_ARRAY_DEPTH:
            raise _damaged(r.path, f"its arrays are nested more than {MAX_ARRAY_DEPTH} deep")
        elem_type = r.u32()
        if elem_type not in _MIN_BYTES:
            raise _damaged(r.path, f"unknown GGUF array type {elem_type}")
        count = _array_count(r, elem_type)
        keep = MAX_KEPT_NUMBERS if elem_type in _SCALARS else MAX_KEPT_ARRAY
        if count > keep:
            _skip_array(r, elem_type, count, depth + 1)
            return _SkippedArray(count)
        return [_read_value(r, elem_type, depth + 1) for _ in range(count)]
    raise _damaged(r.path, f"unknown GGUF value type {vtype}")


def _skip_array(r: _Reader, elem_type: int, count: int, depth: int) -> None:
    if elem_type in _SCALARS:
        r.skip(struct.calcsize(_SCALARS[elem_type]) * count)
    elif elem_type == _STRING:
        r.skip_strings(count)
    else:
        if depth >= MAX_ARRAY_DEPTH:
            raise _damaged(r.path, f"its arrays are nested more than {MAX_ARRAY_DEPTH} deep")
        for _ in range(count):
            inner = r.u32()
            if inner not in _MIN_BYTES:
                raise _damaged(r.path, f"unknown GGUF array type {inner}")
            _skip_array(r, inner, _array_count(r, inner), depth + 1)


def _array_count(r: _Reader, elem_type: int) -> int:
    return r.count(r.u64(), _MIN_BYTES[elem_type], "array values", elem_type not in _SCALARS)


@dataclass(frozen=True, slots=True)
class _SkippedArray:
    """Stands in for a long array that was not kept; `len()` still answers."""

    count: int

    def __len__(self) -> int:
        return self.count


def _tensor_bytes(shape: tuple[int, ...], ggml_type: int, path: Path, name: str) -> int:
    try:
        block_size, type_size = GGML_QUANT_SIZES[GGMLQuantizationType(ggml_type)]
    except (ValueError, KeyError):
        raise ModelFileError(
            f"{path.name} uses tensor type {ggml_type} (tensor {name}), which this version of "
            "LeanCoder does not know. Update LeanCoder or pick another quantization."
        ) from None
    n_elements = math.prod(shape)
    if n_elements > INT64_MAX or (shape and shape[0] % block_size):
        raise _damaged(path, f"tensor {name} has an impossible shape {list(shape)}")
    return n_elements // block_size * type_size


def read_header(path: str | Path) -> GGUFHeader:
    """Parse and validate a GGUF file's header and tensor table.

    Raises ModelFileError with a user-facing message for a missing file, a file that is not GGUF,
    an unsupported version, a header key of the wrong type or range, counts the file cannot hold,
    or a file shorter than its tensor table says it must be.
    """
    path = Path(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        raise ModelFileError(f"Model file not found: {path}") from None
    except OSError as exc:
        raise ModelFileError(f"Cannot read {path}: {exc.strerror or exc}") from exc
    if stat.S_ISDIR(info.st_mode):
        raise ModelFileError(f"{path} is a folder, not a GGUF model file.")
    if not stat.S_ISREG(info.st_mode):  # a pipe or a device would block or never end
        raise ModelFileError(f"{path} is not a regular file, so it cannot be a GGUF model file.")
    try:
        stream = path.open("rb")
    except OSError as exc:
        raise ModelFileError(f"Cannot read {path}: {exc.strerror or exc}") from exc
    with stream:
        header = _parse(_Reader(stream, path, info.st_size), stream)
    check_keys(header)
    return header


def _parse(r: _Reader, stream: BinaryIO) -> GGUFHeader:
    path = r.path
    if stream.read(4) != GGUF_MAGIC:
        raise ModelFileError(
            f"{path.name} is not a GGUF model file (it lacks the GGUF signature). "
            "LeanCoder runs llama.cpp models in GGUF format (files ending in .gguf)."
        )
    version = r.u32()
    if version not in SUPPORTED_VERSIONS:
        raise ModelFileError(
            f"{path.name} is GGUF version {version}; LeanCoder reads versions 2 and 3."
        )
    n_tensors = r.u64()
    n_kv = r.u64()
    r.count(n_tensors, _MIN_TENSOR_BYTES, "tensors")
    r.count(n_kv, _MIN_KV_BYTES, "header keys")
    header = GGUFHeader(path=path, version=version, file_size=r.pos + r.remaining, data_offset=0)
    for _ in range(n_kv):
        key = r.string(MAX_KEY_BYTES, "a header key")
        if key in header.metadata:
            raise _damaged(path, f"its header key {printable(key)} appears twice")
        header.metadata[key] = _read_value(r, r.u32())
    raw: list[tuple[str, tuple[int, ...], int, int]] = []
    names: set[str] = set()
    for _ in range(n_tensors):
        name = r.string(MAX_TENSOR_NAME_BYTES, "a tensor name")
        if name in names:
            raise _damaged(path, f"tensor {printable(name)} appears twice")
        names.add(name)
        n_dims = r.u32()
        if n_dims > MAX_DIMS:
            raise _damaged(path, f"tensor {printable(name)} has {n_dims:,} dimensions")
        shape = tuple(r.u64() for _ in range(n_dims))
        raw.append((printable(name, MAX_TENSOR_NAME_BYTES), shape, r.u32(), r.u64()))
    alignment = header.value("general.alignment") or DEFAULT_ALIGNMENT
    header.data_offset = -(-r.pos // alignment) * alignment
    expected = 0  # llama.cpp requires each tensor right after the previous one, padded
    for name, shape, ggml_type, offset in raw:
        n_bytes = _tensor_bytes(shape, ggml_type, path, name)
        if offset != expected:
            raise _damaged(
                path,
                f"tensor {name} starts at byte {offset:,} of the weights, where byte "
                f"{expected:,} was expected (its tensor table is inconsistent)",
            )
        header.tensors.append(TensorInfo(name, shape, ggml_type, offset, n_bytes))
        expected += -(-n_bytes // alignment) * alignment
    end = header.data_offset + (offset + n_bytes if raw else 0)
    if end > header.file_size:
        missing = end - header.file_size
        raise ModelFileError(
            f"{path.name} is truncated or damaged: its tensors need {end:,} bytes but the file "
            f"has {header.file_size:,} ({missing:,} missing). The download or copy was probably "
            "interrupted; get the file again."
        )
    return header

