"""LeanCoder's own small JSON files: damaged or hand-edited files give defaults, never a traceback;
writes are atomic and private."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest

from app.core.models.network import NetworkSettings, load_network_settings
from app.core.storage.json_file import read_json_object, typed_values, write_json
from app.core.storage.settings import Settings


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", "\xff\xfe", '"a string"'])
def test_a_damaged_file_gives_defaults_and_a_log_line(
    tmp_path: Path, text: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "settings.json"
    path.write_text(text, encoding="latin-1")
    with caplog.at_level(logging.WARNING):
        assert read_json_object(path, "settings") == {}
        assert Settings.load(path) == Settings()
        assert load_network_settings(path) == NetworkSettings()
    assert "unreadable" in caplog.text or "not a JSON object" in caplog.text


def test_only_values_of_the_expected_type_are_taken() -> None:
    raw = {"n_ctx": True, "temperature": 1, "policy": 3, "extra": "x", "kv_fast_mode": False}
    expected = {"n_ctx": int, "temperature": (int, float), "policy": str, "kv_fast_mode": bool}
    assert typed_values(raw, expected) == {"temperature": 1, "kv_fast_mode": False}


def test_a_write_is_atomic_and_private(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "network.json"
    write_json(path, {"token": "hf_secret", "name": "é"})
    assert read_json_object(path, "network settings") == {"token": "hf_secret", "name": "é"}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["network.json"]  # no temporary left
    settings = Settings(n_ctx=8192, n_ctx_chosen=True, policy="Aggressive")
    settings.save(tmp_path / "settings.json")
    assert Settings.load(tmp_path / "settings.json") == settings
