"""Importing local GGUF files and finding the ones already on disk, with real files: the starter
GGUF, truncated and non-GGUF files, split models and a vision projector written with `gguf`, and a
Hugging Face cache filled by a real download from the loopback fake hub."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import gguf
import numpy as np
import pytest

from app.cli.main import main
from app.core.errors import ModelFileError
from app.core.models.download import download_model
from app.core.models.import_gguf import (
    ModelImportError,
    discover_models,
    import_model,
    lmstudio_model_dirs,
    models_dir,
    registered_models,
    registry_path,
    unregister_model,
)
from app.core.models.network import NetworkSettings
from tests.hub_server import REPO, SPEC, sha256_of

pytest_plugins = ("tests.download_support",)  # fixtures: fake_hub, hub_network, starter_sha


def write_gguf(path: Path, arch: str = "llama", tensors: int = 1, name: str = "tiny") -> Path:
    """A small valid GGUF file (one float32 tensor per count) written by the `gguf` package."""
    writer = gguf.GGUFWriter(path, arch)
    writer.add_name(name)
    for index in range(tensors):
        writer.add_tensor(f"t{index}.weight", np.full((4, 8), index, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.fixture
def local_copy(starter_path: Path, tmp_path: Path) -> Path:
    """The starter GGUF on the test's own disk (hard links need the same file system)."""
    folder = tmp_path / "usb"
    folder.mkdir()
    return Path(shutil.copyfile(starter_path, folder / "SmolLM2-135M.Q4_1.gguf"))


@pytest.mark.usefixtures("data_dir")
def test_import_copies_a_checked_file_into_the_models_folder(
    local_copy: Path, starter_sha: str
) -> None:
    seen: list[tuple[int, int]] = []

    model = import_model(
        local_copy, "copy", progress=lambda done, total: seen.append((done, total))
    )

    assert model.path == models_dir() / local_copy.name and model.source == "leancoder"
    assert model.architecture == "llama" and model.usable
    assert model.size_bytes == local_copy.stat().st_size == seen[-1][0] == seen[-1][1]
    assert sha256_of(model.path) == starter_sha
    assert not model.path.samefile(local_copy)
    assert [p.name for p in models_dir().iterdir()] == [local_copy.name]  # no temporary left

    again = import_model(local_copy, "copy")
    assert again.path == model.path and len(list(models_dir().iterdir())) == 1


@pytest.mark.usefixtures("data_dir")
def test_import_by_hard_link_shares_the_bytes(local_copy: Path) -> None:
    model = import_model(local_copy, "link")

    assert model.path.samefile(local_copy) and local_copy.stat().st_nlink == 2


@pytest.mark.usefixtures("data_dir")
def test_a_different_file_with_the_same_name_is_not_overwritten(
    local_copy: Path, tmp_path: Path
) -> None:
    (tmp_path / "other").mkdir()
    other = write_gguf(tmp_path / "other" / local_copy.name, tensors=2)
    first = import_model(other, "copy")

    second = import_model(local_copy, "copy")

    assert first.path.name == local_copy.name
    assert second.path.name == local_copy.stem + "-2.gguf"
    assert first.path.stat().st_size == other.stat().st_size


@pytest.mark.usefixtures("data_dir")
def test_register_uses_the_file_in_place(local_copy: Path) -> None:
    model = import_model(local_copy, "register")

    assert model.path == local_copy and model.source == "imported"
    assert list(models_dir().iterdir()) == []
    assert registered_models() == [local_copy.resolve()]
    listed = discover_models(hf_cache=Path("/nonexistent"), lmstudio_dirs=[])
    assert [(m.path, m.source, m.architecture) for m in listed] == [
        (local_copy.resolve(), "imported", "llama")
    ]

    local_copy.unlink()
    gone = discover_models(hf_cache=Path("/nonexistent"), lmstudio_dirs=[])
    assert gone[0].problem == "the file is gone" and not gone[0].usable
    unregister_model(local_copy)
    assert json.loads(registry_path().read_text()) == {"paths": []}


@pytest.mark.usefixtures("data_dir")
def test_bad_files_are_refused_with_the_reason(local_copy: Path, tmp_path: Path) -> None:
    truncated = tmp_path / "truncated.gguf"
    with local_copy.open("rb") as source:
        truncated.write_bytes(source.read(local_copy.stat().st_size // 2))
    not_gguf = tmp_path / "notes.gguf"
    not_gguf.write_text("this is a text file\n" * 100)

    with pytest.raises(ModelFileError, match=r"truncated\.gguf is truncated"):
        import_model(truncated)
    with pytest.raises(ModelFileError, match=r"notes\.gguf is not a GGUF model file"):
        import_model(not_gguf)
    with pytest.raises(ModelFileError, match="Model file not found"):
        import_model(tmp_path / "missing.gguf")
    assert list(models_dir().iterdir()) == []


@pytest.mark.usefixtures("data_dir")
def test_split_models_are_imported_whole(tmp_path: Path) -> None:
    folder = tmp_path / "split"
    folder.mkdir()
    first = write_gguf(folder / "big-00001-of-00002.gguf")
    second_name = "big-00002-of-00002.gguf"

    with pytest.raises(ModelImportError, match=f"{second_name} is missing"):
        import_model(first)
    second = write_gguf(folder / second_name, tensors=2)
    with pytest.raises(ModelImportError, match="part 2 of a split model; choose its first part"):
        import_model(second)

    model = import_model(first)

    assert sorted(p.name for p in models_dir().iterdir()) == [first.name, second_name]
    assert model.size_bytes == first.stat().st_size + second.stat().st_size
    listed = discover_models(hf_cache=tmp_path / "none", lmstudio_dirs=[])
    assert [(m.path.name, m.size_bytes) for m in listed] == [(first.name, model.size_bytes)]


@pytest.mark.usefixtures("data_dir")
def test_discovery_finds_hf_cache_lm_studio_and_own_models_once_each(
    fake_hub: object,
    hub_network: NetworkSettings,
    local_copy: Path,
    tmp_path: Path,
    starter_path: Path,
) -> None:
    cache = tmp_path / "hf-cache"
    downloaded = download_model(SPEC, network=hub_network, cache_dir=cache)
    lms = tmp_path / "home" / ".lmstudio" / "models"
    (lms / "bartowski" / "Tiny-GGUF").mkdir(parents=True)
    lm_model = Path(shutil.copyfile(starter_path, lms / "bartowski" / "Tiny-GGUF" / "t.gguf"))
    (lms / "bartowski" / "Tiny-GGUF" / "README.md").write_text("not a model")
    (lms / "bartowski" / "Tiny-GGUF" / ".t.gguf.part").write_text("a partial download")
    broken = lms / "bartowski" / "Tiny-GGUF" / "broken.gguf"
    broken.write_bytes(lm_model.read_bytes()[:1_000_000])
    mmproj = write_gguf(lms / "bartowski" / "Tiny-GGUF" / "mmproj-t.gguf", arch="clip")
    os.symlink(downloaded.path, lms / "bartowski" / "Tiny-GGUF" / "linked.gguf")  # a duplicate
    own = import_model(local_copy)

    found = {m.path: m for m in discover_models(hf_cache=cache, lmstudio_dirs=[lms])}

    assert set(found) == {downloaded.path, lm_model, broken, mmproj, own.path}
    hub_entry = found[downloaded.path]
    assert (hub_entry.source, hub_entry.repo, hub_entry.architecture) == (
        "hf-cache", REPO, "llama"
    )  # fmt: skip
    assert hub_entry.size_bytes == starter_path.stat().st_size
    assert found[lm_model].source == "lm-studio" and found[lm_model].usable
    assert found[own.path].source == "leancoder"
    assert "truncated" in str(found[broken].problem)
    assert "vision projector" in str(found[mmproj].problem)
    assert lmstudio_model_dirs(tmp_path / "home")[0] == lms


def test_cli_import_and_models(
    data_dir: Path,
    local_copy: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no LM Studio folders

    assert main(["import", str(local_copy)]) == 0
    out, err = capsys.readouterr()
    assert Path(out.strip()) == models_dir() / local_copy.name and "llama" in err

    assert main(["models", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(m["source"], m["architecture"]) for m in listed] == [("leancoder", "llama")]

    assert main(["models"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["source", "architecture", "size", "path"]
    assert "leancoder" in table[1] and "98.4 MB" in table[1]

    bad = tmp_path / "bad.gguf"
    bad.write_text("nope")
    assert main(["import", str(bad)]) == 2
    assert capsys.readouterr().err.startswith("error: bad.gguf is not a GGUF model file")
