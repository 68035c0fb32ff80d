"""Models → Local API server settings in a real window (offscreen): the port, other machines with
a generated key (the key never on disk without a keyring), the form refusing what the server
would refuse, a running server restarting with new settings, and saved settings that can no
longer be served (their key is gone) refused with a sentence. The official `openai` client is
the coding tool."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import keyring
import openai
import pytest
from keyring.backends import fail
from PySide6.QtGui import QGuiApplication
from pytestqt.qtbot import QtBot

from app.core.errors import LeanCoderError
from app.server import settings as ss
from app.server.config import DEFAULT_PORT, STREAM_INTERVAL_MS, ServerConfigError
from app.ui.main_window import MainWindow
from tests.remote_fault_server import unused_port
from tests.ui_support import WindowFactory


@pytest.fixture(autouse=True)
def no_keyring() -> Iterator[None]:
    """No keyring here: a key must live in memory for this run only."""
    before = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    yield
    keyring.set_keyring(before)
    ss.keep_server_api_key("")


def _serve(qtbot: QtBot, window: MainWindow) -> str:
    switch = window.server_switch
    with qtbot.waitSignal(switch.started, timeout=30_000) as started:
        switch.action.trigger()
    url = str(started.args[0])
    qtbot.waitUntil(lambda: url in switch.indicator.text(), timeout=5_000)
    return url


def _models(url: str, key: str) -> list[str]:
    client = openai.OpenAI(base_url=url, api_key=key, max_retries=0, timeout=30)
    try:
        return [m.id for m in client.models.list().data]
    finally:
        client.close()


def test_the_settings_file_is_read_value_by_value(data_dir: Path) -> None:
    path = ss.server_settings_path()
    assert ss.load_server_settings() == ss.ServerSettings()  # none yet: the defaults
    path.write_text(json.dumps({"port": "8080", "network": 1, "policy": "Aggressive",
                                "stream_interval_ms": 20, "extra": True}))  # fmt: skip
    loaded = ss.load_server_settings()
    assert loaded == ss.ServerSettings(policy="Aggressive", stream_interval_ms=20)
    path.write_text("{not json")
    assert ss.load_server_settings() == ss.ServerSettings()
    config = ss.ServerSettings().config(None)
    assert (config.host, config.port, config.api_key) == ("127.0.0.1", DEFAULT_PORT, None)
    assert config.stream_interval_ms == STREAM_INTERVAL_MS
    with pytest.raises(ServerConfigError, match="Other machines may connect only with an API key"):
        ss.ServerSettings(network=True).config(None)
    assert ss.ServerSettings(network=True).config(ss.new_api_key()).host == "0.0.0.0"
    with pytest.raises(LeanCoderError, match="Unknown thinking policy 'Fast'"):
        ss.ServerSettings(policy="Fast").config(None)
    with pytest.raises(ServerConfigError, match="Streamed thinking goes to one of"):
        ss.ServerSettings(reasoning_fields="think").config(None)
    with pytest.raises(ServerConfigError, match="stream interval"):
        ss.ServerSettings(stream_interval_ms=5000).config(None)
    assert ss.new_api_key() != ss.new_api_key() and len(ss.new_api_key()) >= 32


def test_other_machines_may_connect_with_a_generated_key(
    qtbot: QtBot, make_window: WindowFactory, data_dir: Path
) -> None:
    window = make_window()
    switch = window.server_switch
    dialog = switch.open_settings()
    qtbot.addWidget(dialog)
    port = unused_port()
    dialog.port.setValue(port)
    dialog.network.setChecked(True)
    dialog.save()  # no key yet: refused, nothing saved, the dialog stays
    assert not dialog.error.isHidden() and "only with an API key" in dialog.error.text()
    assert not ss.server_settings_path().exists() and dialog.isVisible()
    assert dialog.height() >= dialog.sizeHint().height(), "the sentence squeezed the form"
    dialog.generate.click()
    key = dialog.api_key.text()
    assert key.startswith("lc-") and dialog.api_key.echoMode() == dialog.api_key.EchoMode.Normal
    dialog.copy.click()
    assert QGuiApplication.clipboard().text() == key
    dialog.policy.setCurrentText("Aggressive")
    dialog.save()
    assert not dialog.isVisible()
    assert "kept until LeanCoder quits" in window.statusBar().currentMessage()
    saved = ss.load_server_settings()
    assert (saved.port, saved.network, saved.policy) == (port, True, "Aggressive")
    files = [p for p in data_dir.rglob("*") if p.is_file()]
    assert not any(key in p.read_text(errors="ignore") for p in files), "the key reached disk"

    url = _serve(qtbot, window)
    assert f":{port}/v1" in url
    assert "other machines: http://" in window.statusBar().currentMessage()
    assert _models(url, key) == [window.model_info.path.stem if window.model_info else ""]
    with pytest.raises(openai.AuthenticationError):
        _models(url, "not-the-key")
    with qtbot.waitSignal(switch.stopped, timeout=30_000):
        switch.action.trigger()


def test_saving_while_serving_restarts_on_the_new_port(
    qtbot: QtBot, make_window: WindowFactory, data_dir: Path
) -> None:
    window = make_window()
    switch = window.server_switch
    first, second = unused_port(), unused_port()
    ss.save_server_settings(ss.ServerSettings(port=first))
    url = _serve(qtbot, window)
    assert f":{first}/v1" in url and _models(url, "unused")
    dialog = switch.open_settings()
    qtbot.addWidget(dialog)
    assert dialog.port.value() == first  # the form shows what is saved
    dialog.port.setValue(second)
    with qtbot.waitSignal(switch.stopped, timeout=30_000), \
            qtbot.waitSignal(switch.started, timeout=30_000) as restarted:  # fmt: skip
        dialog.save()
    assert f":{second}/v1" in restarted.args[0] and switch.serving
    assert switch.action.isChecked()
    assert _models(restarted.args[0], "unused")
    with pytest.raises(openai.APIConnectionError):
        _models(url, "unused")  # the old port is closed
    with qtbot.waitSignal(switch.stopped, timeout=30_000):
        switch.action.trigger()


def test_saved_settings_whose_key_is_gone_are_refused_with_a_sentence(
    qtbot: QtBot, make_window: WindowFactory, data_dir: Path
) -> None:
    """Other machines were allowed last run; the key lived in memory, so this run has none."""
    window = make_window()
    ss.save_server_settings(ss.ServerSettings(port=unused_port(), network=True))
    window.server_switch.action.trigger()
    assert not window.server_switch.serving and not window.server_switch.action.isChecked()
    box = window.error_box
    assert box is not None and "only with an API key" in box.text()
    assert "Local API server settings" in box.text()
