"""The window's Local server switch: the loaded model served to coding tools (issue #13).

A checkable menu item starts the OpenAI-compatible API (app.server) over the window's own model
worker, so the window and every tool share one model and one queue: a window chat waits behind
an API request and an API request waits behind a window chat, and the status bar says which waits
for what. The indicator shows the URL, the requests served and the client being served (its
User-Agent), refreshed on every change of the server's activity (delivered here through a queued
signal: activity changes on the worker and server threads) and four times a second while serving,
since the window's own chat starting or ending is no server activity.

The server runs as one job of the app's TaskPool (app.server.hosted.HostedServer), not on a
thread of its own; quitting cancels it like any pool job. It serves models loaded on this
machine: with a remote engine connected it refuses to start, and connecting one stops it.
"""

from __future__ import annotations

import logging
import socket
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QLabel, QMenu

from app.core.errors import LeanCoderError
from app.core.llm.engine import Engine, ModelInfo
from app.server.app import create_app
from app.server.config import ServerConfig
from app.server.hosted import HostedServer
from app.server.model_service import ActivitySnapshot, ModelService
from app.server.settings import load_server_settings, server_api_key
from app.ui.dialog_geometry import fit_and_centre
from app.ui.server_settings_dialog import ServerSettingsDialog
from app.ui.tasks import Task, app_task_pool

if TYPE_CHECKING:
    from app.ui.main_window import MainWindow

log = logging.getLogger(__name__)
CLIENT_CHARS = 40  # of a User-Agent shown in the status bar
WAIT_REFRESH_MS = 250  # the indicator follows the window's own chat this often


class ServerSwitch(QObject):
    """`action` (checkable) in `menu`; `indicator` in the status bar while serving."""

    activityChanged = Signal(object)  # ActivitySnapshot, from any thread
    started = Signal(str)  # the URL, once listening
    stopped = Signal(str)  # why ("" when asked to)

    def __init__(self, window: MainWindow, menu: QMenu) -> None:
        super().__init__(window)
        self._window = window
        # None: the saved settings (app.server.settings), read at each start; tests set one.
        self.config: ServerConfig | None = None
        self._restart = False  # new settings while serving: start again once stopped
        self.action = QAction("Local API server", window)
        self.action.setCheckable(True)
        self.action.setToolTip(
            "Serve the loaded model to coding tools (Continue, Aider, Cline, Zed) as an "
            "OpenAI-compatible API on this machine"
        )
        self.settings_action = QAction("Local API server settings…", window)
        self.settings_action.setToolTip("Port, other machines on the network and the API key, "
                                        "the default thinking policy, stream updates")  # fmt: skip
        menu.addSeparator()
        menu.addAction(self.action)
        menu.addAction(self.settings_action)
        self.indicator = QLabel("", window)
        self.indicator.hide()
        window.statusBar().addPermanentWidget(self.indicator)
        self.service: ModelService | None = None
        self.url = ""
        self._server: HostedServer | None = None
        self._task: Task[str] | None = None
        self._unsubscribe = lambda: None
        self._waits = QTimer(self)
        self._waits.setInterval(WAIT_REFRESH_MS)
        self._waits.timeout.connect(self.refresh)
        self.action.toggled.connect(self._toggled)
        self.settings_action.triggered.connect(self.open_settings)
        self.activityChanged.connect(lambda _snapshot: self.refresh())
        self.started.connect(self._on_started)
        window.bridge.modelLoaded.connect(self._model_changed)

    @property
    def serving(self) -> bool:
        return self._task is not None

    # -- on and off ----------------------------------------------------------------------------

    def _toggled(self, on: bool) -> None:
        if on and not self.serving:
            self.start()
        elif not on and self.serving:
            self.stop()

    def start(self) -> None:
        bridge = self._window.bridge
        engine = bridge.engine
        problem = ""
        if self._window.model_info is None:
            problem = "Load a model first: the local server serves the loaded model."
        elif not isinstance(engine, Engine):
            problem = "The local server serves models loaded on this machine, not a remote engine."
        if problem:
            self._set_checked(False)
            self._window.statusBar().showMessage(problem, 8000)
            return
        assert isinstance(engine, Engine)
        try:
            config = self.config or load_server_settings().config(server_api_key())
        except LeanCoderError as exc:
            self._set_checked(False)
            self._window.show_error(
                "Local server", f"{exc} Change it in Models → Local API server settings…"
            )
            return
        service = ModelService(engine, bridge.worker, queue_limit=config.queue_limit,
                               max_pending_chars=config.max_pending_chars,
                               stream_interval_s=config.stream_interval_ms / 1000)  # fmt: skip
        try:
            server = HostedServer(create_app(service, config), config, self.started.emit)
        except LeanCoderError as exc:
            self._set_checked(False)
            self._window.show_error("Local server", str(exc))
            return
        self.service, self._server = service, server
        self._unsubscribe = service.activity.subscribe(self.activityChanged.emit)
        self._task = app_task_pool().submit(
            "local API server", server.run, on_done=self._ended, on_error=self._failed,
            owner=self,
        )  # fmt: skip
        self.indicator.setText("Local server: starting…")
        self.indicator.show()

    def stop(self) -> None:
        """Stop serving (requests in flight are cancelled with their connections)."""
        if self._server is not None:
            self._server.stop()

    def shutdown(self, timeout_s: float = 5.0) -> None:
        """At window close, before the model worker ends: stop and wait for the server."""
        task = self._task
        self.stop()
        if task is not None and not task.wait(timeout_s):
            log.warning("the local API server did not stop within %.0f s", timeout_s)

    def _on_started(self, url: str) -> None:
        self.url = url
        self._waits.start()
        self.refresh()
        message = f"Serving the model at {url}"
        server = self._server
        if server is not None and server.config.wildcard:
            port = url.rsplit(":", 1)[1].split("/")[0]
            message += (f"; other machines: http://{socket.gethostname()}:{port}/v1 with the "
                        "API key")  # fmt: skip
        self._window.statusBar().showMessage(message, 12000)

    def _ended(self, _url: str) -> None:
        self._finish("")

    def _failed(self, exc: BaseException) -> None:
        message = str(exc) if isinstance(exc, LeanCoderError) else f"The server failed: {exc}"
        self._finish(message)
        self._window.show_error("Local server", message)

    def _finish(self, why: str) -> None:
        self._unsubscribe()
        self._unsubscribe = lambda: None
        self._waits.stop()
        self._task = self._server = self.service = None
        self.url = ""
        self._set_checked(False)
        self.indicator.hide()
        self.stopped.emit(why)
        if self._restart and not why:
            self._restart = False
            self._set_checked(True)
            self.start()
        self._restart = False

    # -- settings ------------------------------------------------------------------------------

    def open_settings(self) -> ServerSettingsDialog:
        """The settings dialog (modeless; returned for tests)."""
        dialog = ServerSettingsDialog(parent=self._window)
        dialog.saved.connect(lambda config: self.apply(config, dialog.note))
        fit_and_centre(dialog, self._window)
        dialog.open()
        return dialog

    def apply(self, config: ServerConfig, note: str = "") -> None:
        """Serve with `config` from now on; a running server restarts with it."""
        self.config = config
        message = "Local server settings saved."
        if self.serving:
            self._restart = True
            self.stop()
            message = "Local server settings saved: the server restarts with them."
        self._window.statusBar().showMessage(f"{message} {note}".strip(), 8000)

    def _model_changed(self, info: ModelInfo) -> None:
        engine = self._window.bridge.engine
        if self.service is None:
            return
        if isinstance(engine, Engine):
            self.service.engine = engine  # a local model loaded in place of another
            self.refresh()
        else:
            self._window.statusBar().showMessage(
                f"Local server stopped: {info.name or 'the remote model'} is a remote engine.", 8000
            )
            self.stop()

    def _set_checked(self, on: bool) -> None:
        self.action.blockSignals(True)
        self.action.setChecked(on)
        self.action.blockSignals(False)

    # -- the indicator -------------------------------------------------------------------------

    def refresh(self) -> None:
        if self.service is None or not self.url:
            return
        self.indicator.setText(self.describe(self.service.activity.snapshot()))
        self.indicator.setToolTip(
            f"OpenAI-compatible API at {self.url} (model id {self.service.model_id}); "
            "the window and the API take turns on the one model"
        )

    def describe(self, state: ActivitySnapshot) -> str:
        """The indicator's text for `state` and the window's own reply."""
        served = f"{state.served:,} request{'s' if state.served != 1 else ''} served"
        parts = [f"API {self.url}", served]
        client = state.client[:CLIENT_CHARS] or "a client"
        if state.busy:
            parts.append(f"serving {client}")
        window_busy = self._window.generating
        if window_busy and state.busy:
            parts.append(f"your chat waits for {client}")
        elif window_busy and state.waiting:
            waiting = f"{state.waiting} API request{'s wait' if state.waiting != 1 else ' waits'}"
            parts.append(f"{waiting} for your chat")
        elif state.waiting:
            parts.append(f"{state.waiting} waiting")
        return " · ".join(parts)
