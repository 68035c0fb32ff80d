"""Running the app on uvicorn, on its own thread: the window, `leancoder serve` and tests.

uvicorn's own access log is off (it would print client addresses and paths for every token
stream); the app logs what a user may want, gated for content. The connection limit stays above
the model queue so that an over-full queue answers with its own 503, not a dropped connection.
"""

from __future__ import annotations

import threading
import time

import uvicorn
from starlette.applications import Starlette

from app.core.errors import LeanCoderError
from app.server.config import ServerConfig

CONNECTION_HEADROOM = 32  # connections beyond the queue (health checks, model lists)


def uvicorn_config(app: Starlette, config: ServerConfig) -> uvicorn.Config:
    """How LeanCoder runs uvicorn, here and in app.server.hosted (the window's pool thread)."""
    return uvicorn.Config(
        app,
        host=config.host,
        port=config.port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        server_header=False,
        limit_concurrency=config.queue_limit + 1 + CONNECTION_HEADROOM,
        timeout_graceful_shutdown=3,
    )


def _uvicorn(app: Starlette, config: ServerConfig) -> uvicorn.Server:
    return uvicorn.Server(uvicorn_config(app, config))


def server_url(host: str, port: int) -> str:
    """The /v1 base URL clients use for a server listening on `host`:`port`."""
    shown = f"[{host}]" if ":" in host else ("127.0.0.1" if host in ("0.0.0.0", "") else host)
    return f"http://{shown}:{port}/v1"


class ServerThread:
    """uvicorn on a daemon thread; `url` once `start()` returned."""

    def __init__(self, app: Starlette, config: ServerConfig) -> None:
        config.check()
        self.config = config
        self._server = _uvicorn(app, config)
        self._thread = threading.Thread(target=self._server.run, name="leancoder-api", daemon=True)
        self.port = 0

    def start(self, timeout: float = 15.0) -> str:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive():
                raise LeanCoderError(
                    f"The API server could not listen on {self.config.host}:{self.config.port} "
                    "(is the port in use?)."
                )
            if time.monotonic() > deadline:
                raise LeanCoderError("The API server did not start in time.")
            time.sleep(0.02)
        sockets = self._server.servers[0].sockets
        self.port = int(sockets[0].getsockname()[1])
        return self.url

    @property
    def url(self) -> str:
        return server_url(self.config.host, self.port)

    def wait(self) -> None:
        """Until the server ends (Ctrl+C reaches the calling thread as KeyboardInterrupt)."""
        while self._thread.is_alive():
            self._thread.join(0.5)

    def stop(self, timeout: float = 10.0) -> bool:
        self._server.should_exit = True
        self._thread.join(timeout)
        return not self._thread.is_alive()


