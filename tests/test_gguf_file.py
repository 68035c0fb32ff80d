"""GGUF header reading on the real starter model, and the clear errors for bad files."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from app.core.errors import ModelFileError
from app.core.gguf.header import read_header


def test_reads_real_header(starter_path: Path) -> None:
    header = read_header(starter_path)
    assert header.version == 3
    assert header.architecture == "llama"
    assert header.context_length == 8192
    assert header.arch_value("block_count") == 30
    assert header.chat_template is not None and "<|im_start|>" in header.chat_template
    assert len(header.tensors) > 100
    # Weights plus header account for the whole file (up to alignment padding).
    assert header.data_offset + header.tensor_bytes <= header.file_size
    assert header.file_size - header.data_offset - header.tensor_bytes < 32 * len(header.tensors)
    assert len(header.metadata["tokenizer.ggml.tokens"]) == 49152


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="not found"):
        read_header(tmp_path / "nope.gguf")


def test_folder_is_not_a_model(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="folder"):
        read_header(tmp_path)


def test_not_gguf(tmp_path: Path) -> None:
    path = tmp_path / "notes.gguf"
    path.write_text("hello, I am a text file pretending to be a model\n")
    with pytest.raises(ModelFileError, match="not a GGUF model file"):
        read_header(path)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.gguf"
    path.write_bytes(b"")
    with pytest.raises(ModelFileError, match="not a GGUF"):
        read_header(path)


def test_unsupported_version(tmp_path: Path) -> None:
    path = tmp_path / "v9.gguf"
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 9, 0, 0))
    with pytest.raises(ModelFileError, match="version 9"):
        read_header(path)


@pytest.mark.parametrize("keep", [16, 4096, 2_000_000])
def test_truncated_in_header(starter_path: Path, tmp_path: Path, keep: int) -> None:
    path = tmp_path / "cut.gguf"
    with starter_path.open("rb") as src:
        path.write_bytes(src.read(keep))
    with pytest.raises(ModelFileError, match="truncated"):
        read_header(path)


def test_truncated_in_weights(starter_path: Path, tmp_path: Path) -> None:
    path = tmp_path / "half.gguf"
    size = starter_path.stat().st_size
    with starter_path.open("rb") as src:
        path.write_bytes(src.read(size // 2))
    with pytest.raises(
        ModelFileError, match=r"truncated: its tensors need .* bytes missing|truncated"
    ):
        read_header(path)
    # The message says how much is missing, so a user knows it is an incomplete copy.
    try:
        read_header(path)
    except ModelFileError as exc:
        assert "missing" in str(exc)
