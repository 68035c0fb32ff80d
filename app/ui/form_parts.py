"""Pieces every settings dialog has: the error line under the form, Save / Cancel, and a secret
field that a Show box reveals."""

from __future__ import annotations

from PySide6.QtWidgets import QCheckBox, QDialogButtonBox, QLabel, QLineEdit

from app.ui import theme


def error_label() -> QLabel:
    """A hidden, wrapping line in the theme's warning colour for one sentence about the form."""
    label = QLabel()
    label.setWordWrap(True)
    label.setStyleSheet(f"color: {theme.current().full};")
    label.hide()
    return label


def save_cancel_buttons() -> QDialogButtonBox:
    return QDialogButtonBox(
        QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
    )


def reveal_with(field: QLineEdit, show: QCheckBox) -> None:
    """`field` echoes dots, and its text while `show` is checked."""
    field.setEchoMode(QLineEdit.EchoMode.Password)
    show.toggled.connect(
        lambda shown: field.setEchoMode(
            QLineEdit.EchoMode.Normal if shown else QLineEdit.EchoMode.Password
        )
    )
