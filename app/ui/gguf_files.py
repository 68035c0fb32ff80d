"""Picking a local GGUF file: the file dialog, and a .gguf dropped on a window."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QMimeData
from PySide6.QtWidgets import QFileDialog, QWidget


def choose_gguf_file(parent: QWidget) -> Path | None:
    name, _ = QFileDialog.getOpenFileName(
        parent, "Import a GGUF model", str(Path.home()), "GGUF models (*.gguf)"
    )
    return Path(name) if name else None


def dropped_gguf(mime: QMimeData) -> Path | None:
    """The first .gguf file among dropped URLs, if any."""
    for url in mime.urls():
        if url.toLocalFile().lower().endswith(".gguf"):
            return Path(url.toLocalFile())
    return None
