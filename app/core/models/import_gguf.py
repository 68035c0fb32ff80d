"""GGUF models already on this machine: import one (USB stick, another folder), and find those
that other tools downloaded (the Hugging Face cache, LM Studio) so nothing is fetched twice.

Every file is checked by its GGUF header (`read_header`) before it is accepted; discovery lists
damaged files too, with the reason, so the UI can say why it does not offer them.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from app.core.errors import LeanCoderError
from app.core.gguf.header import GGUFHeader, read_header
from app.core.storage.json_file import read_json_object, write_json
from app.core.storage.paths import data_dir

log = logging.getLogger(__name__)

ImportMode = Literal["copy", "link", "register"]
Source = Literal["hf-cache", "lm-studio", "leancoder", "imported"]
COPY_BLOCK = 8 * 1024 * 1024
COMPARE_BLOCK = 4 * 1024 * 1024
MAX_DEPTH = 6  # folders below a root that discovery looks into
_SPLIT = re.compile(r"^(?P<stem>.+)-(?P<index>\d{5})-of-(?P<count>\d{5})\.gguf$", re.IGNORECASE)


class ModelImportError(LeanCoderError):
    """A file could not be imported (not GGUF, truncated, missing parts, disk full)."""


@dataclass(frozen=True, slots=True)
class FoundModel:
    path: Path  # for a split model, its first part
    size_bytes: int  # all parts together
    architecture: str | None
    name: str | None  # general.name from the header
    source: Source
    repo: str | None = None  # OWNER/NAME for a Hugging Face cache entry
    problem: str | None = None  # why it cannot be loaded; None when it can

    @property
    def usable(self) -> bool:
        return self.problem is None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "path": str(self.path)}


def models_dir() -> Path:
    """LeanCoder's own models folder (imports are copied or linked here)."""
    path = data_dir() / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path


def registry_path() -> Path:
    return data_dir() / "imported_models.json"


def lmstudio_model_dirs(home: Path | None = None) -> list[Path]:
    """LM Studio's models folders (the current one, and the one older versions used)."""
    base = home or Path.home()
    return [base / ".lmstudio" / "models", base / ".cache" / "lm-studio" / "models"]


# -- import ----------------------------------------------------------------------------------


def import_model(
    path: str | Path,
    mode: ImportMode = "copy",
    *,
    dest: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> FoundModel:
    """Accept a local GGUF after checking its header: copy or hard-link it (with the other parts
    of a split model) into the models folder, or just remember where it is (`register`).
    Hard links fall back to a copy across disks."""
    source = Path(path).expanduser()
    parts = split_parts(source)
    header = read_header(source)  # ModelFileError: missing, not GGUF, truncated, bad keys
    for part in parts[1:]:
        read_header(part)
    problem = model_problem(header)
    if problem is not None:
        raise ModelImportError(f"{source.name} cannot be used: it is {problem}.")
    total = sum(p.stat().st_size for p in parts)
    if mode == "register":
        register_model(source)
        return _found(source, total, header.architecture, header.name, "imported")
    folder = dest or models_dir()
    folder.mkdir(parents=True, exist_ok=True)
    if all(_same_file(p, folder / p.name) or _same_bytes(p, folder / p.name) for p in parts):
        # Imported before (or already in the folder): keep the copy that is there.
        return _found(folder / source.name, total, header.architecture, header.name, "leancoder")
    from app.core.models.download import check_free_disk

    names = _free_names(folder, parts)
    if mode == "copy" or not _try_link(parts, folder, names):
        check_free_disk(folder, total)
        copied = 0
        for part, name in zip(parts, names, strict=True):
            copied = _copy(part, folder / name, copied, total, progress, cancel)
    return _found(folder / names[0], total, header.architecture, header.name, "leancoder")


def use_in_place(path: str | Path) -> Path:
    """Accept a local GGUF where it lies (checked by its header, remembered, nothing copied);
    ModelFileError or ModelImportError say why a file cannot be used."""
    found = import_model(path, mode="register")
    if not found.usable:
        raise ModelImportError(found.problem or f"{Path(path).name} cannot be used as a model.")
    return found.path


def split_parts(path: Path) -> list[Path]:
    """[path] for a single-file model; every part, in order, for `NAME-00001-of-000NN.gguf`."""
    match = _SPLIT.match(path.name)
    if match is None:
        return [path]
    count = int(match["count"])
    if int(match["index"]) != 1:
        raise ModelImportError(
            f"{path.name} is part {int(match['index'])} of a split model; choose its first part "
            f"({match['stem']}-00001-of-{match['count']}.gguf)."
        )
    parts = [path.with_name(f"{match['stem']}-{i:05d}-of-{match['count']}.gguf")
             for i in range(1, count + 1)]  # fmt: skip
    missing = [p.name for p in parts if not p.is_file()]
    if missing:
        raise ModelImportError(
            f"{path.name} is a model split into {count} files, but {', '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} missing from {path.parent}."
        )
    return parts


def _same_file(a: Path, b: Path) -> bool:
    try:
        return b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _same_bytes(a: Path, b: Path) -> bool:
    """Same size, same first and last blocks: the same model file (hashing gigabytes to be sure
    would make a repeated import slower than the copy it avoids)."""
    try:
        if not b.is_file() or a.stat().st_size != b.stat().st_size:
            return False
        with a.open("rb") as fa, b.open("rb") as fb:
            if fa.read(COMPARE_BLOCK) != fb.read(COMPARE_BLOCK):
                return False
            fa.seek(-min(COMPARE_BLOCK, a.stat().st_size), os.SEEK_END)
            fb.seek(-min(COMPARE_BLOCK, b.stat().st_size), os.SEEK_END)
            return fa.read() == fb.read()
    except OSError:
        return False


def _free_names(folder: Path, parts: list[Path]) -> list[str]:
    """The parts' names, or the same names with `-2`, `-3`… when something else has them."""
    for attempt in range(1, 1000):
        suffix = "" if attempt == 1 else f"-{attempt}"
        names = [_with_suffix(p.name, suffix) for p in parts]
        if not any((folder / n).exists() for n in names):
            return names
    raise ModelImportError(f"Too many files named like {parts[0].name} in {folder}.")


def _with_suffix(name: str, suffix: str) -> str:
    match = _SPLIT.match(name)
    if match is not None:
        return f"{match['stem']}{suffix}-{match['index']}-of-{match['count']}.gguf"
    stem, dot, ext = name.rpartition(".")
    return f"{stem}{suffix}{dot}{ext}" if dot else name + suffix


def _try_link(parts: list[Path], folder: Path, names: list[str]) -> bool:
    linked: list[Path] = []
    try:
        for part, name in zip(parts, names, strict=True):
            os.link(part, folder / name)
            linked.append(folder / name)
    except OSError:  # another disk, or a file system without hard links: copy instead
        for done in linked:
            done.unlink(missing_ok=True)
        return False
    return True


def _copy(
    source: Path,
    target: Path,
    copied: int,
    total: int,
    progress: Callable[[int, int], None] | None,
    cancel: Callable[[], bool] | None,
) -> int:
    """Copy through a hidden temporary name, then rename: a crash never leaves half a model."""
    temporary = target.with_name(f".{target.name}.importing")
    try:
        with source.open("rb") as reader, temporary.open("wb") as writer:
            while block := reader.read(COPY_BLOCK):
                if cancel is not None and cancel():
                    raise ModelImportError(f"Import of {source.name} cancelled; nothing was kept.")
                writer.write(block)
                copied += len(block)
                if progress is not None:
                    progress(copied, total)
            writer.flush()
            os.fsync(writer.fileno())
        os.replace(temporary, target)
    except OSError as exc:
        raise ModelImportError(
            f"Cannot copy {source.name} to {target.parent}: {exc.strerror or exc}."
        ) from exc
    finally:
        temporary.unlink(missing_ok=True)
    return copied


# -- the register of files used where they are ------------------------------------------------


def registered_models() -> list[Path]:
    paths = read_json_object(registry_path(), "imported models list").get("paths", [])
    return [Path(p) for p in paths if isinstance(p, str)] if isinstance(paths, list) else []


def register_model(path: Path) -> None:
    resolved = path.expanduser().resolve()
    paths = [p for p in registered_models() if p != resolved]
    _save_registry([resolved, *paths])


def unregister_model(path: Path) -> None:
    resolved = path.expanduser().resolve()
    _save_registry([p for p in registered_models() if p != resolved])


def _save_registry(paths: Sequence[Path]) -> None:
    write_json(registry_path(), {"paths": [str(p) for p in paths]})


# -- discovery -------------------------------------------------------------------------------


def discover_models(
    *,
    hf_cache: Path | None = None,
    lmstudio_dirs: Sequence[Path] | None = None,
    app_models_dir: Path | None = None,
    include_registered: bool = True,
) -> list[FoundModel]:
    """Every GGUF model in the Hugging Face cache, LM Studio's folders, LeanCoder's own folder and
    the files registered in place; each real file once (links are followed to their target)."""
    from app.core.models.hub_cache import default_hub_cache

    roots: list[tuple[Source, Path]] = [("leancoder", app_models_dir or models_dir())]
    roots += [("lm-studio", d) for d in (lmstudio_dirs or lmstudio_model_dirs())]
    found: list[FoundModel] = []
    seen: set[str] = set()

    def add(path: Path, source: Source, repo: str | None = None) -> None:
        key = os.path.realpath(path)
        if key not in seen:
            seen.add(key)
            found.append(describe_model(path, source, repo))

    for path, repo in _hf_cache_files(hf_cache or default_hub_cache()):
        add(path, "hf-cache", repo)
    for source, root in roots:
        for path in _gguf_files(root):
            add(path, source)
    if include_registered:
        for path in registered_models():
            if path.exists():
                add(path, "imported")
            else:
                found.append(_found(path, 0, None, None, "imported", problem="the file is gone"))
    return found


def describe_model(path: Path, source: Source, repo: str | None = None) -> FoundModel:
    """A FoundModel for one file, with its header's architecture, or the problem with it. Never
    raises: one unreadable file in a scanned folder is listed with its reason, and discovery
    goes on to the next."""
    try:
        parts = split_parts(path)
        size = sum(p.stat().st_size for p in parts)
        header = read_header(path)
    except (LeanCoderError, OSError) as exc:
        return _found(path, _size(path), None, None, source, repo, problem=_reason(exc))
    except Exception as exc:  # a bug here must not hide every other model; it is logged
        log.exception("reading %s failed", path)
        problem = f"LeanCoder could not read it ({type(exc).__name__}); please report this"
        return _found(path, _size(path), None, None, source, repo, problem=problem)
    return _found(
        path, size, header.architecture, header.name, source, repo, model_problem(header)
    )


def model_problem(header: GGUFHeader) -> str | None:
    """Why a readable GGUF is still not a model to run (None when it is one)."""
    if header.architecture == "clip":
        return "a vision projector (mmproj) that belongs to another model, not a model itself"
    if not header.tensors and not header.is_split:
        return "a GGUF file without weights (a vocabulary-only file?), not a model"
    return None


def _reason(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, LeanCoderError) else f"cannot read it: {exc}"


def _size(path: Path) -> int:
    try:
        return path.stat().st_size if path.is_file() else 0
    except OSError:
        return 0


def _found(
    path: Path,
    size: int,
    arch: str | None,
    name: str | None,
    source: Source,
    repo: str | None = None,
    problem: str | None = None,
) -> FoundModel:
    return FoundModel(path, size, arch or None, name or None, source, repo, problem)


def _hf_cache_files(cache: Path) -> Iterator[tuple[Path, str]]:
    """(snapshot file, repo id) for each GGUF in the cache's model repositories."""
    try:
        repos = sorted(p for p in cache.iterdir() if p.name.startswith("models--"))
    except OSError:
        return
    for repo_dir in repos:
        owner, _, name = repo_dir.name.removeprefix("models--").partition("--")
        repo = f"{owner}/{name}" if name else owner
        for path in _gguf_files(repo_dir / "snapshots"):
            yield path, repo


def _gguf_files(root: Path) -> Iterator[Path]:
    """`*.gguf` files below `root` (not hidden ones, not later parts of split models)."""
    if not root.is_dir():
        return
    base_depth = len(root.parts)
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        if len(here.parts) - base_depth >= MAX_DEPTH:
            dirs.clear()
        for name in sorted(files):
            if name.startswith(".") or not name.lower().endswith(".gguf"):
                continue
            match = _SPLIT.match(name)
            if match is None or int(match["index"]) == 1:
                yield here / name
