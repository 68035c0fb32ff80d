"""Unexpected errors, shown to the user: a dialog with the details collapsed and the log's path.

An unexpected error is a bug, not something the user did, so the dialog says the app keeps running
and where the log is (for a bug report). Errors may come from any thread (the exception hooks, the
model worker); `ErrorReporter` lives on the GUI thread and its signal queues them there. While a
dialog is open, further errors only count up in it: a bug that repeats per frame must not open
a dialog per frame.

Signals (ErrorReporter):
    errorRaised(str, str)   a one-line summary and the details (a traceback); any thread
"""

from __future__ import annotations

from pathlib import Path

import shiboken6
from PySide6.QtCore import QObject, Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

from app.core.storage import logs

TITLE = "Unexpected error"
REPORTER_NAME = "leancoder-error-reporter"


def current_log_folder() -> Path:
    """The folder of this process's log file (the platform's log folder before logging is set
    up); created, so it can be opened."""
    path = logs.log_file()
    folder = path.parent if path is not None else logs.log_dir()
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def open_log_folder() -> bool:
    """Show the log folder in the platform's file manager; False when none could be opened."""
    return QDesktopServices.openUrl(QUrl.fromLocalFile(str(current_log_folder())))


def _where_text() -> str:
    path = logs.log_file()
    if path is None:
        return "LeanCoder is running without a log file."
    return f"The details are also in the log:\n{path}"


def unexpected_error_box(parent: QWidget | None, summary: str, details: str) -> QMessageBox:
    """A non-blocking dialog; the app stays usable behind it. Details start collapsed."""
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Critical)
    box.setWindowTitle(TITLE)
    box.setText(f"Something went wrong inside LeanCoder; it keeps running.\n\n{summary}")
    box.setInformativeText(_where_text())
    box.setDetailedText(details)
    box.setStandardButtons(QMessageBox.StandardButton.Ok)
    folder_button = box.addButton("Open log folder", QMessageBox.ButtonRole.ActionRole)
    folder_button.clicked.connect(open_log_folder)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.open()
    return box


class ErrorReporter(QObject):
    errorRaised = Signal(str, str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.box: QMessageBox | None = None
        self.shown = 0  # errors reported, in a dialog or counted in one
        self._repeats = 0
        self.errorRaised.connect(self._show)

    def report(self, summary: str, details: str) -> None:
        """Thread-safe: the dialog opens on the GUI thread."""
        self.errorRaised.emit(summary, details)

    def _show(self, summary: str, details: str) -> None:
        self.shown += 1
        if self.box is not None and shiboken6.isValid(self.box) and self.box.isVisible():
            self._repeats += 1
            self.box.setInformativeText(
                f"{self._repeats} more error(s) since; all are in the log.\n\n{_where_text()}"
            )
            return
        self._repeats = 0
        self.box = unexpected_error_box(_dialog_parent(), summary, details)


def app_error_reporter() -> ErrorReporter:
    """The application's one reporter (so all unexpected errors share one dialog); call it on
    the GUI thread, after the QApplication exists."""
    app = QApplication.instance()
    if app is None:
        raise RuntimeError("app_error_reporter() needs a QApplication")
    reporter = app.findChild(ErrorReporter, REPORTER_NAME)
    if reporter is None:
        reporter = ErrorReporter(app)
        reporter.setObjectName(REPORTER_NAME)
    return reporter


def _dialog_parent() -> QWidget | None:
    """The window the user is in, else the first visible top-level window (the main window)."""
    active = QApplication.activeWindow()
    if active is not None:
        return active
    for widget in QApplication.topLevelWidgets():
        if widget.isVisible() and not isinstance(widget, QMessageBox):
            return widget
    return None
