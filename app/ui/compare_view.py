"""Side by side: one prompt under two thinking policies, so the user sees what pruning saved
and what it cost. Both runs stream live into their columns; the table and the answer diff fill in
when the second finishes, and the result exports as Markdown or JSON.

On a model without a thinking format the policies have nothing to act on, so both runs would be
the same: Run asks first (Force thinking, or run anyway) instead of showing two equal columns
that look like "pruning changes nothing". Each column says what its side saved against the other;
the columns wrap their text and never grow wider than the window.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.core.evals.compare import BOTH_EMPTY, Comparison
from app.core.llm.engine import GenerationEvent, SamplingParams
from app.core.storage.json_file import atomic_write_text
from app.core.thinking.parser import ThinkingFormat
from app.core.thinking.policy import PRESETS, ThinkingPolicy
from app.ui.chat_view import MessageWidget, format_stats
from app.ui.engine_bridge import EngineBridge

COMPARE_SEED = 1234


class ComparePane(QWidget):
    """One column: the policy's name, its streaming reply (thinking collapsible), its stats."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        self.title = QLabel("", self)
        self.title.setWordWrap(True)
        self.title.setStyleSheet("font-weight: bold; font-size: 14px;")
        self.saved = QLabel("", self)  # what this side saved against the other, when both ran
        self.saved.setWordWrap(True)
        body = QWidget(self)
        body_layout = QVBoxLayout(body)
        self.message = MessageWidget("assistant", body)
        body_layout.addWidget(self.message)
        body_layout.addStretch(1)  # the reply sits at the top, not spread over the column
        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        # Text wraps to the column; nothing in it may widen the column past the window.
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(body)
        layout.addWidget(self.title)
        layout.addWidget(scroll, 1)
        layout.addWidget(self.saved)

    def reset(self, policy_name: str) -> None:
        self.title.setText(policy_name)
        self.message.live = True  # timed from its own first token: the sides run one by one
        self.message.started_at = 0.0
        self.message.set_content("", "", 0)
        self.message.set_footer("")
        self.saved.setText("")


class CompareWindow(QWidget):
    def __init__(
        self,
        bridge: EngineBridge,
        prompt: str,
        policy_b: str,
        parent: QWidget | None = None,
        custom: ThinkingPolicy | None = None,
    ) -> None:
        super().__init__(parent, Qt.WindowType.Window)
        self.setWindowTitle("LeanCoder: compare thinking policies")
        self.resize(1200, 800)
        self.bridge = bridge
        self.result: Comparison | None = None
        self._request: int | None = None

        self.prompt = QLineEdit(prompt, self)
        self.prompt.setPlaceholderText("The prompt to run under both policies")
        self.policy_a = QComboBox(self)
        self.policy_b = QComboBox(self)
        self.policies = dict(PRESETS)
        if custom is not None:
            self.policies[custom.name] = custom
        for combo in (self.policy_a, self.policy_b):
            combo.addItems(list(self.policies))
        self.policy_a.setCurrentText("Unpruned")
        self.policy_b.setCurrentText(policy_b if policy_b in self.policies else "Balanced")
        self.force_thinking = QCheckBox("Force thinking", self)
        self.force_thinking.setToolTip("Open a thinking span for models whose template does not")
        self.run_button = QPushButton("Run both", self)
        self.stop_button = QPushButton("Stop", self)
        self.export_md = QPushButton("Export Markdown…", self)
        self.export_json = QPushButton("Export JSON…", self)
        controls = QHBoxLayout()
        controls.addWidget(self.prompt, 1)
        for label, combo in (("A:", self.policy_a), ("B:", self.policy_b)):
            controls.addWidget(QLabel(label, self))
            controls.addWidget(combo)
        for widget in (self.force_thinking, self.run_button, self.stop_button):
            controls.addWidget(widget)

        self.panes = {"a": ComparePane(self), "b": ComparePane(self)}
        columns = QSplitter(self)
        columns.addWidget(self.panes["a"])
        columns.addWidget(self.panes["b"])
        self.table = QTableWidget(0, 4, self)
        self.table.setHorizontalHeaderLabels(["measure", "A", "B", "change"])
        self.table.verticalHeader().hide()
        # The measure names as wide as they need; the figures share the rest of the table's width.
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        for column in (1, 2, 3):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.Stretch)
        self.diff = QPlainTextEdit(self)
        self.diff.setReadOnly(True)
        self.diff.setPlaceholderText("The answers' diff appears here.")
        bottom = QSplitter(self)
        bottom.addWidget(self.table)
        bottom.addWidget(self.diff)
        exports = QHBoxLayout()
        exports.addStretch(1)
        exports.addWidget(self.export_md)
        exports.addWidget(self.export_json)
        self.status = QLabel("", self)
        self.status.setWordWrap(True)
        self.no_thinking_bar = QFrame(self)
        self.no_thinking_bar.setFrameShape(QFrame.Shape.StyledPanel)
        self.no_thinking_label = QLabel(
            "<b>This model has no thinking format.</b> Both policies act on thinking, so "
            "without it the two runs are the same. Force thinking opens a thinking span anyway.",
            self.no_thinking_bar,
        )
        self.no_thinking_label.setWordWrap(True)
        self.force_and_run_button = QPushButton("Force thinking and run", self.no_thinking_bar)
        self.run_anyway_button = QPushButton("Run anyway", self.no_thinking_bar)
        bar_layout = QHBoxLayout(self.no_thinking_bar)
        bar_layout.addWidget(self.no_thinking_label, 1)
        bar_layout.addWidget(self.force_and_run_button)
        bar_layout.addWidget(self.run_anyway_button)
        self.no_thinking_bar.hide()

        vertical = QSplitter(Qt.Orientation.Vertical, self)
        vertical.addWidget(columns)
        vertical.addWidget(bottom)
        vertical.setSizes([520, 240])
        layout = QVBoxLayout(self)
        layout.addLayout(controls)
        layout.addWidget(self.no_thinking_bar)
        layout.addWidget(vertical, 1)
        layout.addWidget(self.status)
        layout.addLayout(exports)

        self.run_button.clicked.connect(lambda: self.run())
        self.force_and_run_button.clicked.connect(self._force_and_run)
        self.run_anyway_button.clicked.connect(lambda: self.run(confirmed=True))
        self.stop_button.clicked.connect(self.bridge.stop)
        self.export_md.clicked.connect(lambda: self._export_dialog("md"))
        self.export_json.clicked.connect(lambda: self._export_dialog("json"))
        self.bridge.eventsReady.connect(self._on_events)
        self.bridge.compareFinished.connect(self._on_finished)
        self.bridge.compareFailed.connect(self._on_failed)
        self._update_controls()

    @property
    def running(self) -> bool:
        return self._request is not None

    def _update_controls(self) -> None:
        self.run_button.setEnabled(not self.running and self.bridge.model_info is not None)
        self.stop_button.setEnabled(self.running)
        self.export_md.setEnabled(self.result is not None and not self.running)
        self.export_json.setEnabled(self.result is not None and not self.running)

    def _force_and_run(self) -> None:
        self.force_thinking.setChecked(True)
        self.run(confirmed=True)

    def run(self, confirmed: bool = False) -> None:
        """Run both policies; on a model without a thinking format, ask first (unless
        Force thinking is on or the user already said Run anyway)."""
        prompt = self.prompt.text().strip()
        if not prompt or self.running:
            return
        info = self.bridge.model_info
        if info is None:
            self.status.setText("Load a model first.")
            return
        no_format = info.thinking_format is ThinkingFormat.NONE
        if no_format and not self.force_thinking.isChecked() and not confirmed:
            self.no_thinking_bar.show()
            self.status.setText("Choose how to run: this model does not think by itself.")
            return
        self.no_thinking_bar.hide()
        a = self.policies[self.policy_a.currentText()]
        b = self.policies[self.policy_b.currentText()]
        self.result = None
        self.panes["a"].reset(f"A: {a.name}")
        self.panes["b"].reset(f"B: {b.name}")
        self.table.setRowCount(0)
        self.diff.clear()
        self.status.setText(f"Running {a.name}, then {b.name} with seed {COMPARE_SEED}…")
        self._request = self.bridge.compare(
            prompt,
            a,
            b,
            SamplingParams(temperature=0.6, seed=COMPARE_SEED),
            force_thinking=self.force_thinking.isChecked(),
        )
        self._update_controls()

    def repaint_theme(self) -> None:
        """Both replies drawn again in the theme's colours (code blocks carry them inline)."""
        for pane in self.panes.values():
            pane.message.rerender()

    def _on_events(self, request: int) -> None:
        if request != self._request:
            return
        touched: set[str] = set()
        for key, event in self.bridge.take_events(request):
            assert isinstance(event, GenerationEvent)  # a comparison streams engine events
            message = self.panes[key].message
            if not message.started_at:
                message.start_live()
            if event.kind == "text":
                message.append(event.channel.value, event.text)
            elif event.kind == "done":
                message.live = False
                message.set_footer(format_stats(event.stats))
            message.thinking_tokens = event.stats.thinking_tokens
            touched.add(key)
        for key in touched:
            self.panes[key].message.refresh()

    def _on_finished(self, request: int, result: Comparison) -> None:
        if request != self._request:
            return
        self._on_events(request)
        self._request = None
        self.result = result
        for pane in self.panes.values():
            pane.message.live = False
            pane.message.refresh()
        rows = result.rows()
        self.table.setRowCount(len(rows))
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                self.table.setItem(r, c, QTableWidgetItem(value))
        self.diff.setPlainText("\n".join(result.diff_summary()))
        for key in ("a", "b"):
            self.panes[key].saved.setText(f"{key.upper()} {result.savings(key)}.")
        both_empty = result.answers() == BOTH_EMPTY
        self.status.setText("Done: no answer on either side." if both_empty else "Done.")
        self._update_controls()

    def _on_failed(self, request: int, message: str) -> None:
        if request != self._request:
            return
        self.bridge.take_events(request)
        self._request = None
        self.status.setText(f"The comparison failed: {message}")
        self._update_controls()

    def export_to(self, path: Path, kind: str) -> None:
        assert self.result is not None
        text = self.result.to_markdown() if kind == "md" else self.result.to_json()
        atomic_write_text(path, text)

    def _export_dialog(self, kind: str) -> None:
        if self.result is None:
            return
        pattern = "Markdown (*.md)" if kind == "md" else "JSON (*.json)"
        name, _ = QFileDialog.getSaveFileName(self, "Export comparison", f"compare.{kind}", pattern)
        if not name:
            return
        try:
            self.export_to(Path(name), kind)
        except OSError as exc:
            self.status.setText(f"Could not save {name}: {exc.strerror or exc}")
            return
        self.status.setText(f"Saved {name}.")

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.running:
            self.bridge.stop()
        for signal, slot in (
            (self.bridge.eventsReady, self._on_events),
            (self.bridge.compareFinished, self._on_finished),
            (self.bridge.compareFailed, self._on_failed),
        ):
            signal.disconnect(slot)
        super().closeEvent(event)
