"""Code folders: listing a folder (honouring .gitignore, skipping secrets and binaries), a compact
map of its files, and the context a model sees. No Qt here; progress flows through iterators."""

from app.core.workspace.context import WorkspaceContext, build_context, estimate_tokens
from app.core.workspace.repo_map import file_symbols, map_lines
from app.core.workspace.scan import (
    FileEntry,
    ScanBatch,
    ScanResult,
    SkippedEntry,
    WorkspaceError,
    explain_path,
    open_root,
    scan_all,
    scan_folder,
)

__all__ = [
    "FileEntry",
    "ScanBatch",
    "ScanResult",
    "SkippedEntry",
    "WorkspaceContext",
    "WorkspaceError",
    "build_context",
    "estimate_tokens",
    "explain_path",
    "file_symbols",
    "map_lines",
    "open_root",
    "scan_all",
    "scan_folder",
]
