"""Models → Remote engine: a team's inference server (llama-server, vLLM, Ollama, another
LeanCoder) as the model.

The address is `https://host:8000/v1#model-name`; the API key goes to the platform's keyring,
or, where there is none, is kept for this run only and asked again next time (never written to
a file). "Test connection" connects on the app's I/O pool (the window never waits on the
network) and shows what the server offers: its context and which thinking controls work there.
Nothing is saved until every field is valid; a problem is one sentence under the form.

Signals:
    remoteChosen(str)   the endpoint text, saved and to be loaded as the model
"""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.core.errors import LeanCoderError
from app.core.llm.engine_types import ModelInfo
from app.core.remote.config import (
    RemoteConfig,
    load_remote_config,
    remember_for_this_run,
    remote_options,
    save_remote_config,
    store_api_key,
    stored_api_key,
)
from app.core.remote.endpoint import parse_endpoint
from app.core.remote.engine import RemoteEngine
from app.ui.form_parts import error_label, reveal_with, save_cancel_buttons
from app.ui.tasks import Task, app_task_pool

TEMPLATE_CHOICES = (("model", "The server's, or the model's GGUF"), ("default", "Generic ChatML"))


class RemoteEngineDialog(QDialog):
    remoteChosen = Signal(str)

    def __init__(self, path: Path | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Remote engine")
        self._path = path
        self._config = load_remote_config(path)
        self._check: Task[ModelInfo] | None = None
        self.endpoint = QLineEdit(self._config.endpoint)
        self.endpoint.setPlaceholderText("https://gpu1.example.com:8000/v1#Qwen3-32B")
        self.api_key = QLineEdit()
        self.api_key.setPlaceholderText("empty: the server needs none, or the saved key")
        self.show_key = QCheckBox("Show")
        self.n_ctx = QSpinBox()
        self.n_ctx.setRange(0, 10_000_000)
        self.n_ctx.setSingleStep(1024)
        self.n_ctx.setSpecialValueText("what the server says (else 4,096)")
        self.n_ctx.setValue(self._config.n_ctx)
        self.template = QComboBox()
        for key, label in TEMPLATE_CHOICES:
            self.template.addItem(label, key)
        self.template.setCurrentIndex(max(0, self.template.findData(self._config.template)))
        self.gguf = QLineEdit(self._config.template_gguf)
        self.gguf.setPlaceholderText("optional: a local copy of the model's GGUF, for its template")
        self.browse = QPushButton("Browse…")
        self.status = QLabel(self._config.checked_result)
        self.status.setWordWrap(True)
        self.error = error_label()
        self.test_button = QPushButton("Test connection")
        self.buttons = save_cancel_buttons()
        self.buttons.button(QDialogButtonBox.StandardButton.Save).setText("Save and use")
        self._layout()
        if self._config.endpoint:
            self.api_key.setPlaceholderText(self._key_hint())
        reveal_with(self.api_key, self.show_key)
        self.browse.clicked.connect(self._choose_gguf)
        self.test_button.clicked.connect(self.test_connection)
        self.buttons.accepted.connect(self.save)
        self.buttons.rejected.connect(self.reject)

    def _layout(self) -> None:
        form = QFormLayout()
        form.addRow("Server and model", self.endpoint)
        key_row = QHBoxLayout()
        key_row.addWidget(self.api_key)
        key_row.addWidget(self.show_key)
        form.addRow("API key", key_row)
        form.addRow("Context (tokens)", self.n_ctx)
        form.addRow("Chat template", self.template)
        gguf_row = QHBoxLayout()
        gguf_row.addWidget(self.gguf)
        gguf_row.addWidget(self.browse)
        form.addRow("Model GGUF", gguf_row)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.status)
        layout.addWidget(self.error)
        row = QHBoxLayout()
        row.addWidget(self.test_button)
        row.addStretch(1)
        row.addWidget(self.buttons)
        layout.addLayout(row)
        for field in (self.endpoint, self.api_key, self.gguf):
            text = field.placeholderText()
            field.setMinimumWidth(field.fontMetrics().horizontalAdvance(text) + 24)

    def _key_hint(self) -> str:
        try:
            saved = stored_api_key(self._config.spec())
        except LeanCoderError:
            return self.api_key.placeholderText()
        return "saved in the keyring" if saved else self.api_key.placeholderText()

    def current_config(self) -> RemoteConfig:
        return dataclasses.replace(
            self._config,
            endpoint=self.endpoint.text(),
            n_ctx=self.n_ctx.value(),
            template=str(self.template.currentData()),
            template_gguf=self.gguf.text(),
        )

    def _fail(self, message: str) -> None:
        self.error.setText(message)
        self.error.show()

    def _keep_key(self, config: RemoteConfig) -> str:
        """Store the typed key (keyring, else this run only); the sentence says where."""
        key = self.api_key.text().strip()
        if not key:
            return ""
        spec = config.spec()
        if store_api_key(spec, key):
            return "The API key is saved in the system keyring."
        remember_for_this_run(spec, key)
        return ("No keyring on this system: the API key is kept until LeanCoder quits and "
                "asked for again next time.")  # fmt: skip

    def test_connection(self) -> None:
        """Connect on the I/O pool; the result (or the error) shows under the form."""
        try:
            config = self.current_config().validated()
            if not config.endpoint:
                raise LeanCoderError("Enter the server's address first.")
            self._keep_key(config)
        except LeanCoderError as exc:
            self._fail(str(exc))
            return
        self.error.hide()
        self.status.setText("Connecting…")
        self.test_button.setEnabled(False)
        spec = config.spec()
        options = remote_options(config, spec)

        def job(_cancel: threading.Event) -> ModelInfo:
            engine = RemoteEngine()
            try:
                return engine.connect(spec, options)
            finally:
                engine.unload()

        self._check = app_task_pool().submit(
            "remote engine check", job, on_done=self._checked, on_error=self._check_failed,
            owner=self,
        )  # fmt: skip

    def _checked(self, info: ModelInfo) -> None:
        self.test_button.setEnabled(True)
        result = f"Reachable: {info.name}, context {info.n_ctx:,} tokens."
        self.status.setText("\n".join([result, *info.notes]))
        self._config = dataclasses.replace(self._config, checked_n_ctx=info.n_ctx,
                                           checked_result=result)  # fmt: skip

    def _check_failed(self, exc: BaseException) -> None:
        self.test_button.setEnabled(True)
        message = str(exc) if isinstance(exc, LeanCoderError) else "The check failed."
        self.status.setText("")
        self._fail(message)
        self._config = dataclasses.replace(self._config, checked_result=f"Not reachable: "
                                           f"{message}")  # fmt: skip

    def save(self) -> None:
        try:
            if not self.endpoint.text().strip():
                raise LeanCoderError("Enter the server's address first.")
            parse_endpoint(self.endpoint.text())
            config = save_remote_config(self.current_config(), self._path)
            where = self._keep_key(config)
        except LeanCoderError as exc:
            self._fail(str(exc))
            return
        except OSError as exc:
            self._fail(f"Cannot save the settings: {(exc.strerror or 'write failed').lower()}.")
            return
        self._config = config
        if where:
            self.status.setText(where)
        self.remoteChosen.emit(config.endpoint)
        self.accept()

    def _choose_gguf(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "The model's GGUF", str(Path.home()), "GGUF models (*.gguf);;All files (*)"
        )
        if path:
            self.gguf.setText(path)
