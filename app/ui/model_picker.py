"""The model picker: the starter model, the configured remote engine, recent files, and "Open
GGUF file…".

Signals:
    modelChosen(str)   "starter", a file path or a server's URL#model, picked by the user
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QFileDialog, QWidget

from app.core.models.display_name import readable_model_name
from app.core.models.starter import STARTER_KEY, STARTER_LABEL, starter_model_path
from app.core.remote.config import remote_choice_label
from app.core.remote.endpoint import looks_remote

OPEN_FILE = "__open__"
NONE = "__none__"


class ModelPicker(QComboBox):
    modelChosen = Signal(str)

    def __init__(self, recent: list[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        # Names read from loaded models' headers (general.name), by spec: a recent file that was
        # loaded keeps its readable name without the picker opening every file at start.
        self._names: dict[str, str] = {}
        self.setMinimumContentsLength(28)
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self._rebuild(recent, current=None)
        self.activated.connect(self._on_activated)

    def _rebuild(self, recent: list[str], current: str | None) -> None:
        self.blockSignals(True)
        self.clear()
        self.addItem("No model loaded", NONE)
        if starter_model_path() is not None:
            self.addItem(STARTER_LABEL, STARTER_KEY)
        remote = remote_choice_label()
        if remote is not None:
            endpoint, label, tooltip = remote
            self.addItem(label, endpoint)
            self.setItemData(self.count() - 1, tooltip, Qt.ItemDataRole.ToolTipRole)
        for spec in recent:
            if spec != STARTER_KEY and Path(spec).exists():
                self.addItem(self._label(spec), spec)
                self.setItemData(self.count() - 1, spec, Qt.ItemDataRole.ToolTipRole)
        self.addItem("Open GGUF file…", OPEN_FILE)
        self.set_current(current)
        self.blockSignals(False)

    def _label(self, spec: str) -> str:
        """A file's readable name (catalogue, starter, or header name with its quantization),
        never the raw file name unless that is all there is."""
        return self._names.get(spec) or readable_model_name(Path(spec), "")

    def set_recent(self, recent: list[str], current: str | None, name: str = "") -> None:
        """Rebuild the list; `name` is the current model's readable name, when it is loaded."""
        if current is not None and name and not looks_remote(current) and current != STARTER_KEY:
            self._names[current] = name
        self._rebuild(recent, current)

    def set_current(self, spec: str | None) -> None:
        index = self.findData(spec if spec is not None else NONE)
        if index < 0 and spec is not None:
            label = f"{spec.rpartition('#')[2] or spec} (remote)" if looks_remote(spec) else None
            self.insertItem(self.count() - 1, label or self._label(spec), spec)
            self.setItemData(self.count() - 2, spec, Qt.ItemDataRole.ToolTipRole)
            index = self.count() - 2
        self.blockSignals(True)
        self.setCurrentIndex(max(0, index))
        self.blockSignals(False)

    def current_spec(self) -> str | None:
        data = self.currentData()
        return data if isinstance(data, str) and data not in (NONE, OPEN_FILE) else None

    def _on_activated(self, index: int) -> None:
        data = self.itemData(index)
        if data == OPEN_FILE:
            path, _ = QFileDialog.getOpenFileName(
                self, "Open a GGUF model", str(Path.home()), "GGUF models (*.gguf);;All files (*)"
            )
            if path:
                self.set_current(path)
                self.modelChosen.emit(path)
            return
        if isinstance(data, str) and data != NONE:
            self.modelChosen.emit(data)
