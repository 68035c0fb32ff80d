"""The firewall settings: hub mirror, proxy, certificates, access token, offline mode.

Nothing is saved until every field is valid; a problem is shown under the form in one sentence and
the dialog stays open. Once shown, the problem is checked again as the user types and goes away as
soon as the fields are valid. The fields are wide enough for their placeholders, and the dialog's
text names no shell command and no raw OS error. Saved settings apply to the next download
(app.core.models.network).

Signals:
    settingsSaved(object)   the NetworkSettings as written to disk
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.core.models.network import (
    DEFAULT_ENDPOINT,
    SYSTEM_TRUST_STORE,
    NetworkSettings,
    NetworkSettingsError,
    load_network_settings,
    save_network_settings,
)
from app.ui.dialog_geometry import fit_and_centre
from app.ui.form_parts import error_label, save_cancel_buttons

TRUST_SYSTEM, TRUST_CERTIFI, TRUST_FILE = 0, 1, 2


class NetworkSettingsDialog(QDialog):
    settingsSaved = Signal(object)

    def __init__(
        self,
        settings: NetworkSettings | None = None,
        path: Path | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Network settings")
        self._path = path
        self._original = settings if settings is not None else load_network_settings(path)
        self.saved: NetworkSettings | None = None

        self.endpoint = QLineEdit(self._original.endpoint)
        self.endpoint.setPlaceholderText(f"{DEFAULT_ENDPOINT} (or HF_ENDPOINT)")
        self.proxy = QLineEdit(self._original.proxy)
        self.proxy.setPlaceholderText("from the environment (HTTPS_PROXY), if any")
        self.trust = QComboBox()
        self.trust.addItems(
            ["The operating system's trust store", "Python's bundled CAs", "A CA bundle file…"]
        )
        self.ca_file = QLineEdit()
        self.ca_file.setPlaceholderText("PEM file with your organisation's certificates")
        self.browse = QPushButton("Browse…")
        self.token = QLineEdit(self._original.token)
        self.token.setEchoMode(QLineEdit.EchoMode.Password)
        self.token.setPlaceholderText("for gated models; empty: the Hugging Face token saved here")
        self.show_token = QCheckBox("Show")
        self.offline = QCheckBox("Offline mode: never use the network")
        self.offline.setChecked(self._original.offline)
        self.error = error_label()
        self.buttons = save_cancel_buttons()

        ca = self._original.ca_bundle
        if ca == SYSTEM_TRUST_STORE:
            self.trust.setCurrentIndex(TRUST_SYSTEM)
        elif ca:
            self.trust.setCurrentIndex(TRUST_FILE)
            self.ca_file.setText(ca)
        else:
            self.trust.setCurrentIndex(TRUST_CERTIFI)
        self._layout()
        self._sync_trust()
        self.trust.currentIndexChanged.connect(self._sync_trust)
        self.browse.clicked.connect(self._choose_ca_file)
        self.show_token.toggled.connect(self._toggle_token)
        self.offline.toggled.connect(self._sync_offline)
        self.buttons.accepted.connect(self.save)
        self.buttons.rejected.connect(self.reject)
        self._sync_offline(self.offline.isChecked())
        for field in (self.endpoint, self.proxy, self.ca_file, self.token):
            field.textChanged.connect(self._recheck)
        self.trust.currentIndexChanged.connect(self._recheck)
        self.offline.toggled.connect(self._recheck)
        self._fit_placeholders()
        fit_and_centre(self, parent)

    def _layout(self) -> None:
        form = QFormLayout()
        form.addRow("Hub or mirror URL", self.endpoint)
        form.addRow("Proxy", self.proxy)
        form.addRow("Certificates", self.trust)
        ca_row = QHBoxLayout()
        ca_row.addWidget(self.ca_file)
        ca_row.addWidget(self.browse)
        form.addRow("CA bundle", ca_row)
        token_row = QHBoxLayout()
        token_row.addWidget(self.token)
        token_row.addWidget(self.show_token)
        form.addRow("Access token", token_row)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.offline)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)

    def _fit_placeholders(self) -> None:
        """Each field at least as wide as its placeholder, so no hint is cut off."""
        for field in (self.endpoint, self.proxy, self.ca_file, self.token):
            text = field.placeholderText() or field.text()
            field.setMinimumWidth(field.fontMetrics().horizontalAdvance(text) + 24)

    def _recheck(self) -> None:
        """A problem on screen is checked again on each change and cleared once fixed."""
        if self.error.isHidden():
            return
        try:
            self.current_settings().validated()
        except NetworkSettingsError as exc:
            self.error.setText(str(exc))
            return
        self.error.hide()

    def current_settings(self) -> NetworkSettings:
        """What the form says now (not yet validated)."""
        choice = self.trust.currentIndex()
        ca = {TRUST_SYSTEM: SYSTEM_TRUST_STORE, TRUST_CERTIFI: ""}.get(choice, self.ca_file.text())
        return replace(
            self._original,
            endpoint=self.endpoint.text(),
            proxy=self.proxy.text(),
            ca_bundle=ca,
            token=self.token.text(),
            offline=self.offline.isChecked(),
        )

    def save(self) -> None:
        """Validate and write; on a problem, say it and stay open."""
        try:
            saved = save_network_settings(self.current_settings(), self._path)
        except NetworkSettingsError as exc:
            self.error.setText(str(exc))
            self.error.show()
            return
        except OSError as exc:
            reason = exc.strerror or "the file could not be written"
            self.error.setText(f"Cannot save the settings: {reason.lower()}.")
            self.error.show()
            return
        self.error.hide()
        self.saved = saved
        self.settingsSaved.emit(saved)
        self.accept()

    def _sync_trust(self) -> None:
        wants_file = self.trust.currentIndex() == TRUST_FILE
        self.ca_file.setEnabled(wants_file)
        self.browse.setEnabled(wants_file)

    def _sync_offline(self, offline: bool) -> None:
        # Offline, the connection fields do nothing: grey them out so that is clear.
        for widget in (self.endpoint, self.proxy, self.trust, self.token):
            widget.setEnabled(not offline)
        if not offline:
            self._sync_trust()
        else:
            self.ca_file.setEnabled(False)
            self.browse.setEnabled(False)

    def _toggle_token(self, shown: bool) -> None:
        mode = QLineEdit.EchoMode.Normal if shown else QLineEdit.EchoMode.Password
        self.token.setEchoMode(mode)

    def _choose_ca_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "CA bundle", str(Path.home()), "Certificates (*.pem *.crt *.cer);;All files (*)"
        )
        if path:
            self.ca_file.setText(path)
