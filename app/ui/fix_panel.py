"""The window's "Fix until tests pass" panel: the folder's test command, the budgets, the task
meter while the loop runs, and the combined result handed to the review pane at the end.

The loop itself is the core's (`app.core.fix_loop.loop.run_fix`); it runs on the model worker,
one job like a chat reply, and its events come back to the GUI thread as a queued signal. Token
events are thinned to a few per second on the worker: the meter needs the spend, not every token.
Nothing here writes to the folder: the result is a proposal, and the review pane applies it.

Signals:
    proposalReady(object)  the combined Proposal of all rounds, to review
    finished(object)       the FixReport, when the loop has ended (for any reason)
"""

from __future__ import annotations

import html
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.core.errors import LeanCoderError
from app.core.fix_loop import defaults
from app.core.fix_loop.commands import load_commands, save_commands
from app.core.fix_loop.loop import FixEvent, FixSettings, run_fix
from app.core.fix_loop.report import FixReport, TestResult
from app.core.llm.engine import Engine
from app.core.session.chat import FolderChoice
from app.core.thinking.policy import UNPRUNED, ThinkingPolicy

if TYPE_CHECKING:
    from app.ui.engine_bridge import EngineBridge

TOKEN_EVENT_INTERVAL_S = 0.1
ThinkingChoice = Callable[[], ThinkingPolicy]  # the window's thinking policy, read at each start


class FixPanel(QWidget):
    proposalReady = Signal(object)
    finished = Signal(object)
    _event = Signal(object)  # a FixEvent from the worker, or an error message (str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.folder: Path | None = None
        self.report: FixReport | None = None
        self.running = False
        self._bridge: EngineBridge | None = None
        self._thinking: ThinkingChoice | None = None
        self._folder_choice: Callable[[], FolderChoice | None] | None = None
        self._cancel = threading.Event()
        self._settings: FixSettings | None = None

        self.test_edit = QLineEdit(self)
        self.test_edit.setPlaceholderText("e.g. pytest -q")
        self.test_edit.setToolTip(
            "The project's own test command: it runs as you, in a scratch copy of the folder, "
            "with a timeout (no shell: no pipes or &&)"
        )
        self.lint_edit = QLineEdit(self)
        self.lint_edit.setPlaceholderText("optional, e.g. ruff check .")
        self.rounds_box = _spin(1, defaults.MAX_ROUNDS, defaults.DEFAULT_ROUNDS, 1, self)
        self.task_budget_box = _spin(100, 1_000_000, defaults.DEFAULT_TASK_BUDGET, 500, self)
        self.round_budget_box = _spin(50, 1_000_000, defaults.DEFAULT_ROUND_BUDGET, 250, self)
        self.task_edit = QPlainTextEdit(self)
        self.task_edit.setPlaceholderText("What to fix, e.g. “make the failing tests pass”")
        self.task_edit.setMaximumHeight(80)
        self.start_button = QPushButton("Fix until tests pass", self)
        self.stop_button = QPushButton("Stop", self)
        self.meter = QProgressBar(self)
        self.meter.setFormat("%v of %m tokens")
        self.round_label = QLabel("", self)
        self.thinking_label = QLabel("", self)
        self.rounds_list = QListWidget(self)
        self.rounds_list.setWordWrap(True)
        self.result_label = QLabel("Open a folder, check its test command, say what to fix.", self)
        self.result_label.setWordWrap(True)

        form = QFormLayout()
        form.addRow("Test command", self.test_edit)
        form.addRow("Lint command", self.lint_edit)
        form.addRow("Rounds", self.rounds_box)
        form.addRow("Task budget (tokens)", self.task_budget_box)
        form.addRow("Round budget (tokens)", self.round_budget_box)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.stop_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.task_edit)
        layout.addLayout(buttons)
        layout.addWidget(self.meter)
        layout.addWidget(self.round_label)
        layout.addWidget(self.thinking_label)
        layout.addWidget(self.rounds_list, 1)
        layout.addWidget(self.result_label)

        self.start_button.clicked.connect(self.start)
        self.stop_button.clicked.connect(self.stop)
        self._event.connect(self._on_event)
        self._update_buttons()

    # -- wiring (the window) -------------------------------------------------------------------

    def attach(
        self,
        bridge: EngineBridge,
        folder_choice: Callable[[], FolderChoice | None],
        thinking: ThinkingChoice,
    ) -> None:
        """The model to use, the open folder as context, the thinking policy of each round."""
        self._bridge, self._folder_choice, self._thinking = bridge, folder_choice, thinking
        self._update_buttons()

    def set_folder(self, folder: Path | None) -> None:
        """Show the folder's saved test command, or the one detected from its files."""
        self.folder = folder
        commands = load_commands(folder) if folder is not None else None
        self.test_edit.setText(commands.test if commands else "")
        self.lint_edit.setText(commands.lint if commands else "")
        if commands is not None and commands.detected:
            command = html.escape(commands.test)
            self.result_label.setText(
                f"Detected the test command <code>{command}</code>; edit it if it is not right."
            )
        self._update_buttons()

    # -- running -------------------------------------------------------------------------------

    def start(self) -> bool:
        """Start the loop; False (with the reason shown) if something is missing."""
        if self.running or self._bridge is None or self._folder_choice is None:
            return False
        choice = self._folder_choice()
        task = self.task_edit.toPlainText().strip()
        if choice is None or self.folder is None:
            return self._refuse("Open a folder first.")
        if self._bridge.model_info is None:
            return self._refuse("Load a model first.")
        if not task:
            return self._refuse("Say what to fix.")
        settings = FixSettings(
            self.test_edit.text().strip(),
            self.lint_edit.text().strip(),
            self.rounds_box.value(),
            self.task_budget_box.value(),
            self.round_budget_box.value(),
        )
        try:
            settings.check()
            save_commands(self.folder, settings.test_command, settings.lint_command)
        except LeanCoderError as exc:
            return self._refuse(str(exc))
        policy = self._thinking() if self._thinking else UNPRUNED
        self._cancel = threading.Event()
        self._settings, self.report, self.running = settings, None, True
        self.rounds_list.clear()
        self.meter.setRange(0, settings.task_budget)
        self.meter.setValue(0)
        self.round_label.setText("Running the tests as they are…")
        self.thinking_label.setText("")
        self.result_label.setText("")
        self._update_buttons()
        self._bridge.worker.submit(self._job, self._bridge, choice, task, settings, policy,
                                   self._cancel)  # fmt: skip
        return True

    def stop(self) -> None:
        """Stop the loop within a token; what the rounds so far did is still offered to review."""
        self._cancel.set()

    def _refuse(self, message: str) -> bool:
        self.result_label.setText(f'<span style="color:#cf222e;">{html.escape(message)}</span>')
        return False

    def _job(self, bridge: EngineBridge, choice: FolderChoice, task: str, settings: FixSettings,
             policy: ThinkingPolicy, cancel: threading.Event) -> None:  # fmt: skip
        """On the model worker: run the loop, forward its events (tokens thinned)."""
        engine = bridge.engine
        try:
            if not isinstance(engine, Engine):
                raise LeanCoderError("Fix until tests pass runs on a local model only.")
            last = 0.0
            events = run_fix(engine, choice, task, settings, policy=policy, cancel=cancel)
            for event in events:
                if event.kind == "session":
                    continue
                if event.kind == "tokens":
                    now = time.monotonic()
                    if now - last < TOKEN_EVENT_INTERVAL_S:
                        continue
                    last = now
                self._event.emit(event)
        except LeanCoderError as exc:
            self._event.emit(str(exc))
        except Exception as exc:  # the panel must hear about it, not stay "running"
            self._event.emit(f"The fix loop failed unexpectedly: {exc}")
            raise

    # -- events (GUI thread) -------------------------------------------------------------------

    def _on_event(self, event: FixEvent | str) -> None:
        settings = self._settings
        if isinstance(event, str):
            self.running = False
            self._update_buttons()
            self._refuse(event)
            return
        if settings is None:
            return
        if event.kind == "baseline" and event.tests is not None:
            self.rounds_list.addItem(f"Before: tests {_tests(event.tests)}")
        elif event.kind == "round_start":
            self.round_label.setText(f"Round {event.round} of {settings.rounds}")
            self.thinking_label.setText("")
        elif event.kind == "tokens":
            self.meter.setValue(min(event.task_tokens, settings.task_budget))
            self.thinking_label.setText(
                f"This round: {event.round_tokens:,} of {settings.round_budget:,} tokens, "
                f"{event.thinking_tokens:,} thinking"
            )
        elif event.kind == "done" and event.report is not None:
            self._finish(event.report)

    def _finish(self, report: FixReport) -> None:
        self.report, self.running = report, False
        settings = self._settings
        self.meter.setValue(min(report.tokens, report.task_budget))
        for summary in report.rounds:
            tests = f"tests {_tests(summary.tests)}" if summary.tests else "no test run"
            self.rounds_list.addItem(
                f"Round {summary.number}: {summary.tokens:,} tokens "
                f"({summary.thinking_tokens:,} thinking); {tests}"
            )
        rounds = settings.rounds if settings else report.rounds_allowed
        self.round_label.setText(f"{len(report.rounds)} of {rounds} round(s)")
        before = _tests(report.baseline) if report.baseline else "not run"
        final = report.final
        after = _tests(final) if final is not None and report.rounds else "unchanged"
        review = " No edits to review."
        if report.proposal is not None:
            review = (" The combined edits of all rounds are open for review; nothing is "
                      "written until you apply them.")  # fmt: skip
        self.result_label.setText(
            f"<b>{html.escape(report.message)}</b><br>Tests before: {html.escape(before)}. "
            f"After: {html.escape(after)}.{review}"
        )
        self._update_buttons()
        if report.proposal is not None:
            self.proposalReady.emit(report.proposal)
        self.finished.emit(report)

    def _update_buttons(self) -> None:
        ready = self._bridge is not None and self.folder is not None
        self.start_button.setEnabled(ready and not self.running)
        self.stop_button.setEnabled(self.running)


def _tests(result: TestResult) -> str:
    failing = f", {len(result.failing)} failing" if result.failing else ""
    return f"{result.summary}{failing}"


def _spin(low: int, high: int, value: int, step: int, parent: QWidget) -> QSpinBox:
    box = QSpinBox(parent)
    box.setRange(low, high)
    box.setSingleStep(step)
    box.setGroupSeparatorShown(True)
    box.setValue(value)
    return box
