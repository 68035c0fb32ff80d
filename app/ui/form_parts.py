"""Pieces every settings dialog has: the error line under the form, and Save / Cancel."""

from __future__ import annotations

from PySide6.QtWidgets import QDialogButtonBox, QLabel

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
