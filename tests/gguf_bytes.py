"""GGUF files written byte by byte, for headers the `gguf` package refuses to write: counts that
lie, arrays nested thousands deep, tensors that overlap or outrun the file. The layout is the GGUF
specification's (version 3, little-endian); `tests/test_gguf_hostile.py` and the fuzz pass use it.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

UINT8, UINT16, UINT32, INT32, FLOAT32, BOOL, STRING, ARRAY, UINT64 = 0, 2, 4, 5, 6, 7, 8, 9, 10
F32 = 0  # the ggml type of a float32 tensor


def gguf_string(text: str | bytes) -> bytes:
    raw = text.encode() if isinstance(text, str) else text
    return struct.pack("<Q", len(raw)) + raw


def kv_u32(key: str, value: int) -> bytes:
    return gguf_string(key) + struct.pack("<II", UINT32, value)


def kv_string(key: str, value: str | bytes) -> bytes:
    return gguf_string(key) + struct.pack("<I", STRING) + gguf_string(value)


def kv_f32(key: str, value: float) -> bytes:
    return gguf_string(key) + struct.pack("<If", FLOAT32, value)


def kv_u32_array(key: str, values: Sequence[int], claimed: int | None = None) -> bytes:
    count = len(values) if claimed is None else claimed
    body = b"".join(struct.pack("<I", v) for v in values)
    return gguf_string(key) + struct.pack("<IIQ", ARRAY, UINT32, count) + body


def kv_nested_array(key: str, depth: int) -> bytes:
    """An array holding an array holding … `depth` levels, the innermost one empty."""
    level = struct.pack("<IQ", ARRAY, 1)
    return gguf_string(key) + struct.pack("<I", ARRAY) + level * (depth - 1) + struct.pack(
        "<IQ", UINT8, 0
    )


@dataclass
class Tensor:
    name: str
    shape: tuple[int, ...]
    ggml_type: int = F32
    offset: int | None = None  # None: right after the previous one, aligned

    def n_bytes(self) -> int:
        count = 1
        for dim in self.shape:
            count *= dim
        return count * 4


@dataclass
class RawGGUF:
    kvs: list[bytes] = field(default_factory=list)
    tensors: list[Tensor] = field(default_factory=list)
    n_kv: int | None = None  # None: the true counts
    n_tensors: int | None = None
    version: int = 3
    alignment: int = 32
    data_bytes: int | None = None  # None: what the tensors need

    def to_bytes(self) -> bytes:
        out = bytearray(b"GGUF")
        n_kv = len(self.kvs) if self.n_kv is None else self.n_kv
        n_tensors = len(self.tensors) if self.n_tensors is None else self.n_tensors
        out += struct.pack("<IQQ", self.version, n_tensors, n_kv)
        for kv in self.kvs:
            out += kv
        offset = 0
        for tensor in self.tensors:
            at = offset if tensor.offset is None else tensor.offset
            out += gguf_string(tensor.name) + struct.pack("<I", len(tensor.shape))
            out += b"".join(struct.pack("<Q", d) for d in tensor.shape)
            out += struct.pack("<IQ", tensor.ggml_type, at)
            offset = at + -(-tensor.n_bytes() // self.alignment) * self.alignment
        out += b"\0" * (-len(out) % self.alignment)
        out += b"\0" * (offset if self.data_bytes is None else self.data_bytes)
        return bytes(out)

    def write(self, path: Path) -> Path:
        path.write_bytes(self.to_bytes())
        return path


def llama_model(*extra_kvs: bytes, block_count: int = 1) -> RawGGUF:
    """A small well-formed llama-architecture file (one layer, two float32 tensors)."""
    return RawGGUF(
        kvs=[
            kv_string("general.architecture", "llama"),
            kv_string("general.name", "raw"),
            kv_u32("llama.block_count", block_count),
            kv_u32("llama.context_length", 2048),
            kv_u32("llama.embedding_length", 8),
            *extra_kvs,
        ],
        tensors=[Tensor("token_embd.weight", (8, 16)), Tensor("blk.0.attn_norm.weight", (8,))],
    )
