"""Talking to the hub (or a mirror) through huggingface_hub: a file's metadata, and turning every
way a request can fail into one clear sentence."""

from __future__ import annotations

import re
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpx2

from app.core.models.download_target import DownloadError, DownloadTarget
from app.core.models.hub_cache import is_commit, is_safe_etag
from app.core.models.network import (
    NetworkSettings,
    OfflineError,
    apply_network_settings,
    require_online,
)

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
METADATA_TIMEOUT_S = 20.0
MAX_LOCATION_CHARS = 8192


@dataclass(frozen=True, slots=True)
class HubFile:
    """What the hub says about a file before any byte of it is fetched."""

    url: str  # the resolve URL on the hub or mirror
    location: str  # where the bytes are (a CDN URL after the hub's redirect, or `url`)
    commit: str
    etag: str
    size: int | None
    sha256: str | None  # X-Linked-ETag of an LFS file is its SHA-256

    @property
    def location_is_hub(self) -> bool:
        return _origin(self.location) == _origin(self.url)


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port


def fetch_file_metadata(target: DownloadTarget, network: NetworkSettings) -> HubFile:
    """One HEAD request (through the configured proxy and trust): commit, ETag, size, location."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    require_online(network, f"look up {target.display}")
    apply_network_settings(network)
    endpoint = network.effective_endpoint()
    url = hf_hub_url(target.repo, target.filename, revision=target.revision, endpoint=endpoint)
    with hub_errors(target, network):
        meta = get_hf_file_metadata(
            url,
            token=network.token or None,
            timeout=METADATA_TIMEOUT_S,
            endpoint=endpoint,
            retry_on_errors=False,  # fail fast on a wrong mirror or proxy; a rerun retries
        )
    if not meta.commit_hash or not meta.etag:
        raise DownloadError(
            f"{endpoint} does not answer like a Hugging Face hub (no commit or ETag for "
            f"{target.display}): check the mirror URL in the network settings."
        )
    # Everything below came from the server and ends up in file names or the next request.
    commit = meta.commit_hash.strip().lower()
    if not is_commit(commit):
        raise DownloadError(
            f"{endpoint} sent '{_shown(meta.commit_hash)}' as the commit of {target.display}, "
            "which is not a commit id (40 hex digits); nothing was downloaded. Check the mirror "
            "URL."
        )
    if not is_safe_etag(meta.etag):
        raise DownloadError(
            f"{endpoint} sent an unusable ETag ('{_shown(meta.etag)}') for {target.display}; "
            "nothing was downloaded."
        )
    if meta.size is None or meta.size < 0:
        raise DownloadError(
            f"{endpoint} did not say how big {target.display} is (no usable X-Linked-Size or "
            "Content-Length); LeanCoder only downloads files of a known size."
        )
    etag = meta.etag.lower() if _SHA256.match(meta.etag.lower()) else meta.etag
    return HubFile(
        url=url,
        location=_checked_location(meta.location, url, target),
        commit=commit,
        etag=etag,
        size=meta.size,
        sha256=etag if _SHA256.match(etag) else None,
    )


def _checked_location(location: str | None, url: str, target: DownloadTarget) -> str:
    """The byte URL: the server's Location made absolute, and only ever http(s) to a host."""
    absolute = urljoin(url, location) if location else url
    try:
        parts = urlsplit(absolute)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        parts = None
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or len(absolute) > MAX_LOCATION_CHARS
        or any(c in absolute for c in "\r\n\x00")
    ):
        raise DownloadError(
            f"The hub sent an unusable address for the bytes of {target.display} "
            f"('{_shown(location or '')}'); nothing was downloaded. Check the mirror URL."
        )
    return absolute


def _shown(text: str) -> str:
    escaped = text.encode("unicode_escape").decode("ascii")
    return escaped if len(escaped) <= 80 else escaped[:77] + "..."


def request_headers(network: NetworkSettings, hub_file: HubFile) -> dict[str, str]:
    """Headers for fetching the bytes: the token only goes to the hub itself, never to a CDN."""
    from huggingface_hub import __version__ as hf_version
    from huggingface_hub import get_token

    from app import __version__

    headers = {
        "User-Agent": f"leancoder/{__version__}; hf_hub/{hf_version}",
        "Accept-Encoding": "identity",  # the byte counts must be the file's own
    }
    token = network.token or get_token()  # get_token: HF_TOKEN, or the `hf auth login` token
    if token and hub_file.location_is_hub:
        headers["Authorization"] = f"Bearer {token}"
    return headers


@contextmanager
def hub_errors(target: DownloadTarget, network: NetworkSettings) -> Iterator[None]:
    """Translate huggingface_hub's and httpx's exceptions into DownloadError sentences."""
    from huggingface_hub import errors as hf

    endpoint = network.effective_endpoint()
    host = urlsplit(endpoint).hostname or endpoint
    try:
        yield
    except OfflineError:
        raise
    except hf.GatedRepoError as exc:
        raise DownloadError(
            f"{target.repo} is a gated repository: accept its terms on its hub page, then set "
            "an access token (`leancoder network --token ...`)."
        ) from exc
    except hf.RepositoryNotFoundError as exc:
        raise DownloadError(
            f"Repository {target.repo} was not found on {host} (if it is private, set an access "
            "token in the network settings)."
        ) from exc
    except hf.RevisionNotFoundError as exc:
        raise DownloadError(f"{target.repo} has no revision '{target.revision}'.") from exc
    except hf.RemoteEntryNotFoundError as exc:
        raise DownloadError(f"{target.repo} has no file {target.filename}.") from exc
    except hf.HfHubHTTPError as exc:
        raise DownloadError(_http_status_message(exc.response.status_code, host)) from exc
    except hf.OfflineModeIsEnabled as exc:
        raise OfflineError(
            "HF_HUB_OFFLINE is set, so LeanCoder will not contact the hub; unset it to download."
        ) from exc
    except hf.FileMetadataError as exc:
        raise DownloadError(
            f"{endpoint} does not answer like a Hugging Face hub for {target.display}: check the "
            "mirror URL and proxy in the network settings."
        ) from exc
    except httpx2.ProxyError as exc:
        raise DownloadError(
            f"The proxy {network.proxy or '(from HTTPS_PROXY)'} refused the connection to {host}: "
            f"{exc}. Check the proxy URL in the network settings."
        ) from exc
    except httpx2.TooManyRedirects as exc:
        raise DownloadError(
            f"{host} keeps redirecting the request for {target.display} (a redirect loop); check "
            "the mirror URL in the network settings."
        ) from exc
    except httpx2.TimeoutException as exc:
        raise DownloadError(
            f"{host} did not answer in time; check your connection, the mirror URL and the proxy."
        ) from exc
    except httpx2.HTTPError as exc:  # connect, TLS, protocol and read errors, redirect loops
        raise DownloadError(connection_message(exc, host, network.proxy)) from exc
    except (httpx2.InvalidURL, httpx2.StreamError, ValueError, KeyError) as exc:
        # A hostile or broken server's headers (a Location that is not a URL, a Link header
        # that does not parse) surface here from huggingface_hub's and httpx's parsing.
        raise DownloadError(
            f"{endpoint} sent a reply for {target.display} that cannot be read ({exc}); check "
            "the mirror URL in the network settings."
        ) from exc


def connection_message(exc: BaseException, host: str, proxy: str = "") -> str:
    if _is_certificate_error(exc):
        return (
            f"The TLS certificate of {host} is not trusted. If your organisation inspects "
            "encrypted traffic, choose the system trust store or your CA bundle in the network "
            "settings (`leancoder network --ca-bundle system|FILE`)."
        )
    if proxy and isinstance(exc, httpx2.ConnectError):
        return (
            f"Cannot reach {host} through the proxy {proxy}: {exc}. Check the proxy URL in the "
            "network settings."
        )
    said = str(exc).rstrip(".") or type(exc).__name__
    return f"Cannot reach {host}: {said}. Check your connection, the mirror URL and the proxy."


def _is_certificate_error(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(
            seen
        ):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _http_status_message(status: int, host: str) -> str:
    if status == 401:
        return (
            f"{host} refused the access token (HTTP 401): set a valid token in the network "
            "settings, or clear it to download public models anonymously."
        )
    if status == 403:
        return f"{host} denied access (HTTP 403): your token lacks access to this repository."
    if status == 407:
        return "The proxy asks for a login (HTTP 407): put user:password@ in the proxy URL."
    if status == 429:
        return f"{host} is rate-limiting downloads (HTTP 429); try again in a few minutes."
    return f"{host} answered HTTP {status}; try again later or check the mirror URL."
