"""Downloads outlive the chooser: a real download from the loopback hub (throttled so it lasts)
keeps running when the chooser closes, shows in the main window's status bar, completes verified
and loads from there; a reopened chooser shows it; Cancel in the window keeps the partial file."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import shiboken6
from PySide6.QtCore import QCoreApplication, QEvent
from pytestqt.qtbot import QtBot

from app.core.models.catalog import CatalogEntry
from app.core.models.network import NetworkSettings, save_network_settings
from app.ui.downloads import DownloadManager, DownloadStatus, progress_text
from app.ui.main_window import MainWindow
from app.ui.model_wizard import ModelWizard
from tests.hub_server import FakeHub, sha256_of
from tests.ui_support import LOAD_TIMEOUT_MS, WindowFactory

pytest_plugins = ("tests.download_support",)

MB = 1_000_000
TIMEOUT_MS = 90_000
RANK_TIMEOUT_MS = 20_000


@pytest.fixture
def hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "hf-cache"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))  # the real cache is not touched
    return cache


@pytest.fixture
def window(
    make_window: WindowFactory, fake_hub: FakeHub, hf_cache: Path, no_token: None
) -> Iterator[MainWindow]:
    save_network_settings(NetworkSettings(endpoint=fake_hub.endpoint))
    win = make_window(load=False)
    yield win
    win.model_menu.downloads.cancel()
    assert win.model_menu.downloads.wait(10)


def _serve_entry(fake_hub: FakeHub, starter_path: Path, wizard: ModelWizard) -> CatalogEntry:
    """The loopback hub serves the starter's bytes under a catalog entry's repo and file name."""
    entry = next(
        r.entry for r in wizard.recommendations if r.entry.model_key == "granite-3.1-1b-a400m"
    )
    fake_hub.add(entry.repo, entry.filename, starter_path, sha256=sha256_of(starter_path))
    return entry


def _open_chooser(qtbot: QtBot, window: MainWindow) -> ModelWizard:
    wizard = window.model_menu.open_wizard()
    qtbot.waitUntil(lambda: wizard.ranked.topLevelItemCount() > 0, timeout=RANK_TIMEOUT_MS)
    return wizard


def _close_chooser(wizard: ModelWizard) -> None:
    wizard.reject()  # the chooser deletes itself on close
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    assert not shiboken6.isValid(wizard)


def test_closing_the_chooser_leaves_the_download_running_in_the_window(
    qtbot: QtBot, window: MainWindow, fake_hub: FakeHub, starter_path: Path, starter_sha: str
) -> None:
    manager: DownloadManager = window.model_menu.downloads
    status: DownloadStatus = window.model_menu.download_status
    assert not status.isVisible()  # nothing to show before a download
    wizard = _open_chooser(qtbot, window)
    entry = _serve_entry(fake_hub, starter_path, wizard)
    fake_hub.knobs.throttle_bps = 25 * MB  # the 98 MB starter takes about four seconds
    assert wizard.select_entry(entry.key)
    wizard.download_button.click()
    qtbot.waitUntil(lambda: manager.done_bytes > 2 * MB, timeout=TIMEOUT_MS)

    _close_chooser(wizard)

    # Still running, shown in the main window's status bar: percent, speed, time left, Cancel.
    assert manager.running and status.isVisible() and status.cancel_button.isVisible()
    done_at_close = manager.done_bytes
    qtbot.waitUntil(lambda: manager.done_bytes > done_at_close + MB, timeout=TIMEOUT_MS)
    text = status.text.text()
    assert text.startswith(f"Downloading {entry.label}: ") and "%" in text and "MB/s" in text
    assert status.bar.isVisible() and 0 < status.bar.value() < status.bar.maximum()

    # A chooser opened meanwhile shows the running download and offers no second one.
    again = _open_chooser(qtbot, window)
    assert again.progress.isVisible() and again.cancel_download_button.isVisible()
    assert again.status.text().startswith(f"Downloading {entry.label}")
    assert not again.download_button.isEnabled()
    _close_chooser(again)

    with qtbot.waitSignal(manager.finished, timeout=TIMEOUT_MS) as finished:
        pass
    path = Path(finished.args[0])
    result = manager.result
    assert result is not None and result.verified_against == "hub"
    assert result.sha256 == starter_sha == hashlib.sha256(path.read_bytes()).hexdigest()
    assert status.load_button.isVisible() and not status.cancel_button.isVisible()
    assert status.text.text() == f"Downloaded and verified: {entry.label}"

    with qtbot.waitSignal(window.bridge.modelLoaded, timeout=LOAD_TIMEOUT_MS):
        status.load_button.click()  # the model loads from the status bar
    assert window.model_info is not None and window.model_info.path == path
    assert not status.isVisible()


def test_cancel_in_the_window_keeps_the_partial_file(
    qtbot: QtBot, window: MainWindow, fake_hub: FakeHub, starter_path: Path, hf_cache: Path
) -> None:
    manager = window.model_menu.downloads
    status = window.model_menu.download_status
    wizard = _open_chooser(qtbot, window)
    entry = _serve_entry(fake_hub, starter_path, wizard)
    _close_chooser(wizard)
    fake_hub.knobs.throttle_bps = 10 * MB
    manager.start(entry.key, entry.label)
    qtbot.waitUntil(lambda: manager.done_bytes >= 3 * MB, timeout=TIMEOUT_MS)

    with qtbot.waitSignal(manager.cancelled, timeout=TIMEOUT_MS):
        status.cancel_button.click()

    (partial,) = list(hf_cache.rglob("*.incomplete"))
    assert partial.stat().st_size >= 3 * MB
    assert "resumes" in manager.message and status.text.text() == manager.message
    assert status.dismiss_button.isVisible() and not status.load_button.isVisible()
    status.dismiss_button.click()
    assert not status.isVisible() and manager.state == "idle"


def test_progress_text_says_percent_speed_and_time_left() -> None:
    assert progress_text(41 * MB, 100 * MB, 3.25 * MB, 20) == (
        "41% · 41.0 MB of 100.0 MB · 3.2 MB/s · 20 s left"
    )
    assert progress_text(5 * MB, 0, MB, -1) == "5.0 MB · 1.0 MB/s · time left unknown"
    assert progress_text(999, 1000, 500, 6000).startswith("99% · ")  # never 100% before the end
    assert progress_text(999, 1000, 500, 6000).endswith("500 bytes/s · 1.7 h left")
