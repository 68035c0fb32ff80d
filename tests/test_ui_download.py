"""The Qt adapters for downloads: the bridge downloads from the loopback fake hub on its own thread
and reports through signals; the network settings dialog validates before it saves."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from PySide6.QtWidgets import QDialogButtonBox, QLineEdit
from pytestqt.qtbot import QtBot

from app.core.models.network import NetworkSettings, load_network_settings
from app.ui.download_bridge import DownloadBridge
from app.ui.network_settings_dialog import TRUST_CERTIFI, TRUST_FILE, NetworkSettingsDialog
from tests.hub_server import SPEC, FakeHub, sha256_of

pytest_plugins = ("tests.download_support",)  # fixtures: fake_hub, hub_network, starter_sha

TIMEOUT_MS = 60_000
MB = 1_000_000


def test_bridge_downloads_with_progress_signals(
    qtbot: QtBot, fake_hub: FakeHub, hub_network: NetworkSettings, tmp_path: Path, starter_sha: str
) -> None:
    bridge = DownloadBridge()
    updates: list[tuple[int, int, float, float]] = []
    bridge.progress.connect(lambda *args: updates.append(args))

    with qtbot.waitSignal(bridge.finished, timeout=TIMEOUT_MS) as finished:
        bridge.start(SPEC, network=hub_network, cache_dir=tmp_path)

    path = Path(finished.args[0])
    assert sha256_of(path) == starter_sha and bridge.result is not None
    qtbot.waitUntil(lambda: bool(updates) and updates[-1][0] == updates[-1][1])
    dones = [u[0] for u in updates]
    assert dones == sorted(dones) and updates[-1][1] == path.stat().st_size
    assert bridge.wait(5) and not bridge.is_running()


def test_bridge_cancel_then_restart_resumes(
    qtbot: QtBot, fake_hub: FakeHub, hub_network: NetworkSettings, tmp_path: Path, starter_sha: str
) -> None:
    bridge = DownloadBridge()
    fake_hub.knobs.throttle_bps = 40 * MB

    def cancel_after_5_mb(done: int, total: int, speed: float, eta: float) -> None:
        if done >= 5 * MB:
            bridge.cancel()

    bridge.progress.connect(cancel_after_5_mb)
    with qtbot.waitSignal(bridge.cancelled, timeout=TIMEOUT_MS):
        bridge.start(SPEC, network=hub_network, cache_dir=tmp_path)
    assert "running it again resumes" in bridge.message
    assert bridge.wait(5)
    bridge.progress.disconnect(cancel_after_5_mb)
    fake_hub.knobs.throttle_bps = None

    checked: list[tuple[int, int]] = []
    bridge.checking.connect(lambda done, total: checked.append((done, total)))
    with qtbot.waitSignal(bridge.finished, timeout=TIMEOUT_MS):
        bridge.start(SPEC, network=hub_network, cache_dir=tmp_path)

    assert bridge.result is not None and bridge.result.resumed_from >= 5 * MB
    assert bridge.result.sha256 == starter_sha
    qtbot.waitUntil(lambda: bool(checked))
    assert checked[-1][0] == checked[-1][1] == bridge.result.resumed_from
    assert fake_hub.seen("cdn", "GET")[-1].headers["range"].startswith("bytes=")


def test_bridge_reports_a_damaged_download(
    qtbot: QtBot, fake_hub: FakeHub, hub_network: NetworkSettings, tmp_path: Path
) -> None:
    bridge = DownloadBridge()
    fake_hub.knobs.corrupt = True

    with qtbot.waitSignal(bridge.failed, timeout=TIMEOUT_MS) as failed:
        bridge.start(SPEC, network=hub_network, cache_dir=tmp_path)

    assert "arrived damaged" in failed.args[0] and "deleted" in failed.args[0]
    assert bridge.wait(5) and bridge.result is None


# -- the settings dialog --------------------------------------------------------------------


def _press_save(dialog: NetworkSettingsDialog) -> None:
    button = dialog.buttons.button(QDialogButtonBox.StandardButton.Save)
    assert button is not None
    button.click()


def test_dialog_refuses_invalid_values_and_stays_open(
    qtbot: QtBot, data_dir: Path, tmp_path: Path
) -> None:
    dialog = NetworkSettingsDialog()
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.proxy.setText("proxy.corp:3128")

    _press_save(dialog)

    assert dialog.isVisible() and dialog.saved is None
    assert dialog.error.isVisible() and "proxy URL 'proxy.corp:3128' is not valid" in (
        dialog.error.text()
    )
    assert not (data_dir / "network.json").exists()

    dialog.proxy.clear()
    dialog.trust.setCurrentIndex(TRUST_FILE)
    assert dialog.ca_file.isEnabled() and dialog.browse.isEnabled()
    dialog.ca_file.setText(str(tmp_path / "missing.pem"))
    _press_save(dialog)
    assert "missing.pem does not exist" in dialog.error.text() and dialog.isVisible()


def test_dialog_saves_valid_settings(qtbot: QtBot, data_dir: Path) -> None:
    dialog = NetworkSettingsDialog()
    qtbot.addWidget(dialog)
    dialog.show()
    assert dialog.token.echoMode() == QLineEdit.EchoMode.Password
    dialog.endpoint.setText("https://mirror.corp.example/")
    dialog.proxy.setText("http://proxy.corp:3128")
    dialog.token.setText("hf_secret99")
    dialog.trust.setCurrentIndex(TRUST_CERTIFI)
    assert not dialog.ca_file.isEnabled()

    with qtbot.waitSignal(dialog.settingsSaved) as saved:
        _press_save(dialog)

    expected = NetworkSettings(
        endpoint="https://mirror.corp.example", proxy="http://proxy.corp:3128",
        ca_bundle="", token="hf_secret99",
    )  # fmt: skip
    assert saved.args == [expected] and load_network_settings() == expected
    assert not dialog.isVisible() and dialog.result() == dialog.DialogCode.Accepted
    assert stat.S_IMODE((data_dir / "network.json").stat().st_mode) & 0o077 == 0


@pytest.mark.usefixtures("data_dir")
def test_dialog_offline_greys_out_the_connection_fields(qtbot: QtBot) -> None:
    dialog = NetworkSettingsDialog(NetworkSettings(offline=True))
    qtbot.addWidget(dialog)

    assert dialog.offline.isChecked() and not dialog.proxy.isEnabled()
    dialog.offline.setChecked(False)
    assert dialog.proxy.isEnabled() and dialog.endpoint.isEnabled()
    assert not dialog.ca_file.isEnabled()  # the system trust store is chosen
