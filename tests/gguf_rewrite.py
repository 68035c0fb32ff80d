"""Copy a real GGUF file with one string in its header replaced (e.g. `tokenizer.chat_template`).

The header is rebuilt from the original bytes: every other key, the tensor table and the tensor
data stay exactly as they were; only the data section's padding is recomputed, since tensor
offsets are relative to the (aligned) start of that section. Used by tests/test_template_limits.py
to give the starter model hostile chat templates.
"""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import gguf


def _field_end(field: gguf.ReaderField) -> int:
    return int(field.offset + sum(part.nbytes for part in field.parts))


def _string_kv(key: str, value: str) -> bytes:
    k, v = key.encode(), value.encode()
    return (
        struct.pack("<Q", len(k)) + k
        + struct.pack("<I", int(gguf.GGUFValueType.STRING))
        + struct.pack("<Q", len(v)) + v
    )


class StringRewriter:
    """Reads `source`'s layout once (parsing a real header takes seconds), then writes copies."""

    def __init__(self, source: Path) -> None:
        reader = gguf.GGUFReader(source)
        self.source = source
        self._alignment = 32
        if "general.alignment" in reader.fields:
            self._alignment = int(reader.fields["general.alignment"].contents())
        self._fields = {
            name: (int(f.offset), _field_end(f))
            for name, f in reader.fields.items()
            if not name.startswith("GGUF.")
        }
        header_end = max(_field_end(f) for f in reader.fields.values())
        self._tensor_start = min((int(t.field.offset) for t in reader.tensors), default=header_end)
        tensor_end = max((_field_end(t.field) for t in reader.tensors), default=header_end)
        self._n_tensors = len(reader.tensors)
        self._data_offset = int(reader.data_offset)
        with source.open("rb") as src:
            self._raw = src.read(tensor_end)

    def write(self, target: Path, key: str, value: str) -> Path:
        """`target`: the source with string key `key` set to `value` (replaced, or added)."""
        raw = self._raw
        n_kv = len(self._fields)
        if key in self._fields:
            start, end = self._fields[key]
            body = raw[24:start] + _string_kv(key, value) + raw[end:]
        else:
            cut = self._tensor_start
            body = raw[24:cut] + _string_kv(key, value) + raw[cut:]
            n_kv += 1
        header = raw[:8] + struct.pack("<QQ", self._n_tensors, n_kv) + body
        padding = (-len(header)) % self._alignment
        with self.source.open("rb") as src, target.open("wb") as out:
            out.write(header + b"\0" * padding)
            src.seek(self._data_offset)
            shutil.copyfileobj(src, out, 16 * 1024 * 1024)
        return target
