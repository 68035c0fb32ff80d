"""The coding half of the window: a code folder as context, model-proposed edits, their review.

The window asks this object for the system message that carries the folder (ticked files in full,
a map of the rest, and the edit instructions when "Propose edits" is on) and hands it each finished
answer. Edit blocks that did not apply go back to the model, at most twice, before the surviving
proposal opens in the review pane; nothing touches disk until the user applies there.

Signals:
    followUp(str)       feedback for the model about blocks that did not apply: send it as the
                        next user message
    contextBuilt(str)   one line on what the context holds and what was left out
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QDockWidget, QFileDialog, QMainWindow, QWidget

from app.core.edits import (
    ProposalBuilder,
    choose_edit_format,
    edit_system_prompt,
    feedback_message,
)
from app.core.edits.feedback import MAX_RETRIES
from app.core.llm.chat_template import Message
from app.core.workspace.context import WorkspaceContext
from app.ui.review_pane import ReviewPane
from app.ui.workspace_panel import WorkspacePanel

CONTEXT_SHARE = 0.5  # of the model's context window; the rest is for the conversation and reply
FEEDBACK_PREFIX = "[LeanCoder] "


class CodeWorkflow(QObject):
    followUp = Signal(str)
    contextBuilt = Signal(str)

    def __init__(self, window: QMainWindow) -> None:
        super().__init__(window)
        self._window = window
        self.panel = WorkspacePanel(window)
        self.review = ReviewPane(window)
        self.folder_dock = self._dock(
            "Code folder", self.panel, Qt.DockWidgetArea.LeftDockWidgetArea
        )
        self.review_dock = self._dock(
            "Review edits", self.review, Qt.DockWidgetArea.RightDockWidgetArea
        )
        self.folder_dock.hide()
        self.review_dock.hide()
        self.open_action = QAction("Open folder…", window)
        self.open_action.setToolTip("Use a local code folder as context; propose edits to it")
        self.edit_action = QAction("Propose edits", window)
        self.edit_action.setCheckable(True)
        self.edit_action.setEnabled(False)
        self.edit_action.setToolTip(
            "Ask the model for edits to the folder; you review each hunk before anything is written"
        )
        self.undo_action = QAction("Undo last apply", window)
        self.undo_action.setEnabled(False)
        self.open_action.triggered.connect(self._choose_folder)
        self.undo_action.triggered.connect(self.review.undo)
        self.panel.folderOpened.connect(self._on_folder_opened)
        self.review.applied.connect(lambda _id: self.undo_action.setEnabled(True))
        self.review.undone.connect(lambda: self.undo_action.setEnabled(False))
        self.context: WorkspaceContext | None = None
        self._builder: ProposalBuilder | None = None
        self._round = 0

    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self._window)
        dock.setObjectName(title.replace(" ", "_"))
        dock.setWidget(widget)
        self._window.addDockWidget(area, dock)
        return dock

    @property
    def folder(self) -> Path | None:
        return self.panel.folder

    def _choose_folder(self) -> None:
        start = str(self.folder or Path.home())
        name = QFileDialog.getExistingDirectory(self._window, "Open a code folder", start)
        if name:
            self.open_folder(Path(name))

    def open_folder(self, folder: Path) -> bool:
        return self.panel.open_folder(folder)

    def _on_folder_opened(self, path: str) -> None:
        self.folder_dock.show()
        self.edit_action.setEnabled(True)
        self.review.set_folder(Path(path))
        self.undo_action.setEnabled(False)

    # -- requests ------------------------------------------------------------------------------

    def system_message(self, n_ctx: int, model_params: int | None) -> Message | None:
        """The folder as a system message for the next request, or None with no folder open."""
        budget = int(n_ctx * CONTEXT_SHARE)
        context = self.panel.build_context(budget)
        if context is None:
            return None
        self.context = context
        parts = [context.text]
        if self.edit_action.isChecked():
            sizes = [f.tokens * 4 for f in context.included]
            parts.insert(0, edit_system_prompt(choose_edit_format(model_params, sizes)))
        summary = context.summary()
        if context.left_out:
            why = "; ".join(f"{item.path}: {item.reason}" for item in context.left_out[:5])
            summary += f" (left out: {why}{'…' if len(context.left_out) > 5 else ''})"
        self.contextBuilt.emit(summary)
        return {"role": "system", "content": "\n\n".join(parts)}

    def start_request(self, follow_up: bool) -> None:
        """A new user request starts a new proposal; a follow-up adds to the current one."""
        if not follow_up:
            self._builder = None
            self._round = 0

    def reply_finished(self, answer: str) -> None:
        """Parse the answer's edits (edit mode only); retry failures or open the review."""
        folder = self.folder
        if folder is None or not self.edit_action.isChecked():
            return
        if self._builder is None:
            self._builder = ProposalBuilder(folder)
        results = self._builder.add_reply(answer, self._round)
        feedback = feedback_message(results)
        if feedback is not None and self._round < MAX_RETRIES:
            self._round += 1
            self.followUp.emit(FEEDBACK_PREFIX + feedback)
            return
        proposal = self._builder.build()
        self._builder = None
        if proposal.files or proposal.blocks:
            self.review.set_proposal(proposal)
            self.review_dock.show()

    def shutdown(self) -> None:
        self.panel.shutdown()
