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

A file added with `lfs=False` is served like a small git file on the real hub: the resolve URL
answers 200 itself (no redirect, no X-Linked-*), with the git blob id as its ETag, and honours
`If-Range`.

Knobs: drop the connection mid-file, serve wrong bytes, throttle, advertise a fake size, require
a token, change the file after a drop, refuse ranges with 416, answer ranges with empty 206s,
override any header of the hub's answer, or script the CDN's replies one by one (the fuzz tests);
every request is recorded (method, path, headers, which server, when).
"""

from __future__ import annotations

import contextlib
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
    lfs: bool = True  # False: a plain git file, served by the hub itself with no SHA-256

    @property
    def etag(self) -> str:
        """The ETag the bytes are served with: the SHA-256 (LFS) or a git-style blob id."""
        return self.sha256 if self.lfs else hashlib.sha1(self.sha256.encode()).hexdigest()


@dataclass(frozen=True)
class Recorded:
    server: str  # "hub", "cdn" or "proxy"
    method: str
    path: str
    headers: dict[str, str]
    at: float = 0.0  # time.monotonic() when it arrived


@dataclass
class Knobs:
    drops: int = 0  # how many CDN responses to cut off ...
    drop_after: int = 0  # ... after sending this many body bytes
    corrupt: bool = False  # flip one byte in the middle of the file
    throttle_bps: float | None = None  # bytes per second per response
    ignore_range: bool = False  # answer Range requests with the whole file (200)
    swap_on_drop: Path | None = None  # after a drop, the file's content becomes this file's
    ignore_if_range: bool = False  # serve a range of whatever the file is now, changed or not
    range_416: int = 0  # answer this many Range requests with 416
    empty_206: bool = False  # answer Range requests with 206 and no body
    head: dict[str, str | None] = field(default_factory=dict)  # the hub's headers, overridden
    # (None removes one)
    cdn_script: list[Scripted | Misbehave] = field(default_factory=list)  # the next CDN
    # replies, in order; then the CDN behaves again


@dataclass(frozen=True)
class Misbehave:
    """One CDN reply built from the request: the file's bytes for the asked range, bent.

    body: right | short (half) | long (1,000 bytes too many) | empty | garbage (reversed bytes);
    content_range: right | wrong_start | garbage | none | wrong_total;
    etag: right | other | weak | none; length: body | more (announce 100 more, then hang up) |
    none (no Content-Length: the body ends when the connection closes)."""

    status: int = 206
    body: str = "right"
    content_range: str = "right"
    etag: str = "right"
    length: str = "body"

    def render(self, entry: HubEntry, wanted: str | None) -> Scripted:
        first, _, last = (wanted or "bytes=0-").removeprefix("bytes=").partition("-")
        start = int(first) if first.isdigit() else 0
        end = int(last) if last.isdigit() else entry.size - 1
        right = entry.path.read_bytes()[start : end + 1]
        body = {"right": right, "short": right[: len(right) // 2], "long": right + b"\x01" * 1000,
                "empty": b"", "garbage": right[::-1]}[self.body]  # fmt: skip
        headers: dict[str, str] = {}
        ranges = {"right": f"bytes {start}-{end}/{entry.size}",
                  "wrong_start": f"bytes {start + 7}-{end}/{entry.size}",
                  "garbage": "bytes x-y/z", "wrong_total": f"bytes {start}-{end}/{entry.size + 1}"}
        if self.content_range in ranges:
            headers["Content-Range"] = ranges[self.content_range]
        etags = {"right": f'"{entry.etag}"', "other": '"0ther"', "weak": f'W/"{entry.etag}"'}
        if self.etag in etags:
            headers["ETag"] = etags[self.etag]
        length = {"body": None, "more": len(body) + 100, "none": -1}[self.length]
        return Scripted(self.status, headers, body, length)


@dataclass(frozen=True)
class Scripted:
    """One CDN reply exactly as given. `length` is the Content-Length to announce (None: the
    body's; -1: none, the body ends when the connection closes); a body shorter than announced
    is cut short by closing the connection. The connection is closed after every scripted reply."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    length: int | None = None


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
            self.requests.append(
                Recorded(server, handler.command, handler.path, headers, time.monotonic())
            )

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

    def take_416(self) -> bool:
        with self._lock:
            if self.knobs.range_416 > 0:
                self.knobs.range_416 -= 1
                return True
            return False

    def take_scripted(self) -> Scripted | Misbehave | None:
        with self._lock:
            return self.knobs.cdn_script.pop(0) if self.knobs.cdn_script else None

    def swap_content(self, entry: HubEntry, path: Path) -> None:
        """The file changes upstream: new bytes, new SHA-256, new ETag, same name."""
        with self._lock:
            entry.path, entry.sha256, entry.size = path, sha256_of(path), path.stat().st_size

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
        if not entry.lfs:  # a plain git file: the hub serves the bytes itself
            return _serve_bytes(self, entry, {"X-Repo-Commit": COMMIT, **_present(fake.knobs.head)})
        headers = {
            "X-Repo-Commit": COMMIT,
            "X-Linked-Etag": f'"{entry.sha256}"',
            "X-Linked-Size": str(entry.advertised_size or entry.size),
            "ETag": '"1f2e3d4c5b6a79881f2e3d4c5b6a79881f2e3d4c"',
            "Location": f"{fake.cdn_base}/blobs/{entry.sha256}",
        }
        for key, value in fake.knobs.head.items():
            headers.pop(key, None)
            if value is not None:
                headers[key] = value
        self.reply(302, headers)


def _present(overrides: dict[str, str | None]) -> dict[str, str]:
    return {k: v for k, v in overrides.items() if v is not None}


class _CdnHandler(_Handler):
    def do_HEAD(self) -> None:
        self.serve_blob()

    def do_GET(self) -> None:
        self.serve_blob()

    def serve_blob(self) -> None:
        fake = self.server.fake
        fake.record("cdn", self)
        scripted = fake.take_scripted()
        sha = urlsplit(self.path).path.rsplit("/", 1)[-1]
        entry = fake.by_sha(sha)
        if isinstance(scripted, Misbehave) and entry is not None:
            scripted = scripted.render(entry, self.headers.get("Range"))
        if isinstance(scripted, Scripted):
            return self.scripted(scripted)
        if entry is None:
            return self.reply(404, {}, b"no such blob")
        _serve_bytes(self, entry, {})

    def scripted(self, reply: Scripted) -> None:
        self.close_connection = True
        self.send_response(reply.status)
        for key, value in reply.headers.items():
            self.send_header(key, value)
        length = len(reply.body) if reply.length is None else reply.length
        if length >= 0:
            self.send_header("Content-Length", str(length))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            with contextlib.suppress(OSError):
                self.wfile.write(reply.body[: length if length >= 0 else None])
                self.wfile.flush()


def _serve_bytes(handler: _Handler, entry: HubEntry, extra: dict[str, str]) -> None:
    """200 or 206 with the entry's bytes, honouring Range and If-Range, and the byte knobs."""
    fake = handler.server.fake
    knobs = fake.knobs
    start, end = 0, entry.size - 1
    wanted = handler.headers.get("Range")
    if_range = handler.headers.get("If-Range")
    partial = wanted is not None and not knobs.ignore_range
    if partial and if_range not in (None, f'"{entry.etag}"') and not knobs.ignore_if_range:
        partial = False  # RFC 9110: the file changed, so the whole (new) file comes back
    etag = {"ETag": f'"{entry.etag}"', "Accept-Ranges": "bytes", **extra}
    if partial:
        assert wanted is not None
        first, _, last = wanted.removeprefix("bytes=").partition("-")
        start, end = int(first), int(last) if last else entry.size - 1
        if start >= entry.size or fake.take_416():
            return handler.reply(416, {"Content-Range": f"bytes */{entry.size}", **extra})
        if knobs.empty_206:
            return handler.reply(206, {"Content-Range": f"bytes {start}-{end}/{entry.size}"})
    handler.send_response(206 if partial else 200)
    if partial:
        handler.send_header("Content-Range", f"bytes {start}-{end}/{entry.size}")
    for key, value in etag.items():
        handler.send_header(key, value)
    handler.send_header("Content-Length", str(end - start + 1))
    handler.end_headers()
    if handler.command == "HEAD":
        return None
    _stream(handler, entry, start, end)


def _stream(handler: _Handler, entry: HubEntry, start: int, end: int) -> None:
    fake = handler.server.fake
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
                handler.wfile.write(block[: drop_at - sent])
                handler.wfile.flush()
                handler.connection.shutdown(socket.SHUT_RDWR)  # mid-body: the client sees EOF
                handler.close_connection = True
                if knobs.swap_on_drop is not None:
                    fake.swap_content(entry, knobs.swap_on_drop)
                    knobs.swap_on_drop = None
                return
            try:
                handler.wfile.write(block)
            except (BrokenPipeError, ConnectionResetError):  # the client went away
                handler.close_connection = True
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
