"""Records (and optionally refuses) every outgoing connection and name lookup of this process."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import Any

import pytest


@dataclass
class SocketLog:
    """Every outgoing connection and name lookup made by this process during a test."""

    connects: list[Any] = field(default_factory=list)
    lookups: list[str] = field(default_factory=list)

    def hosts(self) -> set[str]:
        return {a[0] for a in self.connects if isinstance(a, tuple)} | set(self.lookups)


def socket_guard(monkeypatch: pytest.MonkeyPatch, refuse: bool) -> SocketLog:
    log = SocketLog()
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def connect(self: socket.socket, address: Any) -> None:
        log.connects.append(address)
        if refuse:
            raise OSError(f"socket guard: connection to {address} refused")
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        log.connects.append(address)
        if refuse:
            raise OSError(f"socket guard: connection to {address} refused")
        return real_connect_ex(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        log.lookups.append(str(host))
        if refuse:
            raise OSError(f"socket guard: lookup of {host} refused")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return log
