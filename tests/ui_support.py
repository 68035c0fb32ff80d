"""Window fixtures and helpers shared by the pytest-qt tests (fixtures re-exported by conftest)."""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import shiboken6
from PySide6.QtCore import QCoreApplication, QEvent, Qt
from PySide6.QtWidgets import QApplication, QWidget
from pytestqt.qtbot import QtBot

from app.core.storage.chat_store import StoredMessage
from app.ui.application import create_main_window
from app.ui.main_window import MainWindow

LOAD_TIMEOUT_MS = 30_000
LONG_PROMPT = "Write a long story about a robot"
SHORT_PROMPT = "Say hello in one short sentence."
WORKER_THREAD = "leancoder-model"

WindowFactory = Callable[..., MainWindow]


def _worker_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == WORKER_THREAD and t.is_alive()]


def _delete_now(widget: QWidget) -> None:
    """Destroy a top-level widget's C++ object here, on the GUI thread."""
    if shiboken6.isValid(widget):
        widget.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)


@pytest.fixture
def qt_garbage_on_gui_thread(qapp: QApplication) -> Iterator[None]:
    """Collect each test's Qt garbage on the GUI thread, before the next test starts a worker.

    A dropped top-level widget is in reference cycles (its connected slots), so only the cyclic GC
    frees it, on whichever thread happens to allocate: often the model worker thread. Shiboken
    6.11.3 then defers the C++ delete to the GUI thread and crashes there (SIGSEGV in
    BindingManager::runDeletionInMainThread, reproducible with a bare MainWindow or ModelPicker).
    """
    yield
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    gc.collect()


@pytest.fixture
def make_window(
    qtbot: QtBot, data_dir: Path, starter_path: Path, qt_garbage_on_gui_thread: None
) -> Iterator[WindowFactory]:
    """Opens main windows on the test's private data dir; closes them (and their stores) after."""
    windows: list[MainWindow] = []

    def make(n_ctx: int = 1024, load: bool = True) -> MainWindow:
        window = create_main_window(autoload=False)
        windows.append(window)
        # A small context bounds the longest reply (the window sends no max_tokens).
        window.settings.n_ctx = n_ctx
        window.show()
        qtbot.waitExposed(window)
        if load:
            load_starter(qtbot, window)
        return window

    before = len(_worker_threads())
    yield make
    for window in windows:
        box = window.error_box
        if box is not None and shiboken6.isValid(box):
            box.close()
        window.close()  # stops generating and ends the model worker thread
        window.store.close()
        _delete_now(window)
    windows.clear()
    assert len(_worker_threads()) == before, "a window left its model worker thread running"


def load_starter(qtbot: QtBot, window: MainWindow) -> None:
    with qtbot.waitSignal(window.bridge.modelLoaded, timeout=LOAD_TIMEOUT_MS):
        window.load_model("starter")
    # The signal may reach the test's slot before the window's queued slot has run.
    qtbot.waitUntil(lambda: window.send_button.isEnabled(), timeout=5_000)
    assert window.model_info is not None


def type_and_send(qtbot: QtBot, window: MainWindow, text: str, enter: bool = True) -> None:
    qtbot.keyClicks(window.prompt, text)
    assert window.prompt.toPlainText() == text
    if enter:
        qtbot.keyClick(window.prompt, Qt.Key.Key_Return)
    else:
        qtbot.mouseClick(window.send_button, Qt.MouseButton.LeftButton)
    assert window.generating
    assert window.prompt.toPlainText() == ""


def wait_reply_done(qtbot: QtBot, window: MainWindow, timeout_ms: int = 40_000) -> None:
    qtbot.waitUntil(lambda: not window.generating, timeout=timeout_ms)


def stored(window: MainWindow) -> list[StoredMessage]:
    assert window.chat_id is not None
    return window.store.messages(window.chat_id)
