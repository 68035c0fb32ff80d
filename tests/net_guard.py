"""A socket guard: any attempt to reach the network fails, and is recorded to fail the test.

LeanCoder promises to make no connection unless the user starts a download. The guard patches the
places every Python-level connection passes through (`socket.socket.connect`/`connect_ex`,
`socket.create_connection`, and name lookups: `socket.getaddrinfo`, `gethostbyname`,
`gethostbyname_ex`) for the whole process, the model worker thread included. Unix-domain sockets
stay allowed: they are local inter-process channels (Qt, D-Bus, asyncio's self-pipe), not network.

Each attempt raises `NetworkBlockedError` (an OSError, as a real failure would be) where it is
made, and is recorded; leaving the guard fails with the list, so an attempt that the code under
test caught and ignored still fails the test.

    with block_network() as guard:
        ...                      # the session under test
    # AssertionError here if anything tried to connect

Also usable as the `network_guard` fixture (import it into a test module or conftest).
"""

from __future__ import annotations

import socket
import threading
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest


class NetworkBlockedError(ConnectionRefusedError):
    """Raised in place of a connection or name lookup while the guard is on."""


@dataclass
class NetworkGuard:
    """What was attempted while the guard was on: one line per attempt, with where it came from."""

    attempts: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, what: str) -> NetworkBlockedError:
        caller = _first_caller_outside_guard()
        line = f"{what} (from {caller}, thread {threading.current_thread().name})"
        with self._lock:
            self.attempts.append(line)
        return NetworkBlockedError(f"network access blocked by the test's guard: {what}")


def _first_caller_outside_guard() -> str:
    for frame in reversed(traceback.extract_stack()[:-2]):
        if not frame.filename.endswith(("net_guard.py", "socket.py")):
            return f"{frame.filename}:{frame.lineno} in {frame.name}"
    return "unknown"


def _is_local_ipc(sock: socket.socket) -> bool:
    return hasattr(socket, "AF_UNIX") and sock.family == socket.AF_UNIX


@contextmanager
def block_network() -> Iterator[NetworkGuard]:
    """Block and record every network connection and name lookup in this process."""
    guard = NetworkGuard()
    original_connect = socket.socket.connect
    original_connect_ex = socket.socket.connect_ex
    originals: dict[str, Any] = {
        name: getattr(socket, name)
        for name in ("create_connection", "getaddrinfo", "gethostbyname", "gethostbyname_ex")
    }

    def connect(self: socket.socket, address: Any) -> None:
        if _is_local_ipc(self):
            original_connect(self, address)
            return
        raise guard.record(f"socket.connect({address!r})")

    def connect_ex(self: socket.socket, address: Any) -> int:
        if _is_local_ipc(self):
            return original_connect_ex(self, address)
        raise guard.record(f"socket.connect_ex({address!r})")

    def refuse(name: str) -> Callable[..., Any]:
        def refused(*args: Any, **kwargs: Any) -> Any:
            shown = ", ".join([repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()])
            raise guard.record(f"socket.{name}({shown})")

        return refused

    setattr(socket.socket, "connect", connect)  # noqa: B010 - a method patched for the process
    setattr(socket.socket, "connect_ex", connect_ex)  # noqa: B010
    for name in originals:
        setattr(socket, name, refuse(name))
    try:
        yield guard
    finally:
        setattr(socket.socket, "connect", original_connect)  # noqa: B010
        setattr(socket.socket, "connect_ex", original_connect_ex)  # noqa: B010
        for name, original in originals.items():
            setattr(socket, name, original)
    if guard.attempts:
        listing = "\n  ".join(guard.attempts)
        raise AssertionError(f"network access attempted while it was blocked:\n  {listing}")


@pytest.fixture
def network_guard() -> Iterator[NetworkGuard]:
    """The test fails if it (or any thread it starts) tries to reach the network."""
    with block_network() as guard:
        yield guard
