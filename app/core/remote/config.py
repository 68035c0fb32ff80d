"""The configured remote engine, saved like the network settings, and its API key in the keyring.

`remote.json` in the data folder holds the address, the model name, the context size to assume
and where the chat template comes from; never the key. The key goes to the platform's keyring
(Keychain, Windows Credential Locker, Secret Service) under the server's base URL. Where no
keyring backend exists (a bare Linux box, a container) the key is not stored at all: the window
asks for it each time and the CLI reads LEANCODER_API_KEY. Plain text on disk is never the
fallback, and no log line carries the key.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from app.core.remote.endpoint import RemoteEndpointError, RemoteSpec, parse_endpoint
from app.core.storage.json_file import atomic_write_text, read_json_object, typed_values
from app.core.storage.keyring_store import forget_secret, store_secret, stored_secret
from app.core.storage.paths import data_dir

if TYPE_CHECKING:
    from app.core.remote.engine import RemoteOptions

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
    # The last connection check, for the model chooser: the context it reported, and a sentence
    # ("reachable", or the error). Shown as "last checked", never taken as live.
    checked_n_ctx: int = 0
    checked_result: str = ""

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


def store_api_key(spec: RemoteSpec, key: str) -> bool:
    """Keep `key` in the keyring for this server; False when there is no keyring (then it is
    not stored anywhere: ask each time)."""
    key = key.strip()
    if len(key) > MAX_API_KEY or any(c.isspace() for c in key):
        raise RemoteEndpointError("The API key contains spaces or is too long; paste it again.")
    return store_secret(KEYRING_SERVICE, spec.base_url, key)


def stored_api_key(spec: RemoteSpec) -> str | None:
    return stored_secret(KEYRING_SERVICE, spec.base_url)


def forget_api_key(spec: RemoteSpec) -> None:
    forget_secret(KEYRING_SERVICE, spec.base_url)


# Keys typed in this run where no keyring could keep them: in memory only, gone at quit.
_session_keys: dict[str, str] = {}


def remember_for_this_run(spec: RemoteSpec, key: str) -> None:
    if key.strip():
        _session_keys[spec.base_url] = key.strip()
    else:
        _session_keys.pop(spec.base_url, None)


def api_key_for(spec: RemoteSpec) -> str | None:
    """LEANCODER_API_KEY, else the keyring's key for this server, else one typed in this run."""
    from_env = os.environ.get(API_KEY_ENV, "").strip()
    return from_env or stored_api_key(spec) or _session_keys.get(spec.base_url)


def remote_options(config: RemoteConfig, spec: RemoteSpec) -> RemoteOptions:
    """How to connect to `spec` under the saved settings (the GGUF and context apply only to
    the server they were saved for)."""
    from app.core.remote.engine import RemoteOptions

    same = bool(config.endpoint) and config.spec().base_url == spec.base_url
    gguf = config.template_gguf if same else ""
    return RemoteOptions(
        api_key=api_key_for(spec),
        n_ctx=(config.n_ctx if same else 0) or None,
        template="default" if same and config.template == "default" else "model",
        template_gguf=Path(gguf).expanduser() if gguf else None,
    )


def remote_choice_label(config: RemoteConfig | None = None) -> tuple[str, str, str] | None:
    """For the model chooser: (endpoint, label, tooltip) of the configured remote engine, with
    the context and reachability of its last check; None when none is configured."""
    config = config if config is not None else load_remote_config()
    if not config.endpoint:
        return None
    try:
        spec = config.spec()
    except RemoteEndpointError:
        return None
    name = Path(spec.model).name or "the server's model"
    parts = [f"{name} on {spec.host} (remote)"]
    if config.checked_n_ctx:
        parts.append(f"context {config.checked_n_ctx:,}")
    if config.checked_result.startswith("Not reachable"):
        parts.append("not reachable at the last check")
    tooltip = config.checked_result or "Not checked yet: Models → Remote engine → Test connection."
    return config.endpoint, " · ".join(parts), f"{spec.text}\n{tooltip}"
