"""Loading a model in the window: the load through the fit plan, its progress, the label that
names what is loaded, and a failure that leaves the previous model usable."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject

from app.core.errors import LeanCoderError
from app.core.llm.engine import LoadOptions, ModelInfo
from app.core.models.display_name import readable_model_name
from app.core.models.starter import resolve_model
from app.core.remote.endpoint import looks_remote, parse_endpoint

if TYPE_CHECKING:
    from app.ui.main_window import MainWindow


class ModelLoading(QObject):
    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self._window = window
        self.loading_spec: str | None = None  # what is being loaded now
        self.model_spec: str | None = None  # what is loaded now ("starter" or a path)
        bridge = window.bridge
        bridge.loadProgress.connect(lambda f: window.load_progress.setValue(int(f * 100)))
        bridge.modelLoaded.connect(self._on_loaded)
        bridge.loadFailed.connect(self._on_failed)

    @property
    def loading(self) -> bool:
        return self.loading_spec is not None

    def load(self, spec: str) -> None:
        w = self._window
        if looks_remote(spec):  # a server's model (Models → Remote engine): connect, no file
            try:
                host = parse_endpoint(spec).host
            except LeanCoderError as exc:
                w.show_error("Cannot use the remote engine", str(exc))
                return
            self.loading_spec = spec
            w.model_label.setText(f"Connecting to {host}…")
            w.update_controls()
            w.bridge.connect_remote(spec)
            return
        try:
            path = resolve_model(spec)
        except LeanCoderError as exc:
            w.show_error("Cannot load the model", str(exc))
            return
        self.loading_spec = spec
        w.model_label.setText(f"Loading {path.name}…")
        w.load_progress.setValue(0)
        w.load_progress.show()
        w.update_controls()
        settings = w.settings
        options = LoadOptions(
            n_ctx=settings.n_ctx,
            n_gpu_layers=settings.n_gpu_layers,
            n_threads=settings.n_threads or None,  # clamped by the engine, with a note
            front_end="window",
            cache_mode="fast" if settings.kv_fast_mode else "exact",
        )
        w.bridge.load(path, options, plan=True)

    def _on_loaded(self, info: ModelInfo) -> None:
        w = self._window
        spec = self.loading_spec or str(info.path)
        self.loading_spec = None
        w.model_info = info
        self.model_spec = spec
        w.load_progress.hide()
        self.show_label()
        for note in info.notes:
            w.statusBar().showMessage(note, 8000)
        w.settings.remember_model(spec)
        w.save_settings()
        w.model_picker.set_recent(
            w.settings.recent_models, spec, readable_model_name(info.path, info.name)
        )
        w.update_controls()

    def _on_failed(self, message: str) -> None:
        w = self._window
        self.loading_spec = None
        w.model_info = w.bridge.model_info  # a rejected file leaves the old model loaded
        if w.model_info is None:
            self.model_spec = None
        w.load_progress.hide()
        self.show_label()
        w.model_picker.set_current(self.model_spec)
        w.update_controls()
        w.show_error("Cannot load the model", message)

    def show_label(self) -> None:
        w = self._window
        info = w.model_info
        w.meters.set_model(info, w.policy)
        if info is None:
            w.model_label.setText("No model loaded")
            return
        # One short line: the thinking format is the thinking meter's to show, not repeated here.
        name = readable_model_name(info.path, info.name)
        w.model_label.setText(f"{name} · context {info.n_ctx:,}")
        w.model_label.setToolTip(f"{info.path}\n{info.architecture}, {info.n_params:,} parameters")
