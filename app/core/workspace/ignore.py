"""Git's ignore rules: .gitignore files at every level, .git/info/exclude, and a repository above.

Git's precedence is kept: a deeper .gitignore overrides a shallower one, and inside one file the
last matching pattern wins (so `!keep.log` after `*.log` re-includes). A folder that is ignored is
never entered, which is also Git's rule that nothing under an ignored folder can be re-included.
Matching uses `pathspec.GitIgnoreSpec`, which follows Git's wildmatch semantics.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pathspec

_MAX_IGNORE_FILE_BYTES = 1024 * 1024  # a bigger "gitignore" is not one; skip rather than stall


@dataclass(frozen=True, slots=True)
class IgnoreLayer:
    """The patterns of one ignore file, anchored at the folder holding it."""

    spec: pathspec.GitIgnoreSpec
    source: str  # shown to the user: ".gitignore", "src/.gitignore", ".git/info/exclude"
    base: str  # its folder relative to the scan root ("" for the root); "" also for ancestors
    lead: str  # for files above the root: the root's path below their folder, e.g. "src/"

    def match(self, rel: str, is_dir: bool) -> tuple[bool, str] | None:
        """(ignored, pattern) for the last pattern of this file that matches, or None."""
        sub = rel[len(self.base) + 1 :] if self.base else self.lead + rel
        result = self.spec.check_file(sub + "/" if is_dir else sub)
        if result.include is None or result.index is None:
            return None
        pattern = getattr(self.spec.patterns[result.index], "pattern", None)
        return bool(result.include), str(pattern) if pattern is not None else "?"


Layers = tuple[IgnoreLayer, ...]


def read_layer(path: Path, source: str, base: str = "", lead: str = "") -> IgnoreLayer | None:
    """An ignore file's layer, or None when it is missing, unreadable, empty or absurdly big."""
    try:
        if not path.is_file() or path.stat().st_size > _MAX_IGNORE_FILE_BYTES:
            return None
        data = path.read_bytes()
    except OSError:
        return None
    lines = data.decode("utf-8", errors="replace").splitlines()
    try:
        spec = pathspec.GitIgnoreSpec.from_lines(lines)
    except (ValueError, TypeError):  # a pattern pathspec cannot compile: ignore that file
        return None
    if not spec.patterns:
        return None
    return IgnoreLayer(spec=spec, source=source, base=base, lead=lead)


def match(layers: Layers, rel: str, is_dir: bool) -> tuple[str, str] | None:
    """(source, pattern) when the path is ignored; None when it is not (or re-included)."""
    for layer in reversed(layers):  # deepest first: it overrides the ones above
        found = layer.match(rel, is_dir)
        if found is not None:
            ignored, pattern = found
            return (layer.source, pattern) if ignored else None
    return None


def root_layers(root: Path) -> Layers:
    """The layers that apply at the scan root: those of a repository above it, then its own.

    Opening `repo/src` still honours `repo/.gitignore` and `repo/.git/info/exclude`, as Git would.
    Opening a folder that those rules ignore (`repo/build`, or a project under a home folder kept
    in Git that ignores "*") shows it as a project of its own: the user asked for that folder.
    The root's own .gitignore is not included here: the scan adds each folder's as it enters it.
    """
    top = _repository_top(root)
    if top is None:
        return ()
    placed: list[tuple[Path, IgnoreLayer]] = []  # (the folder whose rules they are, its layer)
    exclude = read_layer(top / ".git" / "info" / "exclude", ".git/info/exclude", lead="")
    if exclude is not None:
        placed.append((top, exclude))
    # Ancestors from the repository top down to the root's parent.
    for folder in reversed([f for f in root.parents if f == top or top in f.parents]):
        label = os.path.relpath(folder / ".gitignore", root).replace(os.sep, "/")
        layer = read_layer(folder / ".gitignore", label, lead="")
        if layer is not None:
            placed.append((folder, layer))
    if not placed or _path_ignored(root, top, placed):
        return ()
    return tuple(
        IgnoreLayer(spec=layer.spec, source=layer.source, base="", lead=_lead(folder, root))
        for folder, layer in placed
    )


def _path_ignored(root: Path, top: Path, placed: list[tuple[Path, IgnoreLayer]]) -> bool:
    """Whether the root, or a folder between the repository top and it, is ignored."""
    for folder in [*reversed([f for f in root.parents if top in f.parents]), root]:
        for owner, layer in reversed(placed):  # the deepest rules decide
            if owner != folder and owner in folder.parents:
                found = layer.match(folder.relative_to(owner).as_posix(), is_dir=True)
                if found is not None:
                    if found[0]:
                        return True
                    break
    return False


def _lead(folder: Path, root: Path) -> str:
    rel = root.relative_to(folder).as_posix()
    return "" if rel == "." else rel + "/"


def _repository_top(root: Path) -> Path | None:
    """The nearest folder at or above `root` that holds a .git folder (or a worktree's file)."""
    for folder in (root, *root.parents):
        if (folder / ".git").exists():
            return folder
    return None
