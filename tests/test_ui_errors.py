"""Unexpected errors in the window: a failed background job and an exception in a slot reach the log
and a visible dialog (details collapsed, the log's path), and the app keeps running; Qt's own
warnings reach the log; Help opens the log folder and shows the versions."""

from __future__ import annotations

import logging
import os
import platform
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import pytest
import shiboken6
from PySide6.QtCore import QObject, QTimer, QUrl, Slot, qVersion
from PySide6.QtGui import QDesktopServices, QPainter
from PySide6.QtWidgets import QMenu, QMessageBox
from pytestqt.qtbot import QtBot

from app.core.storage import logs
from app.ui.application import install_qt_message_handler
from app.ui.error_dialog import TITLE, ErrorReporter, app_error_reporter
from tests.ui_support import WindowFactory


@pytest.fixture
def log_path(data_dir: Path) -> Iterator[Path]:
    """Logging set up as the app does, into the test's data dir; put back after."""
    root = logging.getLogger()
    level = root.level
    path = logs.setup_logging("info")
    yield path
    logs.stop_logging()
    root.setLevel(level)


@pytest.fixture
def reporter(qtbot: QtBot) -> Iterator[ErrorReporter]:
    reporter = app_error_reporter()
    yield reporter
    box = reporter.box
    if box is not None and shiboken6.isValid(box):
        box.close()
    reporter.box = None


def visible_error_box(reporter: ErrorReporter) -> QMessageBox | None:
    box = reporter.box
    if box is not None and shiboken6.isValid(box) and box.isVisible():
        return box
    return None


def test_a_failed_background_job_shows_a_dialog_and_reaches_the_log(
    qtbot: QtBot, make_window: WindowFactory, log_path: Path, reporter: ErrorReporter
) -> None:
    window = make_window(load=False)

    def unload_job_that_breaks() -> None:
        raise RuntimeError("background-broke-5150")

    # A job nobody waits for, on the real model worker, as shutdown's unload job is.
    window.bridge._worker.submit(unload_job_that_breaks)
    qtbot.waitUntil(lambda: visible_error_box(reporter) is not None, timeout=5_000)
    box = visible_error_box(reporter)
    assert box is not None and box.windowTitle() == TITLE
    assert "background-broke-5150" in box.text()
    assert "keeps running" in box.text()
    assert str(log_path) in box.informativeText()
    assert "Traceback" in box.detailedText() and "unload_job_that_breaks" in box.detailedText()
    text = log_path.read_text(encoding="utf-8")
    assert "background job" in text and "RuntimeError: background-broke-5150" in text
    # The worker and the window go on.
    assert window.bridge._worker.call(lambda: "still serving").result(timeout=5) == "still serving"
    assert window.isVisible()


def test_an_exception_in_a_slot_shows_one_dialog_and_the_app_goes_on(
    qtbot: QtBot,
    make_window: WindowFactory,
    log_path: Path,
    reporter: ErrorReporter,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    window = make_window(load=False)
    printed: list[BaseException] = []
    # What was there before our hook (pytest-qt's capture) is replaced by a recorder, which
    # stands for Python's default hook printing the traceback.
    monkeypatch.setattr(sys, "excepthook", lambda kind, value, tb: printed.append(value))
    uninstall = logs.install_exception_hooks(reporter.report)
    try:
        shown_before = reporter.shown

        def on_click() -> None:
            raise ValueError("slot-broke-2024")

        QTimer.singleShot(0, on_click)
        qtbot.waitUntil(lambda: visible_error_box(reporter) is not None, timeout=5_000)
        QTimer.singleShot(0, on_click)  # a repeat: counted in the open dialog, no second one
        qtbot.waitUntil(lambda: reporter.shown == shown_before + 2, timeout=5_000)
    finally:
        uninstall()
    box = visible_error_box(reporter)
    assert box is not None
    assert "ValueError: slot-broke-2024" in box.text()
    assert "1 more error(s) since" in box.informativeText()
    assert "in on_click" in box.detailedText()
    dialogs = [w for w in window.findChildren(QMessageBox) if w.isVisible()]
    assert dialogs == [box]
    assert [str(e) for e in printed] == ["slot-broke-2024", "slot-broke-2024"]
    assert log_path.read_text(encoding="utf-8").count("ValueError: slot-broke-2024") == 2
    # The event loop and the window still work: the user can start a new chat.
    window.new_chat_action.trigger()
    assert window.chat_id is None and window.isVisible()


@pytest.mark.qt_log_ignore("Painter not active")
def test_a_qt_warning_goes_to_the_log_and_still_to_pytest_qt(
    qtbot: QtBot, log_path: Path, qtlog: object
) -> None:
    uninstall = install_qt_message_handler()
    try:
        QPainter().end()  # a genuine Qt warning: "QPainter::end: Painter not active, aborted"
    finally:
        uninstall()
    text = log_path.read_text(encoding="utf-8")
    assert "WARNING" in text and "leancoder.qt: QPainter::end: Painter not active" in text
    records = qtlog.records  # type: ignore[attr-defined]
    assert any("Painter not active" in record.message for record in records)


def test_a_qt_warning_in_the_app_path_is_logged_and_printed(tmp_path: Path) -> None:
    """Without pytest-qt's handler (as in the real app) the log's stderr output prints it."""
    script = textwrap.dedent(
        """
        from PySide6.QtGui import QPainter
        from PySide6.QtWidgets import QApplication
        from app.core.storage import logs
        from app.ui.application import install_qt_message_handler
        logs.setup_logging("info")
        app = QApplication([])
        install_qt_message_handler()
        QPainter().end()
        """
    )
    env = {**os.environ, "LEANCODER_DATA_DIR": str(tmp_path), "QT_QPA_PLATFORM": "offscreen"}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=env
    )
    assert done.returncode == 0, done.stderr
    assert "QPainter::end: Painter not active" in done.stderr
    text = (tmp_path / "logs" / logs.LOG_FILE_NAME).read_text(encoding="utf-8")
    assert "leancoder.qt: QPainter::end: Painter not active" in text


class _UrlCatcher(QObject):
    """Registered for file: URLs with QDesktopServices.setUrlHandler, so the test sees what the
    window asks the desktop to open instead of a file manager opening."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[QUrl] = []

    @Slot(QUrl)
    def open_url(self, url: QUrl) -> None:
        self.urls.append(url)


def test_help_opens_the_log_folder(
    qtbot: QtBot, make_window: WindowFactory, log_path: Path
) -> None:
    window = make_window(load=False)
    [help_menu] = [a.menu() for a in window.menuBar().actions() if a.text() == "&Help"]
    assert isinstance(help_menu, QMenu)
    help_texts = [a.text() for a in help_menu.actions() if not a.isSeparator()]
    assert help_texts == ["Open log folder", "About LeanCoder"]
    catcher = _UrlCatcher()
    QDesktopServices.setUrlHandler("file", catcher, "open_url")  # type: ignore[arg-type]
    try:
        window.help_menu.open_log_action.trigger()
    finally:
        QDesktopServices.unsetUrlHandler("file")
    assert [Path(url.toLocalFile()) for url in catcher.urls] == [log_path.parent]


def test_about_shows_the_versions(qtbot: QtBot, make_window: WindowFactory) -> None:
    window = make_window(load=False)
    box = window.help_menu.show_about()
    try:
        qtbot.waitUntil(box.isVisible, timeout=5_000)
        text = box.informativeText()
        assert f"llama-cpp-python: {metadata.version('llama-cpp-python')}" in text
        assert f"Qt: {qVersion()}" in text
        assert f"Python: {platform.python_version()}" in text
        assert "LeanCoder: " in text and "llama.cpp backends: " in text
    finally:
        box.close()
