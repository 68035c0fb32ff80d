"""The window's Local API server settings: saved in `server.json`, the key in the keyring.

`leancoder serve` takes its settings as flags; the window keeps them here: the port, whether
other machines may connect (every interface instead of loopback: an API key is then required),
the thinking policy for requests that name none, where streamed thinking goes, and how often a
streamed reply sends. A hand-edited or damaged file falls back to the defaults value by value
(app.core.storage.json_file); a value that is the right type but unsafe or impossible is refused
by `ServerConfig.check()` with a sentence, when the server starts or the dialog saves.

The API key never goes to the file. The keyring keeps it (app.core.storage.keyring_store); where
there is none it lives in memory for this run, and the dialog says so.
"""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

from app.core.storage.json_file import read_json_object, typed_values, write_json
from app.core.storage.keyring_store import store_secret, stored_secret
from app.core.storage.paths import data_dir
from app.server.config import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    STREAM_INTERVAL_MS,
    ReasoningFields,
    ServerConfig,
)

KEYRING_SERVICE = "LeanCoder local API server"
KEYRING_NAME = "api-key"
EVERY_INTERFACE = "0.0.0.0"
REASONING_FIELDS: tuple[ReasoningFields, ...] = ("both", "reasoning_content", "reasoning", "none")


@dataclass(frozen=True, slots=True)
class ServerSettings:
    port: int = DEFAULT_PORT
    network: bool = False  # listen on every interface: other machines may connect (needs a key)
    policy: str = "Balanced"
    reasoning_fields: str = "both"
    stream_interval_ms: int = STREAM_INTERVAL_MS

    def config(self, api_key: str | None) -> ServerConfig:
        """The server's configuration, checked (ServerConfigError says what is wrong)."""
        from app.core.thinking.policy import policy_by_name
        from app.server.config import ServerConfigError

        fields = next((f for f in REASONING_FIELDS if f == self.reasoning_fields), None)
        if fields is None:
            raise ServerConfigError(
                f"Streamed thinking goes to one of {', '.join(REASONING_FIELDS)}, not "
                f"{self.reasoning_fields!r}."
            )
        policy = policy_by_name(self.policy).name  # a LeanCoderError that names the choices
        if self.network and not api_key:  # ServerConfig's own sentence speaks of CLI flags
            raise ServerConfigError(
                "Other machines may connect only with an API key: enter one or generate one, "
                "or keep the server to this machine."
            )
        config = ServerConfig(
            host=EVERY_INTERFACE if self.network else DEFAULT_HOST,
            port=self.port,
            api_key=api_key or None,
            reasoning_fields=fields,
            policy=policy,
            stream_interval_ms=self.stream_interval_ms,
        )
        config.check()
        return config


def server_settings_path() -> Path:
    return data_dir() / "server.json"


def load_server_settings(path: Path | None = None) -> ServerSettings:
    raw = read_json_object(path or server_settings_path(), "local server settings")
    defaults = asdict(ServerSettings())
    return ServerSettings(**typed_values(raw, {k: type(v) for k, v in defaults.items()}))


def save_server_settings(settings: ServerSettings, path: Path | None = None) -> None:
    write_json(path or server_settings_path(), asdict(settings))


# -- the API key --------------------------------------------------------------------------------

_this_run: list[str] = []  # the key where no keyring keeps it: in memory, gone at quit


def new_api_key() -> str:
    """A key for tools to send as `Authorization: Bearer KEY` (192 random bits)."""
    return "lc-" + secrets.token_urlsafe(24)


def server_api_key() -> str:
    """The saved key ("" when none): the keyring's, else one kept for this run."""
    return stored_secret(KEYRING_SERVICE, KEYRING_NAME) or (_this_run[0] if _this_run else "")


def keep_server_api_key(key: str) -> bool:
    """Keep `key` ("" forgets it); False when no keyring could: then for this run only."""
    key = key.strip()
    _this_run[:] = [key] if key else []
    return store_secret(KEYRING_SERVICE, KEYRING_NAME, key)
