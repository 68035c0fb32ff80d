"""The configured remote engine, saved like the network settings, and its API key in the keyring.

`remote.json` in the data folder holds the address, the model name, the context size to assume
and where the chat template comes from; never the key. The key goes to the platform's keyring
(Keychain, Windows Credential Locker, Secret Service) under the server's base URL. Where no
keyring backend exists (a bare Linux box, a container) the key is not stored at all: the window
asks for it each time and the CLI reads LEANCODER_API_KEY. Plain text on disk is never the
fallback, and no log line carries the key.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from app.core.remote.endpoint import RemoteEndpointError, RemoteSpec, parse_endpoint
from app.core.storage.json_file import atomic_write_text, read_json_object, typed_values
from app.core.storage.paths import data_dir

log = logging.getLogger(__name__)

KEYRING_SERVICE = "LeanCoder remote engine"
API_KEY_ENV = "LEANCODER_API_KEY"
MAX_API_KEY = 4096


@dataclass(frozen=True, slots=True)
class RemoteConfig:
    endpoint: str = ""  # https://host:8000/v1#model-name; "" when none is configured
    n_ctx: int = 0  # 0: what the server publishes (else LeanCoder assumes 4,096)
    template: str = "model"  # "model": the server's or the GGUF's; "default": ChatML
    template_gguf: str = ""  # a local copy of the model's GGUF, for its chat template

    def spec(self) -> RemoteSpec:
        return parse_endpoint(self.endpoint)

    def validated(self) -> RemoteConfig:
        cleaned = replace(self, endpoint=self.endpoint.strip(),
                          template_gguf=self.template_gguf.strip())  # fmt: skip
        if cleaned.endpoint:
            cleaned = replace(cleaned, endpoint=cleaned.spec().text)
        if cleaned.template not in ("model", "default"):
            raise RemoteEndpointError("The template choice must be 'model' or 'default'.")
        if cleaned.n_ctx < 0 or cleaned.n_ctx > 10_000_000:
            raise RemoteEndpointError("The context size must be 0 (the server's) or a token count.")
        if cleaned.template_gguf and not Path(cleaned.template_gguf).expanduser().is_file():
            raise RemoteEndpointError(f"The GGUF file {cleaned.template_gguf} does not exist.")
        return cleaned


def remote_config_path() -> Path:
    return data_dir() / "remote.json"


def load_remote_config(path: Path | None = None) -> RemoteConfig:
    raw = read_json_object(path or remote_config_path(), "remote engine settings")
    defaults = asdict(RemoteConfig())
    return RemoteConfig(**typed_values(raw, {k: type(v) for k, v in defaults.items()}))


def save_remote_config(config: RemoteConfig, path: Path | None = None) -> RemoteConfig:
    cleaned = config.validated()
    atomic_write_text(path or remote_config_path(), json.dumps(asdict(cleaned), indent=2))
    return cleaned


# -- the API key --------------------------------------------------------------------------------


def _keyring_usable() -> bool:
    import keyring
    from keyring.backends import fail

    backend = keyring.get_keyring()
    chained = getattr(backend, "backends", None)
    if chained is not None:
        return bool(chained)
    return not isinstance(backend, fail.Keyring) and backend.priority > 0


def store_api_key(spec: RemoteSpec, key: str) -> bool:
    """Keep `key` in the keyring for this server; False when there is no keyring (then it is
    not stored anywhere: ask each time)."""
    key = key.strip()
    if len(key) > MAX_API_KEY or any(c.isspace() for c in key):
        raise RemoteEndpointError("The API key contains spaces or is too long; paste it again.")
    import keyring
    from keyring.errors import KeyringError

    if not _keyring_usable():
        return False
    try:
        if key:
            keyring.set_password(KEYRING_SERVICE, spec.base_url, key)
        else:
            forget_api_key(spec)
    except KeyringError as exc:
        log.warning("the keyring refused the remote engine's API key: %s", type(exc).__name__)
        return False
    return True


def stored_api_key(spec: RemoteSpec) -> str | None:
    import keyring
    from keyring.errors import KeyringError

    if not _keyring_usable():
        return None
    try:
        return keyring.get_password(KEYRING_SERVICE, spec.base_url)
    except KeyringError as exc:
        log.warning("the keyring could not be read: %s", type(exc).__name__)
        return None


def forget_api_key(spec: RemoteSpec) -> None:
    import keyring
    from keyring.errors import KeyringError, PasswordDeleteError

    if not _keyring_usable():
        return
    with contextlib.suppress(PasswordDeleteError, KeyringError):
        keyring.delete_password(KEYRING_SERVICE, spec.base_url)


def api_key_for(spec: RemoteSpec) -> str | None:
    """For the CLI: LEANCODER_API_KEY, else the keyring's key for this server, else none."""
    from_env = os.environ.get(API_KEY_ENV, "").strip()
    return from_env or stored_api_key(spec)
