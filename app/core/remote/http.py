"""The HTTP side of a remote engine: JSON requests and server-sent event streams over httpx2,
under the app's network settings (proxy, CA bundle or the system trust store), with every failure
turned into a RemoteError a user can act on.

Streams are read on a helper thread that hands parsed events to the caller through a queue, so
the caller can notice Stop (its cancel flag) while the server is silent, say during a long prompt,
and so closing a stream early (the way a budget is enforced: the server stops generating when the
client goes away) never waits on a read. Lines and events are bounded: a hostile or broken server
cannot make the client hold an endless line in memory.
"""

from __future__ import annotations

import contextlib
import json
import queue
import threading
from collections.abc import Iterator
from typing import Any

import httpx2

from app.core.models.network import NetworkSettings, load_network_settings, make_client
from app.core.remote.endpoint import (
    RemoteAuthError,
    RemoteDroppedError,
    RemoteError,
    RemoteProtocolError,
    RemoteSpec,
    RemoteStalledError,
    RemoteUnreachableError,
)

DEFAULT_READ_TIMEOUT_S = 120.0  # a large model's first token after a long prompt can take long
CONNECT_TIMEOUT_S = 10.0
MAX_LINE_BYTES = 1 << 20
MAX_JSON_BYTES = 8 << 20  # /props with a long chat template is the largest answer expected
POLL_S = 0.05  # how often a waiting stream checks its cancel flag


class RemoteClient:
    """One server: `get_json`, `post_json`, `stream` (each raises RemoteError subclasses)."""

    def __init__(
        self,
        spec: RemoteSpec,
        api_key: str | None = None,
        *,
        network: NetworkSettings | None = None,
        read_timeout_s: float = DEFAULT_READ_TIMEOUT_S,
    ) -> None:
        self.spec = spec
        self.read_timeout_s = read_timeout_s
        settings = network if network is not None else load_network_settings()
        # make_client honours offline mode (refuses), the proxy and the trust store.
        self._http = make_client(settings)
        self._http.timeout = httpx2.Timeout(read_timeout_s, connect=CONNECT_TIMEOUT_S)
        self._headers = {"Accept": "application/json"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"

    def close(self) -> None:
        self._http.close()

    def url(self, path: str) -> str:
        """`/v1/...` paths hang off the base URL; `/...` ones (props, tokenize) off its root."""
        base = self.spec.base_url
        if path.startswith("/v1/"):
            return (base.removesuffix("/v1")) + path
        root = base.removesuffix("/v1")
        return root + path

    # -- plain requests --------------------------------------------------------------------

    def get_json(self, path: str) -> Any:
        return self._json("GET", path, None)

    def post_json(self, path: str, body: dict[str, Any]) -> Any:
        return self._json("POST", path, body)

    def try_json(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any | None:
        """For capability probes: None when the server has no such endpoint (404, 405, 400,
        501) or answers something that is not JSON; a 401 or an unreachable server still
        raises, as it means the server cannot be used at all."""
        try:
            return self._json(method, path, body)
        except RemoteProtocolError:
            return None

    def _json(self, method: str, path: str, body: dict[str, Any] | None) -> Any:
        url = self.url(path)
        try:
            with self._http.stream(method, url, json=body, headers=self._headers) as response:
                _check_status(response, self.spec)
                data = b""
                for block in response.iter_bytes():
                    data += block
                    if len(data) > MAX_JSON_BYTES:
                        raise RemoteProtocolError(
                            f"The server at {self.spec.host} sent more than "
                            f"{MAX_JSON_BYTES >> 20} MiB for {path}; that is no answer LeanCoder "
                            "expects."
                        )
        except httpx2.TimeoutException as exc:
            raise _timeout_error(exc, self.spec, self.read_timeout_s) from exc
        except httpx2.TransportError as exc:
            raise _transport_error(exc, self.spec) from exc
        try:
            return json.loads(data)
        except ValueError as exc:
            raise RemoteProtocolError(
                f"The server at {self.spec.host} answered {path} with something that is not "
                "JSON."
            ) from exc

    # -- streams ---------------------------------------------------------------------------

    def stream(self, path: str, body: dict[str, Any]) -> EventStream:
        """POST `body` and read the server-sent events of the answer (see EventStream)."""
        return EventStream(self, path, body)

    def _open(self, path: str, body: dict[str, Any]) -> httpx2.Response:
        headers = {**self._headers, "Accept": "text/event-stream"}
        request = self._http.build_request("POST", self.url(path), json=body, headers=headers)
        try:
            response = self._http.send(request, stream=True)
        except httpx2.TimeoutException as exc:
            raise _timeout_error(exc, self.spec, self.read_timeout_s) from exc
        except httpx2.TransportError as exc:
            raise _transport_error(exc, self.spec) from exc
        try:
            _check_status(response, self.spec)
        except RemoteError:
            response.close()
            raise
        return response


_END = object()


class EventStream:
    """The JSON events of one streamed answer, read on a helper thread.

    `next_event(cancel)` returns the next event (a dict), None at the stream's end (`data:
    [DONE]`), or `CANCELLED` when `cancel` is set first; it raises a RemoteError when the stream
    stalls, drops or sends garbage. `close()` ends the request (the server stops generating).
    """

    CANCELLED: Any = object()

    def __init__(self, client: RemoteClient, path: str, body: dict[str, Any]) -> None:
        self._client = client
        self._spec = client.spec
        self._response = client._open(path, body)  # raises before any thread starts
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=256)
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._read, name="remote-stream", daemon=True)
        self._thread.start()

    def _put(self, item: Any) -> None:
        while not self._closed.is_set():
            try:
                self._queue.put(item, timeout=POLL_S)
                return
            except queue.Full:
                continue

    def _read(self) -> None:
        try:
            for payload in _sse_payloads(self._response.iter_bytes(), self._spec):
                if payload == "[DONE]":
                    self._put(_END)
                    return
                try:
                    event = json.loads(payload)
                except ValueError:
                    raise RemoteProtocolError(
                        f"The server at {self._spec.host} streamed an event that is not JSON."
                    ) from None
                if not isinstance(event, dict):
                    raise RemoteProtocolError(
                        f"The server at {self._spec.host} streamed an event that is not an object."
                    )
                self._put(event)
            # The body ended without [DONE]: a server that closes cleanly after its last event
            # is told apart by the caller (it saw a finish_reason).
            self._put(_END)
        except httpx2.TimeoutException as exc:
            self._put(_timeout_error(exc, self._spec, self._client.read_timeout_s))
        except httpx2.TransportError as exc:
            if not self._closed.is_set():
                self._put(_dropped(self._spec, exc))
        except RemoteError as exc:
            self._put(exc)
        except Exception as exc:  # closing the response under the reader ends up here too
            if not self._closed.is_set():
                self._put(_dropped(self._spec, exc))

    def next_event(self, cancel: Any = None) -> Any:
        while True:
            if cancel is not None and cancel.is_set():
                return self.CANCELLED
            try:
                item = self._queue.get(timeout=POLL_S)
            except queue.Empty:
                if not self._thread.is_alive() and self._queue.empty():
                    return None
                continue
            if item is _END:
                return None
            if isinstance(item, RemoteError):
                raise item
            return item

    def close(self) -> None:
        self._closed.set()
        # The reader may be inside the response; the socket is closed either way.
        with contextlib.suppress(Exception):
            self._response.close()
        self._thread.join(timeout=2.0)

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _sse_payloads(blocks: Iterator[bytes], spec: RemoteSpec) -> Iterator[str]:
    """The `data:` payloads of a server-sent event stream (comments and other fields skipped)."""
    buffer = b""
    for block in blocks:
        buffer += block
        while True:
            cut = buffer.find(b"\n")
            if cut < 0:
                break
            line, buffer = buffer[:cut].rstrip(b"\r"), buffer[cut + 1 :]
            if line.startswith(b"data:"):
                yield line[5:].strip().decode("utf-8", errors="replace")
            elif line.startswith(b"error:"):
                raise RemoteProtocolError(
                    f"The server at {spec.host} reported an error mid-reply: "
                    f"{line[6:].strip().decode('utf-8', errors='replace')[:300]}"
                )
        if len(buffer) > MAX_LINE_BYTES:
            raise RemoteProtocolError(
                f"The server at {spec.host} streamed a line longer than "
                f"{MAX_LINE_BYTES >> 20} MiB; that is no event LeanCoder expects."
            )


def _check_status(response: httpx2.Response, spec: RemoteSpec) -> None:
    status = response.status_code
    if status < 400:
        return
    detail = _error_detail(response)
    if status in (401, 403):
        raise RemoteAuthError(
            f"The server at {spec.host} refused the API key (HTTP {status}). Set the key in "
            "Models → Remote engine, or in LEANCODER_API_KEY for the command line."
        )
    if status == 404 and "model" in detail.lower():
        raise RemoteError(f"The server at {spec.host} does not serve that model: {detail}")
    if status in (404, 405, 501):
        raise RemoteProtocolError(f"The server at {spec.host} has no {response.request.url.path} "
                                  f"endpoint (HTTP {status}).")  # fmt: skip
    raise RemoteError(
        f"The server at {spec.host} refused the request (HTTP {status})"
        + (f": {detail}" if detail else ".")
    )


def _error_detail(response: httpx2.Response) -> str:
    """The server's own error sentence, bounded (OpenAI's {"error": {"message"}} or FastAPI's
    {"detail"})."""
    try:
        raw = b""
        for block in response.iter_bytes():
            raw += block
            if len(raw) > 64 * 1024:
                break
        data = json.loads(raw[: 64 * 1024])
    except (ValueError, httpx2.HTTPError):
        return ""
    message: Any = ""
    if isinstance(data, dict):
        error = data.get("error")
        message = error.get("message", "") if isinstance(error, dict) else error or ""
        message = message or data.get("detail", "") or data.get("message", "")
    return " ".join(str(message).split())[:300]


def _timeout_error(exc: Exception, spec: RemoteSpec, read_timeout_s: float) -> RemoteError:
    if isinstance(exc, httpx2.ConnectTimeout):
        return RemoteUnreachableError(
            f"The server at {spec.host} did not accept a connection within "
            f"{CONNECT_TIMEOUT_S:.0f} s. Check the address, that it runs, and the proxy setting."
        )
    return RemoteStalledError(
        f"The server at {spec.host} sent nothing for {read_timeout_s:.0f} s, so LeanCoder stopped "
        "waiting. What it sent so far is kept; try again, or check the server's load."
    )


def _transport_error(exc: Exception, spec: RemoteSpec) -> RemoteError:
    if isinstance(exc, (httpx2.ConnectError, httpx2.ProxyError, httpx2.UnsupportedProtocol)):
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        return RemoteUnreachableError(
            f"Cannot reach the server at {spec.host} ({reason}). Check the address, that the "
            "server runs, and the network settings (proxy, certificates)."
        )
    return _dropped(spec, exc)


def _dropped(spec: RemoteSpec, exc: Exception) -> RemoteDroppedError:
    reason = " ".join(str(exc).split())[:200] or type(exc).__name__
    return RemoteDroppedError(
        f"The connection to {spec.host} broke mid-reply ({reason}). What arrived so far is kept; "
        "send the message again to retry."
    )
