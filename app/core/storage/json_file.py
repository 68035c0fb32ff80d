"""Small JSON files LeanCoder owns (settings, network settings, the imported-models list): read
leniently, written atomically.

A hand-edited, older or damaged file may hold anything: reading takes only the values of the
expected types and falls back to defaults with a log line, never a traceback. Writing goes to a
temporary file in the same folder (mode 0600: a file may hold an access token), fsynced, then
renamed over the old one, so a crash never leaves half a file.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

Expected = Mapping[str, type | tuple[type, ...]]


def atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json_object(path: Path, what: str) -> dict[str, Any]:
    """The object in `path`; empty when there is none, or when it is unreadable (logged)."""
    try:
        raw: Any = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("%s at %s unreadable (%s); using defaults", what, path, exc)
        return {}
    if not isinstance(raw, dict):
        log.warning("%s at %s is not a JSON object; using defaults", what, path)
        return {}
    return raw


def typed_values(raw: Mapping[str, Any], expected: Expected) -> dict[str, Any]:
    """The values of `raw` whose key is expected and whose type is right (bool is no int)."""
    taken: dict[str, Any] = {}
    for key, types in expected.items():
        if key not in raw:
            continue
        value = raw[key]
        allowed = types if isinstance(types, tuple) else (types,)
        if isinstance(value, bool) and bool not in allowed:
            continue
        if isinstance(value, allowed):
            taken[key] = value
    return taken


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, ensure_ascii=False))
