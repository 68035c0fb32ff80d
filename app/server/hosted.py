"""The API server on a thread its host provides: the window runs it as one job of its TaskPool.

The window has one way to run background work (app.ui.tasks.TaskPool: a job gets a cancel flag,
its end comes back on the GUI thread) and no thread of its own, so the server cannot bring one
the way `ServerThread` does. `HostedServer.run(cancel)` is that job: uvicorn serves on the calling
thread until `cancel` is set (TaskPool.shutdown sets it at quit) or `stop()` is called, checked on
uvicorn's own 0.1 s tick, then closes its connections (within uvicorn's graceful timeout) and
returns. `on_started(url)` is called on the serving thread once the socket listens.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable

import uvicorn
from starlette.applications import Starlette

from app.core.errors import LeanCoderError
from app.server.config import ServerConfig
from app.server.runner import server_url, uvicorn_config


class _HostedUvicorn(uvicorn.Server):
    """uvicorn that also ends on a flag and reports its URL once listening."""

    def __init__(self, host: HostedServer, cancel: threading.Event) -> None:
        super().__init__(host.uvicorn_config)
        self._host = host
        self._cancel = cancel

    async def on_tick(self, counter: int) -> bool:
        if self._cancel.is_set() or self._host.stopping:
            self.should_exit = True
        if self.started and not self._host.url:
            self._host.listening(int(self.servers[0].sockets[0].getsockname()[1]))
        return await super().on_tick(counter)


class HostedServer:
    def __init__(
        self,
        app: Starlette,
        config: ServerConfig,
        on_started: Callable[[str], None] | None = None,
    ) -> None:
        config.check()
        self.config = config
        self.uvicorn_config = uvicorn_config(app, config)
        self._on_started = on_started
        self._stop = threading.Event()
        self.url = ""

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run(self, cancel: threading.Event) -> str:
        """Serve until `cancel` or `stop()`; returns the URL it served. Raises LeanCoderError
        when it could not listen (the port in use, an address not on this machine)."""
        # SystemExit is uvicorn's answer to a socket it cannot bind (it logged why).
        with contextlib.suppress(SystemExit):
            _HostedUvicorn(self, cancel).run()
        if not self.url and not (cancel.is_set() or self.stopping):
            raise LeanCoderError(
                f"The API server could not listen on {self.config.host}:{self.config.port} "
                "(is the port in use by another program?)."
            )
        return self.url

    def listening(self, port: int) -> None:
        self.url = server_url(self.config.host, port)
        if self._on_started is not None:
            self._on_started(self.url)

    def stop(self) -> None:
        """Ask the serving thread to stop (any thread); `run` returns shortly after."""
        self._stop.set()
