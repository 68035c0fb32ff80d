"""Read and validate a GGUF file's header without loading its weights.

llama.cpp reports a bad file with a bare "failed to load model"; reading the header ourselves lets
us say *what* is wrong (not GGUF, truncated, unsupported version) before llama.cpp ever sees it, and
gives the fit estimator and the chat-template renderer the metadata they need. Only the header and
tensor table are read (kilobytes to a few megabytes), so this is cheap even for a 20 GB model.
"""

from __future__ import annotations

import io
import math
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

from app.core.errors import ModelFileError

GGUF_MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
DEFAULT_ALIGNMENT = 32
# Arrays longer than this (token lists, merges) are skipped rather than kept: nobody needs them
# from the header, and keeping 150k strings would cost time and memory on every open.
MAX_KEPT_ARRAY = 64

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
        return str(self.metadata.get("general.architecture", "unknown"))

    @property
    def name(self) -> str:
        return str(self.metadata.get("general.name") or self.path.stem)

    def arch_value(self, key: str, default: Any = None) -> Any:
        """A per-architecture key such as `context_length` (stored as `<arch>.context_length`)."""
        return self.metadata.get(f"{self.architecture}.{key}", default)

    @property
    def chat_template(self) -> str | None:
        value = self.metadata.get("tokenizer.chat_template")
        return value if isinstance(value, str) and value.strip() else None

    @property
    def context_length(self) -> int | None:
        value = self.arch_value("context_length")
        return int(value) if value is not None else None

    @property
    def tensor_bytes(self) -> int:
        return sum(t.n_bytes for t in self.tensors)


class _Reader:
    """Bounds-checked little-endian reads; running past the end means the file is truncated."""

    def __init__(self, stream: BinaryIO, path: Path, file_size: int) -> None:
        self._stream = stream
        self._path = path
        self._file_size = file_size

    @property
    def pos(self) -> int:
        return self._stream.tell()

    def read(self, n: int) -> bytes:
        if n < 0 or self.pos + n > self._file_size:
            raise _truncated(self._path)
        data = self._stream.read(n)
        if len(data) != n:
            raise _truncated(self._path)
        return data

    def skip(self, n: int) -> None:
        if n < 0 or self.pos + n > self._file_size:
            raise _truncated(self._path)
        self._stream.seek(n, io.SEEK_CUR)

    def scalar(self, fmt: str) -> Any:
        return struct.unpack(fmt, self.read(struct.calcsize(fmt)))[0]

    def u32(self) -> int:
        return int(self.scalar("<I"))

    def u64(self) -> int:
        return int(self.scalar("<Q"))

    def string(self) -> str:
        return self.read(self.u64()).decode("utf-8", errors="replace")

    def skip_string(self) -> None:
        self.skip(self.u64())


def _truncated(path: Path) -> ModelFileError:
    return ModelFileError(
        f"{path.name} is truncated or damaged: the GGUF header runs past the end of the file. "
        "The download was probably interrupted; download or copy it again."
    )


def _read_value(r: _Reader, vtype: int, path: Path) -> Any:
    if vtype in _SCALARS:
        return r.scalar(_SCALARS[vtype])
    if vtype == _STRING:
        return r.string()
    if vtype == _ARRAY:
        elem_type = r.u32()
        count = r.u64()
        if count > MAX_KEPT_ARRAY:
            _skip_array(r, elem_type, count, path)
            return _SkippedArray(count)
        return [_read_value(r, elem_type, path) for _ in range(count)]
    raise ModelFileError(f"{path.name} is damaged: unknown GGUF value type {vtype}.")


def _skip_array(r: _Reader, elem_type: int, count: int, path: Path) -> None:
    if elem_type in _SCALARS:
        r.skip(struct.calcsize(_SCALARS[elem_type]) * count)
    elif elem_type == _STRING:
        for _ in range(count):
            r.skip_string()
    elif elem_type == _ARRAY:
        for _ in range(count):
            _skip_array(r, r.u32(), r.u64(), path)
    else:
        raise ModelFileError(f"{path.name} is damaged: unknown GGUF array type {elem_type}.")


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
    return n_elements // block_size * type_size


def read_header(path: str | Path) -> GGUFHeader:
    """Parse and validate a GGUF file's header and tensor table.

    Raises ModelFileError with a user-facing message for a missing file, a file that is not GGUF,
    an unsupported version, or a file shorter than its tensor table says it must be.
    """
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"Model file not found: {path}")
    if path.is_dir():
        raise ModelFileError(f"{path} is a folder, not a GGUF model file.")
    try:
        file_size = path.stat().st_size
        stream = path.open("rb")
    except OSError as exc:
        raise ModelFileError(f"Cannot read {path}: {exc.strerror or exc}") from exc
    with stream:
        r = _Reader(stream, path, file_size)
        magic = stream.read(4)
        if magic != GGUF_MAGIC:
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
        # Each entry takes at least 8 bytes, so counts beyond the file size are damage, not data.
        if n_tensors > file_size // 8 or n_kv > file_size // 8:
            raise ModelFileError(f"{path.name} is damaged: its GGUF header counts are impossible.")
        header = GGUFHeader(path=path, version=version, file_size=file_size, data_offset=0)
        for _ in range(n_kv):
            key = r.string()
            header.metadata[key] = _read_value(r, r.u32(), path)
        raw_tensors: list[tuple[str, tuple[int, ...], int, int]] = []
        for _ in range(n_tensors):
            name = r.string()
            n_dims = r.u32()
            if n_dims > 8:
                raise ModelFileError(f"{path.name} is damaged: tensor {name} has {n_dims} dims.")
            shape = tuple(r.u64() for _ in range(n_dims))
            raw_tensors.append((name, shape, r.u32(), r.u64()))
        alignment = int(header.metadata.get("general.alignment", DEFAULT_ALIGNMENT)) or 1
        header.data_offset = -(-r.pos // alignment) * alignment
    end = header.data_offset
    for name, shape, ggml_type, offset in raw_tensors:
        n_bytes = _tensor_bytes(shape, ggml_type, path, name)
        header.tensors.append(TensorInfo(name, shape, ggml_type, offset, n_bytes))
        end = max(end, header.data_offset + offset + n_bytes)
    if end > file_size:
        missing = end - file_size
        raise ModelFileError(
            f"{path.name} is truncated: its tensors need {end:,} bytes but the file has "
            f"{file_size:,} ({missing:,} missing). The download or copy was probably interrupted; "
            "get the file again."
        )
    return header
