"""What names a remote engine: `https://host:8000/v1#model-name`, and the errors a server can give.

The part before `#` is the server's OpenAI-compatible base URL (the one that ends in `/v1` for
llama-server, vLLM, Ollama and LeanCoder's own server); the part after it names the model the
server should run, as its `/v1/models` lists it. The text comes from the command line or the
settings file, so it is validated here once: only http and https, a host, no credentials in the
URL (they would end up in logs and shell history; the API key goes to the keyring instead), no
query, and a model name of printable characters.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from app.core.errors import LeanCoderError

MAX_MODEL_NAME = 256
MAX_URL = 2048


class RemoteError(LeanCoderError):
    """A remote inference server could not be used (the message says why and what to do)."""


class RemoteEndpointError(RemoteError):
    """The endpoint text is not a usable `URL#model` address."""


class RemoteUnreachableError(RemoteError):
    """No connection to the server (refused, no route, TLS failure, name not found)."""


class RemoteAuthError(RemoteError):
    """The server refused the API key (401/403)."""


class RemoteStalledError(RemoteError):
    """The server stopped sending mid-reply for longer than the read timeout."""


class RemoteDroppedError(RemoteError):
    """The connection ended before the reply did."""


class RemoteProtocolError(RemoteError):
    """The server answered something that is not what an OpenAI-compatible server sends."""


@dataclass(frozen=True, slots=True)
class RemoteSpec:
    base_url: str  # e.g. https://gpu1.corp:8000/v1, no trailing slash
    model: str  # the server's model name; "" asks the server for its first model

    @property
    def text(self) -> str:
        return f"{self.base_url}#{self.model}" if self.model else self.base_url

    @property
    def host(self) -> str:
        return urlsplit(self.base_url).netloc


def looks_remote(text: str | None) -> bool:
    """Whether a `--model` value means a server rather than a file."""
    return bool(text) and str(text).strip().lower().startswith(("http://", "https://"))


def parse_endpoint(text: str) -> RemoteSpec:
    """`URL#model` -> RemoteSpec, or RemoteEndpointError with a sentence saying what is wrong."""
    raw = text.strip()
    example = "https://gpu1.example.com:8000/v1#Qwen3-32B"
    if len(raw) > MAX_URL:
        raise RemoteEndpointError(f"The server address is {len(raw):,} characters long; "
                                  f"use one like {example}.")  # fmt: skip
    url, _, model = raw.partition("#")
    model = model.strip()
    try:
        parts = urlsplit(url)
        port = parts.port  # ValueError for a port that is not a number
    except ValueError:
        raise RemoteEndpointError(
            f"The server address '{url}' is not valid: use one like {example}."
        ) from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise RemoteEndpointError(
            f"The server address '{url}' is not valid: it needs http:// or https:// and a host, "
            f"like {example}."
        )
    if parts.username or parts.password:
        raise RemoteEndpointError(
            "Put no user name or password in the server address: it would be kept in logs and "
            "shell history. Give the API key in the remote engine settings or LEANCODER_API_KEY."
        )
    if parts.query or port == 0:
        raise RemoteEndpointError(
            f"The server address '{url}' is not valid: remove the ?query or port 0."
        )
    if len(model) > MAX_MODEL_NAME or any(not c.isprintable() for c in model):
        raise RemoteEndpointError(
            "The model name after '#' must be printable text of at most "
            f"{MAX_MODEL_NAME} characters, as the server's model list names it."
        )
    path = parts.path.rstrip("/")
    base = urlunsplit((parts.scheme.lower(), parts.netloc, path, "", ""))
    return RemoteSpec(base, model)
