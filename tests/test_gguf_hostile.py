"""Hostile and damaged GGUF headers (issue #10 item 5), as real files: wrong value types written
by the `gguf` package's GGUFWriter, and lies about counts, nesting and tensors written byte by byte
(tests/gguf_bytes.py). Each goes through the reader, the real CLI (`import`, `models`, `fit`) and
the chooser's discovery, and must end in one clear sentence naming what is wrong, quickly."""

from __future__ import annotations

import json
import os
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gguf
import numpy as np
import pytest
from pytestqt.qtbot import QtBot

from app.cli.main import main
from app.core.errors import ModelFileError
from app.core.fit.estimate import footprint_from_header
from app.core.gguf.header import read_header
from app.core.models.import_gguf import (
    ModelImportError,
    import_model,
    model_problem,
    models_dir,
)
from tests.gguf_bytes import (
    INT32,
    UINT16,
    UINT64,
    RawGGUF,
    Tensor,
    gguf_string,
    kv_nested_array,
    kv_string,
    kv_u32,
    kv_u32_array,
    llama_model,
)

T = gguf.GGUFValueType


def writer_gguf(path: Path, *kvs: tuple[str, Any, gguf.GGUFValueType, Any]) -> Path:
    """A llama-architecture GGUF from GGUFWriter, with `kvs` as (key, value, type, array type):
    the writer stores whatever type it is given, as a careless or hostile converter would."""
    writer = gguf.GGUFWriter(path, "llama")
    writer.add_name("hostile")
    writer.add_block_count(1)
    for key, value, vtype, sub_type in kvs:
        writer.add_key_value(key, value, vtype, sub_type)
    writer.add_tensor("token_embd.weight", np.zeros((16, 8), dtype=np.float32))
    writer.add_tensor("blk.0.attn_norm.weight", np.ones(8, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


WRONG_TYPES: dict[str, tuple[tuple[str, Any, gguf.GGUFValueType, Any], str]] = {
    "context as text": (("llama.context_length", "8k", T.STRING, None), "the text '8k'"),
    "context NaN": (("llama.context_length", float("nan"), T.FLOAT32, None), "NaN"),
    "context as list": (("llama.context_length", [4096, 8192], T.ARRAY, T.UINT32), "a list"),
    "context fractional": (("llama.context_length", 4096.5, T.FLOAT64, None), "fractional"),
    "context zero": (("llama.context_length", 0, T.UINT32, None), "is 0"),
    "alignment text": (("general.alignment", "abc", T.STRING, None), "the text 'abc'"),
    "alignment not power of two": (("general.alignment", 48, T.UINT32, None), "power of two"),
    "heads as bool": (("llama.attention.head_count", True, T.BOOL, None), "true"),
    "heads negative": (("llama.attention.head_count_kv", -4, T.INT32, None), "-4"),
    "template as number": (("tokenizer.chat_template", 7, T.UINT32, None), "should be text"),
    "experts huge": (("llama.expert_count", 2**40, T.UINT64, None), "1,099,511,627,776"),
    "window as list of text": (
        ("llama.attention.sliding_window_pattern", ["a"], T.ARRAY, T.STRING),
        "true/false",
    ),
}


@pytest.mark.parametrize("kv, shown", WRONG_TYPES.values(), ids=WRONG_TYPES.keys())
def test_a_key_of_the_wrong_type_is_named_in_a_clear_error(
    tmp_path: Path, kv: tuple[str, Any, gguf.GGUFValueType, Any], shown: str
) -> None:
    path = writer_gguf(tmp_path / "wrong.gguf", kv)
    with pytest.raises(ModelFileError) as caught:
        read_header(path)
    message = str(caught.value)
    assert message.startswith("wrong.gguf is damaged or not a usable model file")
    assert f"header key {kv[0]} should be" in message and shown in message


def test_the_type_of_the_architecture_itself_is_checked(tmp_path: Path) -> None:
    raw = RawGGUF(kvs=[kv_u32("general.architecture", 7)], tensors=[Tensor("a.weight", (8,))])
    with pytest.raises(ModelFileError, match=r"general\.architecture should be text.* is 7"):
        read_header(raw.write(tmp_path / "arch.gguf"))


LIES: dict[str, tuple[RawGGUF, str]] = {
    "arrays nested 20,000 deep": (llama_model(kv_nested_array("evil", 20_000)), "nested more"),
    "2^60 keys": (RawGGUF(kvs=[kv_string("general.architecture", "llama")], n_kv=2**60),
                  "claims 1,152,921,504,606,846,976 header keys"),
    "2^60 tensors": (RawGGUF(n_tensors=2**60), "tensors, more than its"),
    "array of 2^61 numbers": (llama_model(kv_u32_array("x", [1], claimed=2**61)), "array values"),
    "a 2^62-byte key": (RawGGUF(kvs=[(2**62).to_bytes(8, "little") + b"k"]), "a header key is"),
    "a 2^40-byte string": (
        llama_model(gguf_string("s") + (8).to_bytes(4, "little") + (2**40).to_bytes(8, "little")),
        "a text value is 1,099,511,627,776 bytes",
    ),
    "unknown value type": (llama_model(gguf_string("x") + (99).to_bytes(4, "little")),
                           "unknown GGUF value type 99"),
    "50 million blocks in 170 bytes": (
        RawGGUF(kvs=[kv_string("general.architecture", "llama"),
                     gguf_string("llama.block_count") + UINT64.to_bytes(4, "little")
                     + (50_000_000).to_bytes(8, "little")]),
        "llama.block_count should be a whole number from 0 to 4,096, but it is 50,000,000",
    ),
    "more blocks than tensors": (llama_model(block_count=300), "300 layers, but it has only 2"),
    "per-layer list of the wrong length": (
        llama_model(kv_u32_array("llama.attention.head_count", [4, 4, 4])),
        "lists 3 values for 1 layer",
    ),
    "a width no weights hold": (llama_model(kv_u32("llama.feed_forward_length", 10**6)),
                                "more than all its weights hold"),
    "more experts used than exist": (
        llama_model(kv_u32("llama.expert_count", 2), kv_u32("llama.expert_used_count", 8)),
        "8 experts but has only 2",
    ),
    "the same key twice": (llama_model(kv_u32("llama.context_length", 1)), "appears twice"),
    "the same tensor twice": (
        RawGGUF(tensors=[Tensor("a.weight", (8,)), Tensor("a.weight", (8,))]), "appears twice"
    ),
    "a 100-byte tensor name": (RawGGUF(tensors=[Tensor("n" * 100, (8,))]), "a tensor name is"),
    "five dimensions": (RawGGUF(tensors=[Tensor("a.weight", (1, 1, 1, 1, 1))]), "5 dimensions"),
    "overlapping tensors": (
        RawGGUF(tensors=[Tensor("a.weight", (8,)), Tensor("b.weight", (8,), offset=0)]),
        "tensor b.weight starts at byte 0 of the weights, where byte 32 was expected",
    ),
    "weights bigger than the file": (
        RawGGUF(tensors=[Tensor("a.weight", (2**20, 2**20))], data_bytes=64),
        "its tensors need 4,398,046,511,",
    ),
    "an impossible element count": (
        RawGGUF(tensors=[Tensor("a.weight", (2**62, 2**62))], data_bytes=64), "impossible shape"
    ),
    "unknown tensor type": (RawGGUF(tensors=[Tensor("a.weight", (8,), ggml_type=999)]),
                            "tensor type 999"),
}  # fmt: skip


@pytest.mark.parametrize("raw, reason", LIES.values(), ids=LIES.keys())
def test_counts_the_file_cannot_hold_are_refused_quickly(
    tmp_path: Path, raw: RawGGUF, reason: str
) -> None:
    path = raw.write(tmp_path / "lies.gguf")
    started = time.monotonic()
    with pytest.raises(ModelFileError) as caught:
        read_header(path)
    assert time.monotonic() - started < 1.0
    assert reason in str(caught.value) and str(caught.value).startswith("lies.gguf ")


def test_the_issues_170_byte_file_is_refused_by_fit_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw, _ = LIES["50 million blocks in 170 bytes"]
    path = raw.write(tmp_path / "tiny.gguf")
    assert path.stat().st_size < 170
    started = time.monotonic()
    assert main(["fit", str(path)]) == 2
    assert time.monotonic() - started < 10  # was 19 s and 2 GB
    out, err = capsys.readouterr()
    assert "tokens/s" not in out and err.startswith("error: tiny.gguf is damaged")
    assert "block_count" in err and "Traceback" not in err


def test_a_file_without_weights_is_no_model(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A vocabulary-only GGUF reads fine, but `fit` and `import` say it cannot run."""
    path = RawGGUF(kvs=[kv_string("general.architecture", "llama")]).write(tmp_path / "vocab.gguf")
    header = read_header(path)
    with pytest.raises(ModelFileError, match="holds no weights"):
        footprint_from_header(header)
    assert main(["fit", str(path)]) == 2
    assert "holds no weights" in capsys.readouterr().err
    with pytest.raises(ModelImportError, match="without weights"):
        import_model(path, "register")


def test_a_split_models_first_part_may_hold_few_tensors(tmp_path: Path) -> None:
    """llama.cpp's gguf-split can leave the first part without tensors: its layer count is then
    checked against the split's total tensor count, and it is not called weightless."""
    def first_part(total_tensors: int) -> RawGGUF:
        split = gguf_string("split.count") + struct.pack("<IH", UINT16, 3)
        total = gguf_string("split.tensors.count") + struct.pack("<Ii", INT32, total_tensors)
        arch = kv_string("general.architecture", "llama")
        layers = [kv_u32("llama.block_count", 24), kv_u32("llama.embedding_length", 64)]
        return RawGGUF(kvs=[arch, *layers, split, total])

    header = read_header(first_part(200).write(tmp_path / "m-00001-of-00003.gguf"))
    assert header.is_split and not header.tensors
    assert model_problem(header) is None
    footprint_from_header(header)  # not refused as a file without weights
    with pytest.raises(ModelFileError, match="24 layers, but it has only 10 tensors"):
        read_header(first_part(10).write(tmp_path / "lying-00001-of-00003.gguf"))


def test_valid_per_layer_lists_are_read_layer_by_layer(tmp_path: Path) -> None:
    raw = llama_model(
        kv_u32_array("llama.attention.head_count", [4, 2]),
        kv_u32_array("llama.attention.head_count_kv", [2, 1]),
        block_count=2,
    )
    fp = footprint_from_header(read_header(raw.write(tmp_path / "layers.gguf")))
    assert fp.n_layer == 2 and fp.n_head == 4 and fp.n_head_kv == (2, 1)
    assert fp.key_length == 8 // 4  # embedding_length / heads


def test_header_text_is_shown_without_control_characters(tmp_path: Path) -> None:
    raw = RawGGUF(
        kvs=[kv_string("general.architecture", "llama\x1b[31m"),
             kv_string("general.name", "Good\x1b]0;pwned\x07 model\u202e\r\nfake line")],
        tensors=[Tensor("a.weight", (8,))],
    )  # fmt: skip
    header = read_header(raw.write(tmp_path / "escapes.gguf"))
    assert header.name == "Good ]0;pwned model fake line"
    assert header.architecture == "llama [31m"
    assert all(c.isprintable() for c in header.name + header.architecture)


def test_a_pipe_named_gguf_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.gguf"
    os.mkfifo(fifo)
    with pytest.raises(ModelFileError, match="not a regular file"):
        read_header(fifo)


# -- through the CLI and the chooser -------------------------------------------------------------


def _hostile_folder(root: Path) -> tuple[Path, dict[Path, str]]:
    """A folder like LM Studio's with one good model and hostile ones: {path: what its reason
    must mention}."""
    folder = root / "models" / "someone" / "Mixed-GGUF"
    folder.mkdir(parents=True)
    good = writer_gguf(folder / "good.gguf")
    bad: dict[Path, str] = {
        writer_gguf(folder / "ctx-text.gguf", WRONG_TYPES["context as text"][0]): "context_length",
        writer_gguf(folder / "align.gguf", WRONG_TYPES["alignment text"][0]): "general.alignment",
        LIES["arrays nested 20,000 deep"][0].write(folder / "deep.gguf"): "nested",
        LIES["50 million blocks in 170 bytes"][0].write(folder / "blocks.gguf"): "block_count",
        RawGGUF(kvs=[kv_string("general.architecture", "llama")]).write(
            folder / "vocab.gguf"
        ): "without weights",
    }
    os.mkfifo(folder / "pipe.gguf")
    bad[folder / "pipe.gguf"] = "not a regular file"
    return good, bad


def test_leancoder_import_refuses_a_hostile_file_and_keeps_nothing(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = writer_gguf(tmp_path / "ctx-nan.gguf", WRONG_TYPES["context NaN"][0])
    assert main(["import", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ctx-nan.gguf is damaged") and "llama.context_length" in err
    assert list(models_dir().iterdir()) == []


def test_leancoder_models_lists_unreadable_files_with_their_reasons(
    tmp_path: Path,
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    home = tmp_path / "home"
    good, bad = _hostile_folder(home / ".lmstudio")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))

    assert main(["models", "--json"]) == 0
    listed = {Path(m["path"]): m for m in json.loads(capsys.readouterr().out)}
    assert set(listed) == {good, *bad}
    assert listed[good]["problem"] is None and listed[good]["architecture"] == "llama"
    for path, reason in bad.items():
        assert reason in listed[path]["problem"], path.name

    assert main(["models"]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    for path, reason in bad.items():
        row = next(i for i, line in enumerate(lines) if line.endswith(str(path)))
        assert reason in lines[row + 1] and lines[row + 1].lstrip().startswith(
            ("unreadable: ", "not usable: ")
        )
    assert f"{len(bad)} of {len(bad) + 1} files cannot be used" in err


def test_the_chooser_shows_unreadable_files_and_still_offers_the_good_one(
    qtbot: QtBot, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.ui.model_wizard import ModelWizard

    home = tmp_path / "home"
    good, bad = _hostile_folder(home / ".lmstudio")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    dialog = ModelWizard(wanted_ctx=8192)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitUntil(lambda: dialog.on_disk.topLevelItemCount() == len(bad) + 1, timeout=20_000)

    rows = _rows(dialog.on_disk.topLevelItemCount(), dialog.on_disk.topLevelItem)
    assert rows[good][0] == "Ready" and not rows[good][1]
    for path, reason in bad.items():
        status, disabled, tooltip = rows[path]
        assert disabled and status.startswith(("Unreadable: ", "Not usable: "))
        assert reason in tooltip, path.name
    assert dialog.tabs.tabText(1) == "On this computer (1)"
    dialog.done(0)


def _rows(count: int, item_at: Callable[[int], Any]) -> dict[Path, tuple[str, bool, str]]:
    rows = {}
    for index in range(count):
        item = item_at(index)
        rows[Path(item.text(4))] = (item.text(3), item.isDisabled(), item.toolTip(3))
    return rows
