"""Start the Qt application with its event loop running through qasync."""

from __future__ import annotations

import asyncio
import sys
from importlib import resources
from pathlib import Path

import qasync
from PySide6.QtCore import QCoreApplication, QEvent
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from app.core.models.starter import STARTER_KEY
from app.core.storage import paths
from app.core.storage.chat_store import ChatStore
from app.core.storage.settings import Settings
from app.ui.main_window import MainWindow


def app_icon() -> QIcon:
    icon_file = resources.files("app.ui").joinpath("icon.svg")
    return QIcon(str(icon_file))


def create_main_window(model: str | None = None, autoload: bool = True) -> MainWindow:
    settings_path = paths.settings_path()
    settings = Settings.load(settings_path)
    store = ChatStore(paths.chats_db_path())
    window = MainWindow(store, settings, settings_path)
    window.setWindowIcon(app_icon())
    window.open_latest_chat()
    spec = model or (default_model_spec(settings) if autoload else None)
    if spec:
        window.load_model(spec)
    return window


def default_model_spec(settings: Settings) -> str | None:
    """The model to load at start: the last one used if it still exists, else the starter."""
    last = settings.last_model
    if last and (last == STARTER_KEY or Path(last).exists()):
        return last
    from app.core.models.starter import starter_model_path

    return STARTER_KEY if starter_model_path() is not None else None


def run_gui(model: str | None = None) -> int:
    app = QApplication.instance() or QApplication(sys.argv)
    assert isinstance(app, QApplication)
    app.setApplicationName("LeanCoder")
    app.setOrganizationName("LeanCoder")
    app.setWindowIcon(app_icon())
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    closed = asyncio.Event()
    app.aboutToQuit.connect(closed.set)
    window = create_main_window(model)
    # last_model is written only once a load completes, so it is still unset on a first run here.
    first_run = model is None and window.settings.last_model is None
    window.show()
    if first_run:  # the starter loads meanwhile, so the app is usable even if this is closed
        window.model_menu.open_wizard()
    with loop:
        loop.run_until_complete(closed.wait())
    window.store.close()
    # Delete the window here, on the GUI thread: left to Python's cycle collector it may be freed
    # from the model thread, which PySide turns into a crash.
    window.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    return 0
