"""Models → Local API server settings: how the window serves its model to coding tools.

The port (when 8421 is taken, or a tool expects another), whether other machines on the network
may connect (then an API key is required: "Generate" makes one, "Copy" puts it on the clipboard
for the tool's settings), the thinking policy for requests that name none, where streamed
thinking goes, and how often a streamed reply sends. Nothing is saved until the whole form is
valid (app.server.settings builds and checks the server's configuration); a problem is one
sentence under the form. Saving while the server runs restarts it with the new settings.

Signals:
    saved(object)   the ServerConfig to serve with from now on
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
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
from app.core.thinking.policy import PRESETS
from app.server.config import DEFAULT_PORT, STREAM_INTERVAL_MS
from app.server.settings import (
    REASONING_FIELDS,
    ServerSettings,
    keep_server_api_key,
    load_server_settings,
    new_api_key,
    save_server_settings,
    server_api_key,
)
from app.ui.form_parts import error_label, reveal_with, save_cancel_buttons

FIELD_LABELS = {
    "both": "Both fields (reasoning_content and reasoning)",
    "reasoning_content": "reasoning_content (llama.cpp, DeepSeek)",
    "reasoning": "reasoning (vLLM, Ollama)",
    "none": "Not sent",
}


class ServerSettingsDialog(QDialog):
    saved = Signal(object)

    def __init__(self, path: Path | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Local API server")
        self._path = path
        settings = load_server_settings(path)
        self.port = QSpinBox()
        self.port.setRange(1, 65535)
        self.port.setValue(settings.port if 1 <= settings.port <= 65535 else DEFAULT_PORT)
        self.network = QCheckBox("Let other machines on the network connect (needs the key)")
        self.network.setChecked(settings.network)
        self.api_key = QLineEdit(server_api_key())
        self.api_key.setPlaceholderText("none: any program on this machine may connect")
        self.show_key = QCheckBox("Show")
        self.generate = QPushButton("Generate")
        self.copy = QPushButton("Copy")
        self.policy = QComboBox()
        for name in (*PRESETS, "Custom"):
            self.policy.addItem(name)
        self.policy.setCurrentIndex(max(0, self.policy.findText(settings.policy)))
        self.fields = QComboBox()
        for key in REASONING_FIELDS:
            self.fields.addItem(FIELD_LABELS[key], key)
        self.fields.setCurrentIndex(max(0, self.fields.findData(settings.reasoning_fields)))
        self.interval = QSpinBox()
        self.interval.setRange(0, 1000)
        self.interval.setSingleStep(10)
        self.interval.setSuffix(" ms")
        self.interval.setSpecialValueText("every token")
        self.interval.setValue(settings.stream_interval_ms)
        self.interval.setToolTip(
            f"A streamed reply sends its new text at most this often (default "
            f"{STREAM_INTERVAL_MS} ms). Each update costs the tool and the server some CPU, which "
            "a small machine takes from the model's speed."
        )
        self.note = ""  # for the window's status bar once saved
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.error = error_label()
        self.buttons = save_cancel_buttons()
        self._layout()
        reveal_with(self.api_key, self.show_key)
        self.generate.clicked.connect(self._generate)
        self.copy.clicked.connect(self._copy)
        self.buttons.accepted.connect(self.save)
        self.buttons.rejected.connect(self.reject)

    def _layout(self) -> None:
        form = QFormLayout()
        form.addRow("Port", self.port)
        form.addRow("", self.network)
        key_row = QHBoxLayout()
        key_row.addWidget(self.api_key, 1)
        key_row.addWidget(self.show_key)
        key_row.addWidget(self.generate)
        key_row.addWidget(self.copy)
        form.addRow("API key", key_row)
        form.addRow("Thinking policy", self.policy)
        form.addRow("Streamed thinking in", self.fields)
        form.addRow("Stream updates", self.interval)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.status)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)
        text = self.api_key.placeholderText()
        self.api_key.setMinimumWidth(self.api_key.fontMetrics().horizontalAdvance(text) + 24)

    def current_settings(self) -> ServerSettings:
        return ServerSettings(
            port=self.port.value(),
            network=self.network.isChecked(),
            policy=self.policy.currentText(),
            reasoning_fields=str(self.fields.currentData()),
            stream_interval_ms=self.interval.value(),
        )

    def save(self) -> None:
        settings = self.current_settings()
        key = self.api_key.text().strip()
        try:
            config = settings.config(key)  # refuses a network without a key, a short key...
            save_server_settings(settings, self._path)
        except LeanCoderError as exc:
            self._fail(str(exc))
            return
        except OSError as exc:
            self._fail(f"Cannot save the settings: {(exc.strerror or 'write failed').lower()}.")
            return
        if not keep_server_api_key(key) and key:
            self.note = "No keyring here: the API key is kept until LeanCoder quits."
        self.saved.emit(config)
        self.accept()

    def _fail(self, message: str) -> None:
        self.error.setText(message)
        self.error.show()
        # Room for the sentence: the dialog was sized before it had one.
        layout = self.layout()
        if layout is not None:
            layout.activate()
        self.resize(self.width(), max(self.height(), self.sizeHint().height()))

    def _generate(self) -> None:
        self.api_key.setText(new_api_key())
        self.show_key.setChecked(True)

    def _copy(self) -> None:
        if self.api_key.text():
            QGuiApplication.clipboard().setText(self.api_key.text())
            self.status.setText("The key is on the clipboard: paste it in the tool's settings.")
