"""How the API server listens and what it lets in, with the checks that keep it private.

Defaults are the safe ones: loopback only, no API key needed there, no CORS, the Host header
checked against loopback names (a web page that rebinds its DNS name to 127.0.0.1 sends its own
name as Host and is refused), a 4 MiB body limit, 16 requests waiting at most. Listening on any
other address needs an API key: the server refuses to start without one.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from app.core.errors import LeanCoderError

# No peer uses it: LM Studio 1234, Ollama 11434, Jan 1337, GPT4All 4891, llama-server 8080,
# vLLM 8000, KoboldCpp 5001, text-generation-webui 5000, Open WebUI 3000/8080.
DEFAULT_PORT = 8421
DEFAULT_HOST = "127.0.0.1"
MAX_BODY_BYTES = 4 * 1024 * 1024  # a 100K-token conversation is well under 1 MiB of JSON
QUEUE_LIMIT = 16  # requests waiting for the model, beyond the one being served
RETRY_AFTER_S = 5
# Reply text a client has not read yet, per request: past it the client is dropped.
MAX_PENDING_CHARS = 1024 * 1024
# A streamed reply's deltas go out at most this often (the first at once): 20 a second reads as
# smooth, and on a machine whose cores all decode, each SSE event the server and its client
# handle costs the model ~1 ms of decoding (bench/server_overhead.py). 0: every token alone.
STREAM_INTERVAL_MS = 50
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")

ReasoningFields = Literal["reasoning_content", "reasoning", "both", "none"]


class ServerConfigError(LeanCoderError):
    """The server was asked to listen in a way that is not safe or not possible."""


@dataclass(frozen=True, slots=True)
class ServerConfig:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT  # 0: any free port (tests)
    api_key: str | None = None
    # Host header values accepted besides loopback names and the bound address ("*": any).
    allowed_hosts: tuple[str, ...] = ()
    cors_origins: tuple[str, ...] = ()  # empty: no CORS headers at all
    max_body_bytes: int = MAX_BODY_BYTES
    queue_limit: int = QUEUE_LIMIT
    max_pending_chars: int = MAX_PENDING_CHARS
    stream_interval_ms: int = STREAM_INTERVAL_MS
    # Where streamed thinking goes: llama.cpp/DeepSeek's `reasoning_content`, vLLM/Ollama's
    # `reasoning`, both (clients read one or the other), or nowhere.
    reasoning_fields: ReasoningFields = "both"
    policy: str = "Balanced"  # the thinking policy when a request names none

    def check(self) -> None:
        """Refuse unsafe or impossible settings with a sentence the user can act on."""
        if not 0 <= self.port <= 65535:
            raise ServerConfigError(f"Port {self.port} is not a TCP port (0 to 65535).")
        if self.api_key is not None and len(self.api_key.strip()) < 8:
            raise ServerConfigError("The API key must be at least 8 characters.")
        if not is_loopback(self.host) and not self.api_key:
            raise ServerConfigError(
                f"Listening on {self.host} lets other machines use the model: give an API key "
                "(--api-key) or listen on 127.0.0.1."
            )
        if self.max_body_bytes < 1024:
            raise ServerConfigError("The request body limit must be at least 1 KiB.")
        if self.queue_limit < 0:
            raise ServerConfigError("The queue limit cannot be negative.")
        if not 0 <= self.stream_interval_ms <= 1000:
            raise ServerConfigError("The stream interval must be 0 to 1,000 ms.")

    @property
    def wildcard(self) -> bool:
        return self.host in ("0.0.0.0", "::", "")

    def host_allowed(self, header: str | None) -> bool:
        """Whether a request's Host header names this server (DNS rebinding defence).

        On a wildcard address without an explicit list every name is accepted: the API key,
        required there, guards it, and the machine's own names are not known here.
        """
        if "*" in self.allowed_hosts or (self.wildcard and not self.allowed_hosts):
            return True
        if not header:
            return False
        name = _host_name(header)
        names = {*LOOPBACK_NAMES, self.host.lower(), *(h.lower() for h in self.allowed_hosts)}
        return name in names

    def origin_allowed(self, origin: str) -> bool:
        return "*" in self.cors_origins or origin in self.cors_origins


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _host_name(header: str) -> str:
    """The name in a Host header, without its port: "[::1]:8421" -> "::1"."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header
    name, sep, port = header.rpartition(":")
    return name if sep and port.isdigit() else header


def split_list(values: Sequence[str] | None) -> tuple[str, ...]:
    """Comma-separated CLI values, repeated or not: ("a,b", "c") -> ("a", "b", "c")."""
    out: list[str] = []
    for value in values or ():
        out.extend(v.strip() for v in value.split(",") if v.strip())
    return tuple(out)
