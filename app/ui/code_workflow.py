"""The coding half of the window: a code folder as context, model-proposed edits, their review.

The window asks this object for the folder as the chat session's context (what the scan lists,
which files are ticked, which secrets the user allowed) and whether edits are wanted; the session
builds the prompt and runs the feedback loop, and the proposal it ends with opens on the review
page, which takes the chat's place in the window's centre (`centre`) until the user goes back.
Nothing touches disk until the user applies there.

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
from app.ui.fix_panel import FixPanel
from app.ui.review_page import CentreStack, ReviewPage
from app.ui.review_pane import ReviewPane
from app.ui.workspace_panel import WorkspacePanel


class CodeWorkflow(QObject):
    contextBuilt = Signal(str)

    def __init__(self, window: QMainWindow) -> None:
        super().__init__(window)
        self._window = window
        self.panel = WorkspacePanel(window)
        self.review = ReviewPane(window)
        self.review_page = ReviewPage(self.review, window)
        self.stack: CentreStack | None = None  # made by `centre`
        self._folder_was_shown = False
        self.folder_dock = self._dock(
            "Code folder", self.panel, Qt.DockWidgetArea.LeftDockWidgetArea
        )
        self.folder_dock.hide()
        self.open_action = QAction("Open folder…", window)
        self.open_action.setToolTip("Use a local code folder as context; propose edits to it")
        self.edit_action = QAction("Propose edits", window)
        self.edit_action.setCheckable(True)
        self.edit_action.setEnabled(False)
        self.edit_action.setToolTip(
            "Ask the model for edits to the folder; you review each hunk before anything is written"
        )
        self.fix = FixPanel(window)  # "Fix until tests pass": its result opens in the review
        self.fix_dock = self._dock("Fix until tests pass", self.fix,
                                   Qt.DockWidgetArea.RightDockWidgetArea)  # fmt: skip
        self.fix_dock.hide()
        self.fix_action = QAction("Fix until tests pass…", window)
        self.fix_action.setEnabled(False)
        self.fix_action.setToolTip(
            "Edit a scratch copy and run the tests, round by round, within token budgets; "
            "review the result before it is written"
        )
        self.fix_action.triggered.connect(self.fix_dock.show)
        self.fix.proposalReady.connect(self.show_proposal)
        self.undo_action = QAction("Undo last apply", window)
        self.undo_action.setEnabled(False)
        self.review_action = QAction("Review edits", window)
        self.review_action.setToolTip("Back to the proposed edits (the chat makes room)")
        self.review_action.setEnabled(False)
        self.review_action.triggered.connect(self.show_review)
        self.open_action.triggered.connect(self._choose_folder)
        self.undo_action.triggered.connect(self.review.undo)
        self.panel.folderOpened.connect(self._on_folder_opened)
        self.review.applied.connect(lambda _id: self.undo_action.setEnabled(True))
        self.review.undone.connect(lambda: self.undo_action.setEnabled(False))
        self.context: WorkspaceContext | None = None

    def centre(self, chat: QWidget) -> CentreStack:
        """The window's centre: `chat`, or the review page in its place while reviewing."""
        self.stack = CentreStack(chat, self.review_page, self._window)
        self.stack.currentChanged.connect(self._on_page_changed)
        return self.stack

    def menu_actions(self) -> list[QAction]:
        """The Code menu: folder, edits, review (with its keys), undo."""
        return [self.open_action, self.edit_action, self.fix_action, self.review_action,
                *self.review_page.actions_for_menu, self.undo_action]  # fmt: skip

    @property
    def reviewing(self) -> bool:
        return self.stack is not None and self.stack.reviewing

    def show_review(self) -> None:
        """The review takes the whole width: the folder dock steps aside until the chat is back."""
        if self.stack is not None and not self.stack.reviewing:
            self._folder_was_shown = self.folder_dock.isVisible()
            self.folder_dock.hide()
            self.stack.show_review()

    def show_chat(self) -> None:
        if self.stack is not None:
            self.stack.show_chat()

    def _on_page_changed(self, _index: int) -> None:
        if not self.reviewing and self._folder_was_shown:
            self.folder_dock.show()

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
        self.fix_action.setEnabled(True)
        self.fix.set_folder(Path(path))
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
        self.review_action.setEnabled(True)
        self.show_review()

    def shutdown(self) -> None:
        self.fix.stop()  # a running fix loop ends within a token, so the model worker can stop
        self.panel.shutdown()
