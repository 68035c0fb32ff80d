"""A small, real OpenAI-compatible server on loopback that misbehaves on purpose.

It speaks just enough of llama-server's API for a RemoteEngine to connect (`/v1/models`,
`/props` with a ChatML template and `n_ctx`, `/tokenize`) and streams raw completions whose
*content* is scripted (named as such: the words below, not a model's), so the tests can make the
stream misbehave at a chosen point:

    ok       the scripted words, a finish_reason, `data: [DONE]`
    stall    `after` words, then silence with the connection held open (until the test ends)
    drop     `after` words, then the socket is closed without ending the chunked body
    no_end   `after` words, then a clean end of the body with no finish_reason and no [DONE]
    garbage  `after` words, then a line that is not JSON
    huge     `after` words, then a line longer than any event (the client must bound it)
    auth     every request answers 401 unless it carries `Bearer <api_key>`

Every request is recorded (method, path, JSON body) for the tests to inspect.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + "
    "message['content'] + '<|im_end|>\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SCRIPTED_WORDS = [" Scripted", " words", " from", " the", " fault", " server", "."]
MODEL = "fault-model"


@dataclass
class FaultConfig:
    mode: str = "ok"
    after: int = 3
    api_key: str | None = None
    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    usage: dict[str, int] | None = None  # sent in the last event, as llama-server does
    timings: dict[str, int] | None = None
    release: threading.Event = field(default_factory=threading.Event)


def _handler(config: FaultConfig) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def _body(self) -> Any:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            return json.loads(raw) if raw else None

        def _json(self, status: int, data: Any) -> None:
            raw = json.dumps(data).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def _authorised(self) -> bool:
            if config.mode != "auth":
                return True
            if self.headers.get("Authorization") == f"Bearer {config.api_key}":
                return True
            self._json(401, {"error": {"message": "Invalid API key", "type": "auth"}})
            return False

        def do_GET(self) -> None:
            config.requests.append(("GET", self.path, None))
            if not self._authorised():
                return
            if self.path == "/v1/models":
                self._json(200, {"object": "list", "data": [{"id": MODEL, "object": "model"}]})
            elif self.path == "/props":
                self._json(200, {"chat_template": CHATML, "default_generation_settings":
                                 {"n_ctx": 2048}})  # fmt: skip
            else:
                self._json(404, {"error": {"message": "not found"}})

        def do_POST(self) -> None:
            body = self._body()
            config.requests.append(("POST", self.path, body))
            if not self._authorised():
                return
            if self.path == "/tokenize":
                # One "token" per character: enough for counts, and honest about being scripted.
                self._json(200, {"tokens": [ord(c) for c in body.get("content", "")]})
            elif self.path == "/v1/completions":
                self._stream()
            else:
                self._json(404, {"error": {"message": "not found"}})

        def _chunk(self, data: bytes) -> None:
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

        def _event(self, payload: str) -> None:
            self._chunk(f"data: {payload}\n\n".encode())

        def _stream(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            complete = config.mode in ("ok", "auth")
            words = SCRIPTED_WORDS if complete else SCRIPTED_WORDS[: config.after]
            for word in words:
                self._event(json.dumps({"choices": [{"text": word, "finish_reason": None}]}))
            if complete:
                last: dict[str, Any] = {"choices": [{"text": "", "finish_reason": "stop"}]}
                if config.timings is not None:
                    last["timings"] = config.timings
                self._event(json.dumps(last))
                if config.usage is not None:
                    self._event(json.dumps({"choices": [], "usage": config.usage}))
                self._event("[DONE]")
                self._chunk(b"")
            elif config.mode == "stall":
                config.release.wait(30)
            elif config.mode == "drop":
                self.connection.shutdown(socket.SHUT_RDWR)
            elif config.mode == "no_end":
                self._chunk(b"")
            elif config.mode == "garbage":
                self._chunk(b"data: {not json\n\n")
                self._chunk(b"")
            elif config.mode == "huge":
                for _ in range(40):  # 2.5 MiB without a newline
                    self._chunk(b"x" * 65536)
                self._chunk(b"")
            self.close_connection = True

    return Handler


@contextmanager
def fault_server(config: FaultConfig) -> Iterator[str]:
    """Serve on 127.0.0.1; yields the base URL (`http://127.0.0.1:PORT/v1`)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(config))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        config.release.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def unused_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    time.sleep(0.01)
    return int(port)
