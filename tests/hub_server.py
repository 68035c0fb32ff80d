"""A real HTTP server on loopback that speaks the part of the Hugging Face hub protocol that
huggingface_hub's downloads use, plus a tiny forward proxy.

The hub side (read from huggingface_hub 2.x `get_hf_file_metadata` / `hf_raise_for_status`):

    HEAD|GET /OWNER/NAME/resolve/REVISION/FILE
        302 to the CDN, with X-Repo-Commit, X-Linked-Etag (the file's SHA-256, quoted),
        X-Linked-Size, ETag (the git pointer's id) and Location. Errors carry X-Error-Code
        (RepoNotFound, RevisionNotFound, EntryNotFound, GatedRepo), as the hub's do.

The CDN side is a second server (another origin, so huggingface_hub stops at the redirect and
drops the Authorization header, as with the real CDN):

    HEAD|GET /blobs/SHA256   200, or 206 with Content-Range for `Range: bytes=START-[END]`

Knobs: drop the connection mid-file, serve wrong bytes, throttle, advertise a fake size, require
a token; every request is recorded (method, path, headers, which server).
"""

from __future__ import annotations

import hashlib
import http.client
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

COMMIT = "0123456789abcdef0123456789abcdef01234567"
REPO = "acme/tiny-GGUF"  # what the test fixtures serve the starter GGUF as
FILE = "tiny.gguf"
SPEC = f"{REPO}/{FILE}"
SEND_BLOCK = 64 * 1024


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class HubEntry:
    repo: str
    filename: str
    path: Path
    sha256: str
    size: int
    advertised_size: int | None = None  # X-Linked-Size to claim instead of the real size
    token: str | None = None  # a gated repo: this bearer token is required


@dataclass(frozen=True)
class Recorded:
    server: str  # "hub", "cdn" or "proxy"
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class Knobs:
    drops: int = 0  # how many CDN responses to cut off ...
    drop_after: int = 0  # ... after sending this many body bytes
    corrupt: bool = False  # flip one byte in the middle of the file
    throttle_bps: float | None = None  # bytes per second per response
    ignore_range: bool = False  # answer Range requests with the whole file (200)


@dataclass
class FakeHub:
    tls: ssl.SSLContext | None = None
    entries: dict[tuple[str, str], HubEntry] = field(default_factory=dict)
    knobs: Knobs = field(default_factory=Knobs)
    requests: list[Recorded] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _servers: list[ThreadingHTTPServer] = field(default_factory=list)
    endpoint: str = ""
    cdn_base: str = ""

    def add(self, repo: str, filename: str, path: Path, sha256: str | None = None,
            **extra: Any) -> HubEntry:  # fmt: skip
        entry = HubEntry(repo, filename, path, sha256 or sha256_of(path), path.stat().st_size)
        for key, value in extra.items():
            setattr(entry, key, value)
        self.entries[(repo, filename)] = entry
        return entry

    def record(self, server: str, handler: BaseHTTPRequestHandler) -> None:
        headers = {k.lower(): v for k, v in handler.headers.items()}
        with self._lock:
            self.requests.append(Recorded(server, handler.command, handler.path, headers))

    def seen(self, server: str | None = None, method: str | None = None) -> list[Recorded]:
        with self._lock:
            return [
                r for r in self.requests
                if (server is None or r.server == server) and (method is None or r.method == method)
            ]  # fmt: skip

    def by_sha(self, sha: str) -> HubEntry | None:
        return next((e for e in self.entries.values() if e.sha256 == sha), None)

    def take_drop(self) -> bool:
        with self._lock:
            if self.knobs.drops > 0:
                self.knobs.drops -= 1
                return True
            return False

    @contextmanager
    def running(self) -> Iterator[FakeHub]:
        scheme = "https" if self.tls else "http"
        hub = _serve(_HubHandler, self)
        cdn = _serve(_CdnHandler, self)
        self._servers = [hub, cdn]
        self.endpoint = f"{scheme}://127.0.0.1:{hub.server_address[1]}"
        self.cdn_base = f"{scheme}://127.0.0.1:{cdn.server_address[1]}"
        try:
            yield self
        finally:
            for server in self._servers:
                server.shutdown()
                server.server_close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeHub

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # connections the tests cut on purpose, or clients that hang up, are not errors


def _serve(handler: type[BaseHTTPRequestHandler], fake: FakeHub) -> _Server:
    server = _Server(("127.0.0.1", 0), handler)
    server.fake = fake
    if fake.tls is not None:
        server.socket = fake.tls.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return server


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet test output
        pass

    def reply(self, status: int, headers: dict[str, str], body: bytes = b"") -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)


class _HubHandler(_Handler):
    def do_HEAD(self) -> None:
        self.resolve()

    def do_GET(self) -> None:
        self.resolve()

    def resolve(self) -> None:
        fake = self.server.fake
        fake.record("hub", self)
        parts = [unquote(p) for p in urlsplit(self.path).path.split("/") if p]
        if len(parts) < 5 or parts[2] != "resolve":
            return self.reply(404, {"X-Error-Code": "RepoNotFound"}, b"not found")
        repo, revision, filename = f"{parts[0]}/{parts[1]}", parts[3], "/".join(parts[4:])
        if not any(r == repo for r, _ in fake.entries):
            return self.reply(401, {"X-Error-Code": "RepoNotFound"}, b"repository not found")
        if revision not in ("main", COMMIT):
            return self.reply(404, {"X-Error-Code": "RevisionNotFound"}, b"no such revision")
        entry = fake.entries.get((repo, filename))
        if entry is None:
            return self.reply(
                404, {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": COMMIT}, b"no such file"
            )
        if entry.token is not None:
            auth = self.headers.get("Authorization")
            if auth is None:
                return self.reply(401, {"X-Error-Code": "GatedRepo"}, b"gated")
            if auth != f"Bearer {entry.token}":
                message = "Invalid credentials in Authorization header"
                return self.reply(401, {"X-Error-Message": message}, b"bad token")
        self.reply(
            302,
            {
                "X-Repo-Commit": COMMIT,
                "X-Linked-Etag": f'"{entry.sha256}"',
                "X-Linked-Size": str(entry.advertised_size or entry.size),
                "ETag": '"1f2e3d4c5b6a79881f2e3d4c5b6a79881f2e3d4c"',
                "Location": f"{fake.cdn_base}/blobs/{entry.sha256}",
            },
        )


class _CdnHandler(_Handler):
    def do_HEAD(self) -> None:
        self.serve_blob()

    def do_GET(self) -> None:
        self.serve_blob()

    def serve_blob(self) -> None:
        fake = self.server.fake
        fake.record("cdn", self)
        sha = urlsplit(self.path).path.rsplit("/", 1)[-1]
        entry = fake.by_sha(sha)
        if entry is None:
            return self.reply(404, {}, b"no such blob")
        start, end = 0, entry.size - 1
        wanted = self.headers.get("Range")
        partial = wanted is not None and not fake.knobs.ignore_range
        if partial:
            assert wanted is not None
            first, _, last = wanted.removeprefix("bytes=").partition("-")
            start, end = int(first), int(last) if last else entry.size - 1
            if start >= entry.size:
                return self.reply(416, {"Content-Range": f"bytes */{entry.size}"})
        self.send_response(206 if partial else 200)
        if partial:
            self.send_header("Content-Range", f"bytes {start}-{end}/{entry.size}")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("ETag", f'"{entry.sha256}"')
        self.send_header("Content-Length", str(end - start + 1))
        self.end_headers()
        if self.command == "HEAD":
            return None
        self.stream(entry, start, end)

    def stream(self, entry: HubEntry, start: int, end: int) -> None:
        fake = self.server.fake
        knobs = fake.knobs
        drop_at = knobs.drop_after if fake.take_drop() else None
        middle = entry.size // 2
        sent = 0
        began = time.monotonic()
        with entry.path.open("rb") as source:
            source.seek(start)
            position = start
            while position <= end:
                block = bytearray(source.read(min(SEND_BLOCK, end - position + 1)))
                if knobs.corrupt and position <= middle < position + len(block):
                    block[middle - position] ^= 0xFF
                if drop_at is not None and sent + len(block) > drop_at:
                    self.wfile.write(block[: drop_at - sent])
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)  # mid-body: the client sees EOF
                    self.close_connection = True
                    return
                try:
                    self.wfile.write(block)
                except (BrokenPipeError, ConnectionResetError):  # the client went away
                    self.close_connection = True
                    return
                sent += len(block)
                position += len(block)
                if knobs.throttle_bps:
                    ahead = sent / knobs.throttle_bps - (time.monotonic() - began)
                    if ahead > 0:
                        time.sleep(ahead)


# -- a forward proxy ---------------------------------------------------------------------------


@dataclass
class ForwardProxy:
    """Relays absolute-form HTTP requests (`GET http://host:port/path`) and records them."""

    requests: list[Recorded] = field(default_factory=list)
    url: str = ""

    @contextmanager
    def running(self) -> Iterator[ForwardProxy]:
        server = _ProxyServer(("127.0.0.1", 0), _ProxyHandler)
        server.proxy = self
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True
    proxy: ForwardProxy


_HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "proxy-authorization", "te",
               "trailers", "transfer-encoding", "upgrade"}  # fmt: skip


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _ProxyServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_HEAD(self) -> None:
        self.relay()

    def do_GET(self) -> None:
        self.relay()

    def relay(self) -> None:
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.server.proxy.requests.append(Recorded("proxy", self.command, self.path, headers))
        target = urlsplit(self.path)
        if target.scheme != "http" or not target.hostname:
            self.send_error(400, "absolute http:// URL expected")
            return
        upstream = http.client.HTTPConnection(target.hostname, target.port or 80, timeout=30)
        path = target.path + (f"?{target.query}" if target.query else "")
        forwarded = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        upstream.request(self.command, path, headers=forwarded)
        response = upstream.getresponse()
        self.send_response(response.status, response.reason)
        for key, value in response.getheaders():
            if key.lower() not in _HOP_BY_HOP:
                self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            while block := response.read(SEND_BLOCK):
                self.wfile.write(block)
        upstream.close()
