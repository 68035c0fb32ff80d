"""Start the Qt application and its event loop.

No coroutine runs in the window today, so the loop is Qt's own; qasync (a dependency) is how a
coroutine front end, such as the local API server planned next, will share this loop.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from importlib import resources

from PySide6.QtCore import (
    QCoreApplication,
    QEvent,
    QMessageLogContext,
    QtMsgType,
    qInstallMessageHandler,
)
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from app.core.models.starter import STARTER_KEY
from app.core.session.load_plan import usable_last_model
from app.core.storage import logs, paths
from app.core.storage.chat_store import ChatStore
from app.core.storage.settings import Settings
from app.ui.error_dialog import app_error_reporter
from app.ui.main_window import MainWindow
from app.ui.tasks import shutdown_app_task_pool

log = logging.getLogger(__name__)

QT_LEVELS = {
    QtMsgType.QtDebugMsg: logging.DEBUG,
    QtMsgType.QtInfoMsg: logging.INFO,
    QtMsgType.QtWarningMsg: logging.WARNING,
    QtMsgType.QtCriticalMsg: logging.ERROR,
    QtMsgType.QtFatalMsg: logging.CRITICAL,
}


def app_icon() -> QIcon:
    icon_file = resources.files("app.ui").joinpath("icon.svg")
    return QIcon(str(icon_file))


def create_main_window(model: str | None = None, autoload: bool = True) -> MainWindow:
    settings_path = paths.settings_path()
    settings = Settings.load(settings_path)
    store = ChatStore(paths.chats_db_path())
    window = MainWindow(store, settings, settings_path)
    window.setWindowIcon(app_icon())
    window.state.restore()  # geometry, docks, the code folder and its ticks, Propose edits
    window.open_latest_chat()
    spec = model or (default_model_spec(settings) if autoload else None)
    if spec:
        window.load_model(spec)
    return window


def default_model_spec(settings: Settings) -> str | None:
    """The model to load at start: the last one used if it still exists, else the starter."""
    from app.core.models.starter import starter_model_path

    last = usable_last_model(settings)
    return last or (STARTER_KEY if starter_model_path() is not None else None)


def install_qt_message_handler() -> Callable[[], None]:
    """Route Qt's own messages (warnings about widgets, fonts, plugins) into the log. The handler
    that was installed before (pytest-qt's, in tests) still gets every message, so Qt warnings
    keep failing tests; with none before, the log's stderr output replaces Qt's own printing.
    Returns a function that puts the previous handler back."""
    qt_log = logging.getLogger("leancoder.qt")
    previous: list[Callable[[QtMsgType, QMessageLogContext, str], None] | None] = [None]

    def handler(mode: QtMsgType, context: QMessageLogContext, message: str) -> None:
        category = context.category or ""
        where = f" [{category}]" if category and category != "default" else ""
        qt_log.log(QT_LEVELS.get(mode, logging.WARNING), "%s%s", message, where)
        if previous[0] is not None:
            previous[0](mode, context, message)

    previous[0] = qInstallMessageHandler(handler)

    def uninstall() -> None:
        qInstallMessageHandler(previous[0])

    return uninstall


def _recover_interrupted_edits(window: MainWindow) -> None:
    """An apply or undo killed halfway (power cut, kill -9) is put back at start, in every folder
    it touched; the user is told what happened. Without one this is a single directory glob."""
    from app.core.edits.journal import recover_interrupted

    try:
        recoveries = recover_interrupted(None)
    except OSError as exc:  # the undo folder is unreadable: the next apply there says so
        log.warning("could not look for interrupted edits: %s", exc)
        return
    for recovery in recoveries:
        log.info("recovered an interrupted edit: %s", recovery.describe())
        window.statusBar().showMessage(recovery.describe(), 15000)


def run_gui(model: str | None = None) -> int:
    """The window's event loop. Logging is set up by the caller (app.cli.main)."""
    app = QApplication.instance() or QApplication(sys.argv)
    assert isinstance(app, QApplication)
    app.setApplicationName("LeanCoder")
    app.setOrganizationName("LeanCoder")
    app.setWindowIcon(app_icon())
    restore_qt_handler = install_qt_message_handler()
    # An exception nobody caught (in a slot, a paint event, a thread) is logged and shown in a
    # dialog; the event loop goes on, so the user loses nothing.
    restore_hooks = logs.install_exception_hooks(app_error_reporter().report)
    window = create_main_window(model)
    _recover_interrupted_edits(window)
    # last_model is written only once a load completes, so it is still unset on a first run here.
    first_run = model is None and window.settings.last_model is None
    window.show()
    if first_run:  # the starter loads meanwhile, so the app is usable even if this is closed
        window.model_menu.open_wizard()
    app.exec()
    # Background jobs (a download, a folder scan) are cancelled and get a moment to stop; the
    # model worker was stopped by the window's close.
    jobs_ended = shutdown_app_task_pool()
    window.store.close()
    # Delete the window here, on the GUI thread: left to Python's cycle collector it may be freed
    # from the model thread, which PySide turns into a crash.
    window.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    restore_hooks()
    restore_qt_handler()
    if not jobs_ended:
        _exit_without_stuck_jobs()
    return 0


def _exit_without_stuck_jobs() -> None:
    """A job that ignored its cancel flag (a read stuck on a dead network share) would keep the
    interpreter waiting for its thread forever at exit; end the process instead. Nothing is lost:
    the chats are saved and closed, and a download's partial file resumes next time."""
    log.warning("exiting without waiting for background jobs that did not stop")
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(0)
