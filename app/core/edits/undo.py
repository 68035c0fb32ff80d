"""Undo: every applied change set keeps the files' earlier bytes, so it can be reversed exactly.

Layout: `data_dir()/undo/<folder-hash>/<change-set-id>/manifest.json` plus `files/<n>.orig`, the
bytes each file held before the apply. The manifest records, per file, what the apply did (modify,
create, delete), its permission bits and the SHA-256 of the bytes before and after. `undo_last`
restores the newest change set only if every file still holds what the apply wrote; otherwise it
refuses and names the files that changed since.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from app.core.edits.errors import ConflictError, EditError, NothingToUndoError
from app.core.edits.fsio import atomic_write_bytes, read_or_none, remove_empty_dirs
from app.core.edits.safety import resolve_in_folder
from app.core.edits.transaction import WriteStep, run_steps
from app.core.storage.paths import data_dir
from app.core.storage.settings import atomic_write_text

KEEP_CHANGE_SETS = 30
MANIFEST = "manifest.json"


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


@dataclass(slots=True)
class ChangeSet:
    id: str
    folder: str
    created: str
    state: str  # "applying" (written before the first file) or "applied"
    checkpoint: str | None
    files: list[ManifestEntry]
    created_dirs: list[str] = field(default_factory=list)

    def directory(self) -> Path:
        return folder_store(Path(self.folder)) / self.id

    def save(self) -> None:
        atomic_write_text(self.directory() / MANIFEST, json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, path: Path) -> ChangeSet:
        raw: Any = json.loads(path.read_text(encoding="utf-8"))
        files = [ManifestEntry(**entry) for entry in raw.pop("files")]
        return cls(files=files, **raw)


@dataclass(frozen=True, slots=True)
class UndoResult:
    change_set: str
    restored: list[str]  # files given back their earlier bytes
    removed: list[str]  # files the apply had created
    checkpoint: str | None


def begin_change_set(folder: Path, steps: list[WriteStep], checkpoint: str | None) -> ChangeSet:
    """Back up every file the steps touch and record the manifest, before anything is written."""
    change_set_id = f"{time.time_ns():020d}-{secrets.token_hex(3)}"
    entries: list[ManifestEntry] = []
    change_set = ChangeSet(
        change_set_id, str(folder.resolve()), time.strftime("%Y-%m-%dT%H:%M:%S%z"), "applying",
        checkpoint, entries,
    )  # fmt: skip
    try:
        (change_set.directory() / "files").mkdir(parents=True, exist_ok=True)
        for number, step in enumerate(steps):
            backup = None
            if step.before is not None:
                backup = f"files/{number}.orig"
                atomic_write_bytes(change_set.directory() / backup, step.before, 0o600)
            action = (
                "create" if step.before is None else "delete" if step.after is None else "modify"
            )
            entries.append(ManifestEntry(step.rel, action, backup, step.before_mode,
                                         sha256(step.before), sha256(step.after)))  # fmt: skip
        change_set.save()
    except BaseException:
        discard_change_set(change_set)  # a half-written backup is no backup
        raise
    _prune(folder)
    return change_set


def finish_change_set(change_set: ChangeSet, root: Path, created_dirs: list[Path]) -> None:
    change_set.state = "applied"
    change_set.created_dirs = [d.relative_to(root).as_posix() for d in created_dirs]
    change_set.save()


def discard_change_set(change_set: ChangeSet) -> None:
    shutil.rmtree(change_set.directory(), ignore_errors=True)


def list_change_sets(folder: Path) -> list[ChangeSet]:
    """The folder's recorded change sets, newest first (unreadable manifests are skipped)."""
    store = folder_store(folder)
    if not store.is_dir():
        return []
    found = []
    for manifest in sorted(store.glob(f"*/{MANIFEST}"), reverse=True):
        try:
            found.append(ChangeSet.load(manifest))
        except (OSError, ValueError, TypeError, KeyError):
            continue
    return found


def _prune(folder: Path) -> None:
    for old in list_change_sets(folder)[KEEP_CHANGE_SETS:]:
        discard_change_set(old)


def undo_last(folder: Path) -> UndoResult:
    """Reverse the newest change set applied in `folder`, byte for byte, or refuse clearly."""
    if not folder.is_dir():
        raise EditError(f"The folder {folder} does not exist.")
    sets = list_change_sets(folder)
    if not sets:
        raise NothingToUndoError(f"Nothing to undo in {folder}: no applied edit is recorded.")
    change_set = sets[0]
    root = folder.resolve()
    steps: list[WriteStep] = []
    changed: list[str] = []
    for entry in change_set.files:
        real = resolve_in_folder(root, entry.path)
        current = read_or_none(real)
        if sha256(current) == entry.old_sha256:
            continue  # already as it was (an apply interrupted before this file)
        if sha256(current) != entry.new_sha256:
            changed.append(entry.path)
            continue
        earlier = None
        if entry.backup is not None:
            try:
                earlier = (change_set.directory() / entry.backup).read_bytes()
            except OSError:
                earlier = None
            if earlier is None or sha256(earlier) != entry.old_sha256:
                raise EditError(
                    f"The undo copy of {entry.path} is missing or damaged; nothing was undone."
                )
        mode = _mode(real) if current is not None else None
        steps.append(WriteStep(real, entry.path, current, earlier, mode, entry.mode))
    if changed:
        raise ConflictError(
            f"{', '.join(changed)} changed since the edit was applied, so undoing it would lose "
            "those changes; nothing was undone.",
            changed,
        )
    run_steps(root, steps)
    remove_empty_dirs([root / d for d in change_set.created_dirs])
    discard_change_set(change_set)
    return UndoResult(
        change_set.id,
        [s.rel for s in steps if s.after is not None],
        [s.rel for s in steps if s.after is None],
        change_set.checkpoint,
    )


def _mode(path: Path) -> int:
    return os.stat(path).st_mode & 0o7777
