"""The undo record of one apply (a change set): where it lives, what it says, whether to trust it.

Layout: `data_dir()/undo/<folder-hash>/<change-set-id>/manifest.json` plus `files/<n>.orig`, the
bytes each file held before the apply. The manifest records, per file, what the apply did (modify,
create, delete), its permission bits, the SHA-256 of the bytes before and after (or, for a deleted
symbolic link, where it pointed), the folders the apply creates and the tag its temporary files
carry. It is written before the first file is touched, so it is also the apply's journal.

A manifest is read as untrusted input: a field of the wrong type, a backup outside `files/` or a
folder path that leaves the project makes it damaged (`DamagedManifestError`), never a traceback.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.core.edits.errors import EditError, UnsafePathError
from app.core.edits.safety import relative_parts
from app.core.storage.json_file import atomic_write_text
from app.core.storage.paths import data_dir

MANIFEST = "manifest.json"
STATES = ("applying", "applied", "undoing", "interrupted")
ACTIONS = ("modify", "create", "delete")
_BACKUP = re.compile(r"files/[0-9]{1,9}\.orig")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_TAG = re.compile(r"[0-9a-z-]{1,64}")


class DamagedManifestError(EditError):
    """An undo record cannot be read or does not make sense."""


def sha256(data: bytes | None) -> str | None:
    return None if data is None else hashlib.sha256(data).hexdigest()


def folder_key(folder: Path) -> str:
    return hashlib.sha256(str(folder.resolve()).encode("utf-8")).hexdigest()[:16]


def folder_store(folder: Path) -> Path:
    return data_dir() / "undo" / folder_key(folder)


@dataclass(slots=True)
class ManifestEntry:
    path: str  # relative to the folder
    action: str  # "modify", "create" or "delete"
    backup: str | None  # file under the change set holding the earlier bytes
    mode: int | None  # permission bits before the apply
    old_sha256: str | None
    new_sha256: str | None
    link: str | None = None  # a deleted symbolic link: where it pointed


@dataclass(slots=True)
class ChangeSet:
    id: str
    folder: str
    created: str
    state: str  # see STATES: "applying" is written before the first file
    checkpoint: str | None
    files: list[ManifestEntry]
    created_dirs: list[str] = field(default_factory=list)  # planned before the first write
    tag: str = "x"  # names the apply's temporary files (fsio.temp_path)

    def directory(self) -> Path:
        return folder_store(Path(self.folder)) / self.id

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "folder": self.folder, "created": self.created, "state": self.state,
            "checkpoint": self.checkpoint, "created_dirs": self.created_dirs, "tag": self.tag,
            "files": [
                {"path": e.path, "action": e.action, "backup": e.backup, "mode": e.mode,
                 "old_sha256": e.old_sha256, "new_sha256": e.new_sha256, "link": e.link}
                for e in self.files
            ],
        }  # fmt: skip

    def save(self) -> None:
        atomic_write_text(self.directory() / MANIFEST, json.dumps(self.to_dict(), indent=1))

    @classmethod
    def load(cls, path: Path) -> ChangeSet:
        """Read and check a manifest; DamagedManifestError says what is wrong with it."""
        try:
            raw: Any = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise DamagedManifestError("its manifest is missing") from None
        except OSError as exc:
            raise DamagedManifestError(f"its manifest cannot be read ({exc.strerror})") from None
        except (UnicodeDecodeError, ValueError):
            raise DamagedManifestError("its manifest is not valid JSON") from None
        try:
            return _parse(raw, path.parent.name)
        except (TypeError, ValueError, KeyError, UnsafePathError) as exc:
            raise DamagedManifestError(f"its manifest is damaged ({exc})") from None


def _parse(raw: Any, dir_name: str) -> ChangeSet:
    if not isinstance(raw, dict):
        raise TypeError("not an object")
    change_set = ChangeSet(
        id=_str(raw, "id"), folder=_str(raw, "folder"), created=_str(raw, "created"),
        state=_str(raw, "state"), checkpoint=_opt_str(raw, "checkpoint"),
        files=[_entry(item) for item in _list(raw, "files")],
        created_dirs=[_str({"d": d}, "d") for d in _list(raw, "created_dirs", [])],
        tag=_str({"tag": raw.get("tag", "x")}, "tag"),
    )  # fmt: skip
    if change_set.id != dir_name:
        raise ValueError("its id is not its folder's name")
    if change_set.state not in STATES:
        raise ValueError(f"unknown state {change_set.state!r}")
    if not _TAG.fullmatch(change_set.tag):
        raise ValueError("bad temporary-file tag")
    for folder in change_set.created_dirs:
        relative_parts(folder)
    return change_set


def _entry(item: Any) -> ManifestEntry:
    if not isinstance(item, dict):
        raise TypeError("a file entry is not an object")
    entry = ManifestEntry(
        _str(item, "path"), _str(item, "action"), _opt_str(item, "backup"), item.get("mode"),
        _opt_str(item, "old_sha256"), _opt_str(item, "new_sha256"), _opt_str(item, "link"),
    )  # fmt: skip
    relative_parts(entry.path)
    if entry.action not in ACTIONS:
        raise ValueError(f"unknown action {entry.action!r}")
    if entry.backup is not None and not _BACKUP.fullmatch(entry.backup):
        raise ValueError(f"backup {entry.backup!r} is not under files/")
    mode = entry.mode
    if mode is not None and (type(mode) is not int or not 0 <= mode <= 0o7777):
        raise ValueError(f"bad permission bits for {entry.path}")
    for digest in (entry.old_sha256, entry.new_sha256):
        if digest is not None and not _SHA256.fullmatch(digest):
            raise ValueError(f"bad checksum for {entry.path}")
    if (entry.backup is None) != (entry.old_sha256 is None) and entry.link is None:
        raise ValueError(f"backup and checksum of {entry.path} disagree")
    return entry


def _str(raw: dict[str, Any], key: str) -> str:
    value = raw[key]
    if not isinstance(value, str):
        raise TypeError(f"{key} is not text")
    return value


def _opt_str(raw: dict[str, Any], key: str) -> str | None:
    value = raw.get(key)
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{key} is not text")
    return value


def _list(raw: dict[str, Any], key: str, default: list[Any] | None = None) -> list[Any]:
    value = raw.get(key, default) if default is not None else raw[key]
    if not isinstance(value, list):
        raise TypeError(f"{key} is not a list")
    return value


@dataclass(frozen=True, slots=True)
class Record:
    """One change-set folder: its manifest, or why it cannot be trusted."""

    directory: Path
    change_set: ChangeSet | None
    problem: str = ""  # set when change_set is None


def records(folder: Path) -> list[Record]:
    """Every change-set folder recorded for `folder`, newest first, damaged ones included."""
    store = folder_store(folder)
    if not store.is_dir():
        return []
    found = []
    for directory in sorted((p for p in store.iterdir() if p.is_dir()), reverse=True):
        try:
            found.append(Record(directory, ChangeSet.load(directory / MANIFEST)))
        except DamagedManifestError as exc:
            found.append(Record(directory, None, str(exc)))
    return found
