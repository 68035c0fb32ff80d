"""Fetch the rest of a file with Range requests, believing nothing the server says unchecked.

- A response that adds no bytes (an empty 206, a 5xx, a 206 for the wrong range, a dropped
  connection before the first byte) is a failed attempt: the retry budget and back-off apply,
  then a clear error. A response that adds bytes resets the budget.
- A 206 must continue exactly where the partial file stops; a 200 is the whole file again.
- The file never grows past the size the hub announced (a server streaming forever cannot fill
  the disk).
- A 416 on resume drops the partial and restarts from the first byte, once.
- A file without a SHA-256 (not in LFS) cannot be checked at the end, so each resumed request
  carries `If-Range` with its ETag and every response's ETag must be the one the download started
  with: a change means the file changed upstream, and the download restarts from its metadata.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import httpx2

from app.core.models.download_progress import (
    CancelFlag,
    Meter,
    check_cancel,
    sleep_unless_cancelled,
)
from app.core.models.download_target import DownloadError
from app.core.models.hub_client import HubFile, connection_message, request_headers
from app.core.models.network import NetworkSettings

log = logging.getLogger(__name__)

MAX_TRIES_WITHOUT_PROGRESS = 5
RETRY_BASE_S = 0.5  # back-off: 1, 2, 4, 8 s between attempts that added nothing
RETRY_MAX_S = 8.0
RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})

Hasher = Any  # hashlib's object type is private (`_hashlib.HASH`)


class FileChangedUpstream(DownloadError):
    """The server's file is no longer the one this download started on; the partial is void."""


class DiscardPartial(DownloadError):
    """The bytes on disk cannot be trusted or continued; the caller deletes the partial file."""


class _NoProgress(Exception):
    """This response added nothing: one failed attempt, with the sentence to show if it was the
    last one allowed."""


class _Restart(Exception):
    """Start again from byte 0 in this same run (the partial was emptied)."""


@dataclass
class Fetched:
    done: int  # bytes now on disk
    hasher: Hasher  # their SHA-256 so far (a fresh one after a restart)
    notes: list[str] = field(default_factory=list)  # what the user should know (a restart)


def fetch_rest(
    hub_file: HubFile,
    network: NetworkSettings,
    out: BinaryIO,
    have: int,
    hasher: Hasher,
    meter: Meter,
    cancel: CancelFlag | None,
) -> Fetched:
    """Append the rest of the file to `out` (which holds its first `have` bytes)."""
    return _Fetch(hub_file, network, out, Fetched(have, hasher), meter, cancel).run()


class _Fetch:
    def __init__(
        self,
        hub_file: HubFile,
        network: NetworkSettings,
        out: BinaryIO,
        state: Fetched,
        meter: Meter,
        cancel: CancelFlag | None,
    ) -> None:
        if hub_file.size is None:  # fetch_file_metadata refuses files of unknown size
            raise DownloadError("The hub did not say how big the file is.")
        self.hub_file, self.network, self.out, self.state = hub_file, network, out, state
        self.meter, self.cancel = meter, cancel
        self.size: int = hub_file.size
        self.partial = Path(out.name)
        self.host = httpx2.URL(hub_file.location).host
        self.headers = request_headers(network, hub_file)
        self.restarted = False
        # For a file without a SHA-256, the ETag is the only sign that the bytes are one file.
        self.check_etag = hub_file.sha256 is None
        self.etag: str | None = hub_file.etag if hub_file.location_is_hub else None
        self.if_range: str | None = f'"{self.etag}"' if self.etag else None

    def run(self) -> Fetched:
        from huggingface_hub import get_session

        state = self.state
        self.meter.start(state.done)
        failures = 0
        while state.done < self.size:
            check_cancel(self.cancel, self.partial)
            before = state.done
            try:
                with get_session().stream(
                    "GET", self.hub_file.location, headers=self._headers_now()
                ) as response:
                    self._accept(response)
                    for chunk in response.iter_bytes():  # as received: a drop loses nothing
                        check_cancel(self.cancel, self.partial)
                        self._write(chunk)
                if state.done <= before:  # nothing gained (a 200 may have restarted the file)
                    raise _NoProgress(
                        f"{self.host} answered HTTP {response.status_code} without any of the "
                        "file's bytes"
                    )
                continue
            except _Restart:
                continue
            except _NoProgress as exc:
                reason = str(exc)
            except httpx2.TransportError as exc:  # dropped connection, stalled read, refused
                reason = connection_message(exc, self.host, self.network.proxy)
            except httpx2.HTTPError as exc:  # a redirect loop, a body that does not decode
                reason = f"{self.host} sent a reply that cannot be read ({exc})"
            failures = 0 if state.done > before else failures + 1
            if failures >= MAX_TRIES_WITHOUT_PROGRESS:
                raise DownloadError(
                    f"{reason.rstrip('.')}; gave up after {failures} attempts that added no "
                    f"bytes. The partial file ({state.done:,} bytes) is kept: run the download "
                    "again to resume."
                )
            sleep_unless_cancelled(
                min(RETRY_MAX_S, RETRY_BASE_S * 2**failures), self.cancel, self.partial
            )
        self.meter.report("downloading", state.done, force=True)
        return state

    def _headers_now(self) -> dict[str, str]:
        if not self.state.done:
            return self.headers
        ranged = dict(self.headers, Range=f"bytes={self.state.done}-")
        if self.check_etag and self.if_range:
            ranged["If-Range"] = self.if_range  # a changed file comes back whole (200)
        return ranged

    def _accept(self, response: httpx2.Response) -> None:
        """Decide what this response's body is before a byte of it is written."""
        status = response.status_code
        if status == 416:
            self._range_refused()
        if status in RETRYABLE_STATUS:
            raise _NoProgress(f"{self.host} answered HTTP {status} for the file's bytes")
        if status >= 400:
            raise DownloadError(
                f"{self.host} answered HTTP {status} for the file's bytes; try again later."
            )
        if status not in (200, 206):
            raise _NoProgress(f"{self.host} answered HTTP {status} instead of the file's bytes")
        self._check_same_file(response)
        if status == 206:
            start, total = _content_range(response)
            if total is not None and total != self.size:
                raise FileChangedUpstream(
                    f"{self.host} now says the file has {total:,} bytes, not {self.size:,}"
                )
            if start != self.state.done:
                raise _NoProgress(
                    f"{self.host} sent bytes from offset {start} when asked for "
                    f"{self.state.done} onwards"
                )
        elif self.state.done:  # 200: the server ignored the Range header; this is the whole file
            self._empty_partial()

    def _check_same_file(self, response: httpx2.Response) -> None:
        if not self.check_etag:
            return  # the SHA-256 check at the end decides
        raw = response.headers.get("ETag")
        if not raw:
            return
        etag = raw.lstrip("W/").strip('"')  # as huggingface_hub normalises the hub's ETag
        if self.etag is None:
            self.etag = etag
            self.if_range = None if raw.startswith("W/") else raw  # If-Range needs a strong one
        elif etag != self.etag:
            raise FileChangedUpstream(
                f"{self.hub_file.url.rsplit('/', 1)[-1]} changed on the server while it was "
                f"downloading (ETag {self.etag[:16]} became {etag[:16]})"
            )

    def _range_refused(self) -> None:
        offset = self.state.done
        where = f"the partial file {self.partial} ({offset:,} bytes)"
        if offset == 0 or self.restarted:
            raise DiscardPartial(
                f"{self.host} refused the byte range asked for (HTTP 416) even after starting "
                f"over; {where} was deleted. Try again later or check the mirror."
            )
        note = (
            f"{self.host} would not continue {where} (HTTP 416), so it was dropped and the "
            "download started over."
        )
        log.warning(note)
        self.state.notes.append(note)
        self.restarted = True
        self._empty_partial()
        raise _Restart

    def _empty_partial(self) -> None:
        self.out.truncate(0)
        self.out.seek(0)
        self.state.hasher = hashlib.sha256()
        self.state.done = 0
        self.meter.start(0)

    def _write(self, chunk: bytes) -> None:
        state = self.state
        room = self.size - state.done
        if len(chunk) > room:
            raise DiscardPartial(
                f"{self.host} sent more bytes than the {self.size:,} the file has; the partial "
                "file was deleted. Try again, or check the mirror."
            )
        self.out.write(chunk)
        state.hasher.update(chunk)
        state.done += len(chunk)
        self.meter.report("downloading", state.done)


def _content_range(response: httpx2.Response) -> tuple[int | None, int | None]:
    """START and TOTAL of `Content-Range: bytes START-END/TOTAL` (None where unreadable or `*`)."""
    text = response.headers.get("Content-Range", "")
    unit, _, rest = text.strip().partition(" ")
    span, _, total = rest.partition("/")
    first, _, last = span.partition("-")
    if unit != "bytes" or not (first.isdigit() and last.isdigit()):
        return None, None
    return int(first), int(total) if total.isdigit() else None
