"""The coding half of the window: a code folder as context, model-proposed edits, their review.

The window asks this object for the folder as the chat session's context (what the scan lists,
which files are ticked, which secrets the user allowed) and whether edits are wanted; the session
builds the prompt and runs the feedback loop, and the proposal it ends with opens in the review
pane here. Nothing touches disk until the user applies there.

Signals:
    contextBuilt(str)   one line on what the context holds and what was left out
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QDockWidget, QFileDialog, QMainWindow, QWidget

from app.core.edits.proposal import Proposal
from app.core.session.chat import FolderChoice
from app.core.workspace.context import WorkspaceContext
from app.ui.review_pane import ReviewPane
from app.ui.workspace_panel import WorkspacePanel


class CodeWorkflow(QObject):
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

    @property
    def edits_wanted(self) -> bool:
        return self.edit_action.isChecked() and self.folder is not None

    def folder_choice(self) -> FolderChoice | None:
        """The open folder as the session's context: what the scan lists, what is ticked."""
        return self.panel.folder_choice()

    def context_built(self, context: WorkspaceContext) -> None:
        """The session built this context for a request: show what it holds and what it left
        out, and list redacted files where the user can allow them."""
        self.context = context
        self.panel.show_redactions(context)
        summary = context.summary()
        if context.left_out:
            why = "; ".join(f"{item.path}: {item.reason}" for item in context.left_out[:5])
            summary += f" (left out: {why}{'…' if len(context.left_out) > 5 else ''})"
        self.contextBuilt.emit(summary)

    def show_proposal(self, proposal: Proposal) -> None:
        self.review.set_proposal(proposal)
        self.review_dock.show()

    def shutdown(self) -> None:
        self.panel.shutdown()
