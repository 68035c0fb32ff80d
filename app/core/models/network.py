"""How LeanCoder reaches the model hub through firewalls: mirror, proxy, CA bundle, token, offline.

Settings live in `network.json` in the data folder (separate from `settings.json`, so the access
token is in a file only its owner can read: `atomic_write_text` creates files with mode 0600).
`apply_network_settings` hands them to huggingface_hub 2.x through its client factory, the one
place every request it makes goes through. Offline mode is checked by `require_online` before any
request is built, so no socket is ever opened; the client installed in offline mode refuses every
request as well, as a second line of defence.
"""

from __future__ import annotations

import json
import logging
import os
import ssl
import threading
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

import httpx2

from app.core.errors import LeanCoderError
from app.core.storage.json_file import atomic_write_text, read_json_object, typed_values
from app.core.storage.paths import data_dir

log = logging.getLogger(__name__)

SYSTEM_TRUST_STORE = "system"
DEFAULT_ENDPOINT = "https://huggingface.co"
CONNECT_TIMEOUT_S = 15.0
# A read that stalls this long is retried with a Range request (see app.core.models.download).
READ_TIMEOUT_S = 20.0


class NetworkSettingsError(LeanCoderError):
    """A network setting is invalid (bad URL, missing CA file, malformed token)."""


class OfflineError(LeanCoderError):
    """Offline mode is on and something asked for the network."""


@dataclass(frozen=True, slots=True)
class NetworkSettings:
    """Empty strings mean "the usual": huggingface_hub's endpoint (HF_ENDPOINT or the public hub),
    the environment's proxy (HTTPS_PROXY), and the token saved by `hf auth login` or HF_TOKEN."""

    endpoint: str = ""  # a hub mirror, e.g. https://hf-mirror.example.com
    proxy: str = ""  # e.g. http://proxy.corp:3128
    ca_bundle: str = SYSTEM_TRUST_STORE  # "system" (the OS trust store), "" (certifi), or a path
    token: str = ""  # for gated or private repos
    offline: bool = False

    def validated(self) -> NetworkSettings:
        """The same settings, trimmed, or NetworkSettingsError naming what is wrong."""
        cleaned = replace(
            self,
            endpoint=self.endpoint.strip().rstrip("/"),
            proxy=self.proxy.strip(),
            ca_bundle=self.ca_bundle.strip(),
            token=self.token.strip(),
        )
        if cleaned.endpoint:
            _check_url(cleaned.endpoint, "hub mirror URL", ("http", "https"))
        if cleaned.proxy:
            _check_url(cleaned.proxy, "proxy URL", ("http", "https"))
        if cleaned.ca_bundle and cleaned.ca_bundle != SYSTEM_TRUST_STORE:
            _check_ca_bundle(Path(cleaned.ca_bundle).expanduser())
        if cleaned.token and (
            any(c.isspace() for c in cleaned.token) or not cleaned.token.isascii()
        ):
            raise NetworkSettingsError(
                "The access token contains spaces or non-ASCII characters; paste it again "
                "from your hub account's token page."
            )
        return cleaned

    def effective_endpoint(self) -> str:
        """The hub base URL requests go to: this setting, else HF_ENDPOINT, else the public hub."""
        chosen = self.endpoint or os.environ.get("HF_ENDPOINT", "") or DEFAULT_ENDPOINT
        return chosen.strip().rstrip("/")

    def is_offline(self) -> bool:
        """Offline by this setting, or by huggingface_hub's own HF_HUB_OFFLINE variable."""
        flag = os.environ.get("HF_HUB_OFFLINE", "").strip().upper()
        return self.offline or flag in {"1", "ON", "YES", "TRUE"}

    def describe(self) -> list[tuple[str, str]]:
        """Label/value rows for showing the settings (the token masked)."""
        ca = self.ca_bundle or "Python's bundled CAs (certifi)"
        if self.ca_bundle == SYSTEM_TRUST_STORE:
            ca = "the operating system's trust store"
        return [
            ("hub", self.endpoint or f"{self.effective_endpoint()} (default)"),
            ("proxy", self.proxy or "from the environment (HTTPS_PROXY), if any"),
            ("certificates", ca),
            ("token", mask_token(self.token) if self.token else "huggingface_hub's saved token"),
            ("offline", "on" if self.is_offline() else "off"),
        ]


def mask_token(token: str) -> str:
    return token[:3] + "…" + token[-2:] if len(token) > 8 else "…"


def _check_url(url: str, what: str, schemes: tuple[str, ...]) -> None:
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError for a port that is not a number
    except ValueError:
        parts, port = None, None
    if parts is None or parts.scheme not in schemes or not parts.hostname:
        example = "http://proxy.example.com:3128" if "proxy" in what else "https://hub.example.com"
        raise NetworkSettingsError(
            f"The {what} '{url}' is not valid: use a full address such as {example}."
        )
    if port == 0 or parts.query or parts.fragment:
        raise NetworkSettingsError(f"The {what} '{url}' is not valid: remove the port 0, ? or #.")


def _check_ca_bundle(path: Path) -> None:
    if not path.is_file():
        raise NetworkSettingsError(
            f"The CA bundle {path} does not exist; choose a PEM file with your organisation's "
            "certificates, or use the system trust store."
        )
    try:
        ssl.create_default_context(cafile=str(path))
    except (ssl.SSLError, OSError, ValueError) as exc:
        # The SSL library's own text ("[X509: NO_CERTIFICATE_OR_CRL_FOUND] ... (_ssl.c:4149)")
        # means nothing to a user; it stays on the exception chain for the log.
        raise NetworkSettingsError(
            f"The CA bundle {path} holds no readable PEM certificates: choose the .pem or .crt "
            "file your IT department gave you."
        ) from exc


# -- load and save ----------------------------------------------------------------------------


def network_settings_path() -> Path:
    return data_dir() / "network.json"


def load_network_settings(path: Path | None = None) -> NetworkSettings:
    """The saved settings; defaults when there are none or the file is unreadable."""
    raw = read_json_object(path or network_settings_path(), "network settings")
    defaults = asdict(NetworkSettings())
    values = typed_values(raw, {key: type(value) for key, value in defaults.items()})
    return NetworkSettings(**values)


def save_network_settings(settings: NetworkSettings, path: Path | None = None) -> NetworkSettings:
    """Validate, then write atomically (mode 0600: the file may hold a token). Returns the
    settings as saved."""
    cleaned = settings.validated()
    atomic_write_text(path or network_settings_path(), json.dumps(asdict(cleaned), indent=2))
    return cleaned


# -- applying them to huggingface_hub ---------------------------------------------------------


def require_online(settings: NetworkSettings, what: str) -> None:
    """Raise OfflineError before anything touches the network."""
    if settings.is_offline():
        raise OfflineError(
            f"Offline mode is on, so LeanCoder will not {what}. Turn it off in the network "
            "settings (`leancoder network --offline off`), or import a GGUF file instead."
        )


def ssl_context(settings: NetworkSettings) -> ssl.SSLContext | bool:
    """The TLS trust for hub requests: OS trust store, a CA bundle, or certifi (httpx's own)."""
    if settings.ca_bundle == SYSTEM_TRUST_STORE:
        import truststore

        return truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if settings.ca_bundle:
        return ssl.create_default_context(cafile=str(Path(settings.ca_bundle).expanduser()))
    return True


class _RefusingTransport(httpx2.BaseTransport):
    """Installed in offline mode: any request that slipped past `require_online` fails here,
    before a connection is made."""

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        raise OfflineError(f"Offline mode is on; LeanCoder did not contact {request.url.host}.")


def make_client(settings: NetworkSettings) -> httpx2.Client:
    """An httpx client that obeys the settings (used for huggingface_hub and our own requests)."""
    timeout = httpx2.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S)
    if settings.is_offline():
        return httpx2.Client(transport=_RefusingTransport(), timeout=timeout)
    return httpx2.Client(
        follow_redirects=True,
        timeout=timeout,
        proxy=settings.proxy or None,
        verify=ssl_context(settings),
        trust_env=True,  # HTTPS_PROXY / NO_PROXY apply when no proxy is set here
    )


_applied_lock = threading.Lock()
_applied: NetworkSettings | None = None


def apply_network_settings(settings: NetworkSettings) -> None:
    """Make huggingface_hub use these settings for every request it makes from now on.

    Also turns off huggingface_hub's user-agent telemetry: with it on, building request headers
    fetches an "agent harness" list from the public hub once a day, which would leave the machine
    even with a mirror configured (and stall behind a firewall).
    """
    global _applied
    from huggingface_hub import constants, set_client_factory

    constants.HF_HUB_DISABLE_TELEMETRY = True
    with _applied_lock:
        if settings == _applied:
            return

        def factory() -> httpx2.Client:
            return make_client(settings)

        set_client_factory(factory)  # closes the client built from the previous settings
        _applied = settings
