"""A compact "This machine" panel: RAM, CPU and features, each GPU, free disk, bandwidth.

Detection can take seconds (a vendor tool, a GPU driver's first query), so `HardwareDetector` runs
`detect_hardware` as a job on the app's I/O pool (app.ui.tasks), which hands the result to the GUI
thread.

HardwareDetector signals:
    detected(object)   HardwareInfo
    failed(str)        a one-line message (detection itself never raises for a probe)
HardwarePanel signals:
    detected(object)   HardwareInfo, once it is shown
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import (
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.core.machine.hardware import detect_hardware
from app.core.machine.info import HardwareInfo, summary_rows
from app.ui.measured_bandwidth import measured_bandwidth
from app.ui.tasks import Task, TaskPool, app_task_pool


class HardwareDetector(QObject):
    detected = Signal(object)
    failed = Signal(str)

    def __init__(self, parent: QObject, pool: TaskPool | None = None) -> None:
        super().__init__(parent)
        self._pool = pool
        self.task: Task[HardwareInfo] | None = None  # the detection under way, until it answers

    @property
    def running(self) -> bool:
        return self.task is not None

    def start(
        self,
        models_dir: Path | None = None,
        *,
        measure_bandwidth: bool = False,
        timeout_s: float = 3.0,
    ) -> bool:
        """Start one detection; False (and nothing started) while one is still running."""
        if self.running:
            return False
        pool = self._pool or app_task_pool()
        self.task = pool.submit(
            "detect hardware",
            lambda _cancel: detect_hardware(
                models_dir, timeout_s=timeout_s, measure_bandwidth=measure_bandwidth
            ),
            on_done=self._on_detected,
            on_error=self._on_failed,  # a bug in detection: also logged and reported by the pool
            owner=self,
        )
        return True

    def _on_detected(self, info: HardwareInfo) -> None:
        self.task = None
        self.detected.emit(info)

    def _on_failed(self, error: BaseException) -> None:
        self.task = None
        self.failed.emit(f"Could not inspect this machine: {error}")


class HardwarePanel(QGroupBox):
    detected = Signal(object)

    def __init__(self, parent: QWidget | None = None, models_dir: Path | None = None) -> None:
        super().__init__("This machine", parent)
        self.models_dir = models_dir
        self.info: HardwareInfo | None = None
        self.detector = HardwareDetector(self)
        self.detector.detected.connect(self.show_info)
        self.detector.failed.connect(self._show_failure)

        self._form = QFormLayout()
        self._form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.status = QLabel("Not inspected yet.")
        self.notes = QLabel("")
        self.notes.setWordWrap(True)
        self.notes.setStyleSheet("color: palette(placeholder-text);")
        self.notes.hide()
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.clicked.connect(lambda: self.refresh())
        self.bandwidth_button = QPushButton("Measure memory speed")
        self.bandwidth_button.setToolTip(
            "A half-second memory copy benchmark: decode speed is bounded by memory bandwidth."
        )
        self.bandwidth_button.clicked.connect(lambda: self.refresh(measure_bandwidth=True))
        buttons = QHBoxLayout()
        buttons.addWidget(self.status, 1)
        buttons.addWidget(self.refresh_button)
        buttons.addWidget(self.bandwidth_button)
        layout = QVBoxLayout(self)
        layout.addLayout(self._form)
        layout.addWidget(self.notes)
        layout.addLayout(buttons)

    def refresh(self, *, measure_bandwidth: bool = False) -> None:
        """Detect again, off the GUI thread; the panel fills in when the answer arrives."""
        if self.detector.start(self.models_dir, measure_bandwidth=measure_bandwidth):
            self.status.setText(
                "Measuring memory speed…" if measure_bandwidth else "Inspecting this machine…"
            )
            self.refresh_button.setEnabled(False)
            self.bandwidth_button.setEnabled(False)

    def show_info(self, info: HardwareInfo) -> None:
        info = measured_bandwidth().fill(info)  # the last measurement, also from an earlier run
        self.info = info
        while self._form.rowCount():
            self._form.removeRow(0)
        for label, text in summary_rows(info):
            value = QLabel(text)
            value.setWordWrap(True)
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            self._form.addRow(f"{label}:", value)
        self.notes.setText("\n".join(info.notes))
        self.notes.setVisible(bool(info.notes))
        self.status.setText("")
        self._enable_buttons()
        self.detected.emit(info)

    def row_texts(self) -> list[tuple[str, str]]:
        """What the panel shows, as (label, text) pairs (for tests and accessibility tools)."""
        rows = []
        for row in range(self._form.rowCount()):
            label = self._form.itemAt(row, QFormLayout.ItemRole.LabelRole)
            field = self._form.itemAt(row, QFormLayout.ItemRole.FieldRole)
            label_widget = label.widget() if label else None
            field_widget = field.widget() if field else None
            if isinstance(label_widget, QLabel) and isinstance(field_widget, QLabel):
                rows.append((label_widget.text().rstrip(":"), field_widget.text()))
        return rows

    def _show_failure(self, message: str) -> None:
        self.status.setText(message)
        self._enable_buttons()

    def _enable_buttons(self) -> None:
        self.refresh_button.setEnabled(True)
        self.bandwidth_button.setEnabled(True)
