"""Models → Remote engine in a real window (offscreen), against the loopback fault server: test
the connection, save (the key never on disk without a keyring), use it as the window's model,
chat through it, survive a dropped stream, and list it in the model picker."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from keyring.backends import fail
from pytestqt.qtbot import QtBot

from app.core.remote import config as rc
from app.core.remote.endpoint import parse_endpoint
from app.core.storage import chat_store
from app.ui.remote_engine_dialog import RemoteEngineDialog
from tests.remote_fault_server import MODEL, SCRIPTED_WORDS, FaultConfig, fault_server
from tests.ui_support import WindowFactory, stored, type_and_send, wait_reply_done


@pytest.fixture
def server() -> Iterator[tuple[str, FaultConfig]]:
    config = FaultConfig(mode="auth", api_key="team-key-42")
    before = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())  # no keyring here: the key must live in memory only
    with fault_server(config) as url:
        yield f"{url}#{MODEL}", config
    keyring.set_keyring(before)
    rc.remember_for_this_run(parse_endpoint(url), "")


def test_dialog_checks_saves_and_keeps_the_key_off_disk(
    qtbot: QtBot, data_dir: Path, server: tuple[str, FaultConfig]
) -> None:
    endpoint, _config = server
    dialog = RemoteEngineDialog()
    qtbot.addWidget(dialog)
    dialog.endpoint.setText(endpoint)
    dialog.test_connection()  # no key yet: the server says 401
    qtbot.waitUntil(lambda: dialog.test_button.isEnabled(), timeout=10_000)
    assert not dialog.error.isHidden() and "refused the API key" in dialog.error.text()
    dialog.api_key.setText("team-key-42")
    dialog.test_connection()
    qtbot.waitUntil(lambda: "Reachable" in dialog.status.text(), timeout=10_000)
    assert "context 2,048" in dialog.status.text() and "logit_bias" in dialog.status.text()
    with qtbot.waitSignal(dialog.remoteChosen, timeout=5_000) as chosen:
        dialog.save()
    assert chosen.args == [endpoint]
    saved = rc.load_remote_config()
    assert saved.endpoint == endpoint and saved.checked_n_ctx == 2048
    files = [p for p in data_dir.rglob("*") if p.is_file()]
    assert files and not any("team-key-42" in p.read_text(errors="ignore") for p in files)
    label = rc.remote_choice_label()
    assert label is not None and label[1] == f"{MODEL} on {parse_endpoint(endpoint).host} " \
        "(remote) · context 2,048"


def test_window_uses_the_remote_engine_and_survives_a_drop(
    qtbot: QtBot, make_window: WindowFactory, server: tuple[str, FaultConfig]
) -> None:
    endpoint, config = server
    window = make_window(load=False)
    rc.remember_for_this_run(parse_endpoint(endpoint), "team-key-42")
    rc.save_remote_config(rc.RemoteConfig(endpoint=endpoint))
    dialog = window.model_menu.open_remote()
    with qtbot.waitSignal(window.bridge.modelLoaded, timeout=10_000):
        dialog.save()
    qtbot.waitUntil(lambda: window.send_button.isEnabled(), timeout=5_000)
    assert window.model_info is not None and window.model_info.n_ctx == 2048
    assert "(remote" in window.model_label.text() or MODEL in window.model_label.text()
    picker = window.model_picker
    assert picker.findData(endpoint) >= 0  # the chooser lists the configured server

    type_and_send(qtbot, window, "hi")
    wait_reply_done(qtbot, window)
    assert stored(window)[-1].content == "".join(SCRIPTED_WORDS)

    config.mode = "drop"
    type_and_send(qtbot, window, "again")
    wait_reply_done(qtbot, window)
    last = stored(window)[-1]
    assert last.status == chat_store.FAILED
    assert last.content == "".join(SCRIPTED_WORDS[: config.after])  # what was shown is kept
    assert window.send_button.isEnabled()  # the app stays usable
