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
    The root's own .gitignore is not included here: the scan adds each folder's as it enters it.
    """
    layers: list[IgnoreLayer] = []
    top = _repository_top(root)
    # A home folder kept in Git (dotfiles) often ignores "*": that must not hide every project
    # opened below it, which Git itself only sees as untracked files of the dotfiles repository.
    if top is None or (top != root and top == Path.home()):
        return ()
    exclude_file = top / ".git" / "info" / "exclude"
    exclude = read_layer(exclude_file, ".git/info/exclude", lead=_lead(top, root))
    if exclude is not None:
        layers.append(exclude)
    # Ancestors between the repository top and the root (exclusive), outermost first.
    ancestors: list[Path] = []
    folder = root.parent
    while top in folder.parents or folder == top:
        ancestors.append(folder)
        if folder == top:
            break
        folder = folder.parent
    for folder in reversed(ancestors):
        label = os.path.relpath(folder / ".gitignore", root).replace(os.sep, "/")
        layer = read_layer(folder / ".gitignore", label, lead=_lead(folder, root))
        if layer is not None:
            layers.append(layer)
    return tuple(layers)


def _lead(folder: Path, root: Path) -> str:
    rel = root.relative_to(folder).as_posix()
    return "" if rel == "." else rel + "/"


def _repository_top(root: Path) -> Path | None:
    """The nearest folder at or above `root` that holds a .git folder (or a worktree's file)."""
    for folder in (root, *root.parents):
        if (folder / ".git").exists():
            return folder
    return None
