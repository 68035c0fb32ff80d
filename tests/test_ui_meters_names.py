"""The model's name as the window shows it: the starter's and the catalog's names with their
quantization, else GGUF's general.name with the quantization from the header or the file name."""

from __future__ import annotations

from pathlib import Path

from app.core.gguf.header import read_header
from app.core.models.catalog import load_catalog
from app.core.models.display_name import MAX_NAME, quantization, readable_model_name


def test_the_starter_gets_its_real_name_not_its_training_tag(starter_path: Path) -> None:
    header = read_header(starter_path)
    assert header.name == "Smollm2 135M 8k Lc100K Mix1 Ep2"  # what the file's metadata says
    file_type = header.metadata.get("general.file_type")
    shown = readable_model_name(starter_path, header.name, file_type)
    assert shown == "SmolLM2 135M Instruct (starter) · Q4_1"
    assert readable_model_name(starter_path, header.name) == shown  # from the file name alone


def test_a_catalog_file_gets_the_catalog_name_and_quantization(tmp_path: Path) -> None:
    entry = load_catalog()[0]
    path = tmp_path / entry.filename
    assert readable_model_name(path, "qwen3moe-30b") == f"{entry.name} · {entry.quant.quant}"


def test_any_other_file_keeps_general_name_with_its_quantization(tmp_path: Path) -> None:
    assert readable_model_name(tmp_path / "my-coder.Q5_K_M.gguf", "My Coder") == (
        "My Coder · Q5_K_M"
    )
    # The header's file type wins over the file name; an unknown type falls back to the name.
    assert readable_model_name(tmp_path / "x.gguf", "X", 15) == "X · Q4_K_M"
    assert quantization("model-iq4_xs.gguf", 9999) == "IQ4_XS"
    assert quantization("model.gguf", None) is None
    # The quantization is not repeated, an empty name falls back to the file's stem, a long one
    # is bounded.
    assert readable_model_name(tmp_path / "a-Q8_0.gguf", "Coder Q8_0") == "Coder Q8_0"
    assert readable_model_name(tmp_path / "plain.gguf", "  ") == "plain"
    long = readable_model_name(tmp_path / "m.gguf", "n" * 500)
    assert len(long) == MAX_NAME and long.endswith("…")
