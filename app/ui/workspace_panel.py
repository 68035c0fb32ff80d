"""The folder panel: open a code folder, see its files as they are found, tick files for context.

A job on the app's I/O pool (app.ui.folder_scan_job) scans (never the model worker, never
terminated: it stops at the next entry once its cancel flag is set). It touches no Qt object:
batches go into a locked deque, and a GUI-thread QTimer drains them a few milliseconds at a time,
so however fast the scan runs the window keeps answering. A scan that is replaced or outlives the
panel is cancelled; its leftover batches are dropped with it.

Secrets: a file skipped as a secret, and a ticked file whose secret lines were redacted when the
context was built, are listed in the Skipped tab; its context menu lets the user allow such a
file, which then goes to the model as it is (for this folder, until another folder is opened).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable
from pathlib import Path

from PySide6.QtCore import QPoint, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMenu,
    QPushButton,
    QTabWidget,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from app.core.session.chat import FolderChoice
from app.core.workspace.context import WorkspaceContext
from app.core.workspace.scan import (
    FileEntry,
    SkippedEntry,
    WorkspaceError,
    explain_path,
    open_root,
    safe_relative_parts,
)
from app.ui.folder_scan_job import ScanJob, cancel_all
from app.ui.tasks import Task, TaskPool, app_task_pool
from app.ui.workspace_models import FileTreeModel, SkippedModel

DRAIN_INTERVAL_MS = 10
DRAIN_BUDGET_S = 0.004  # GUI time per tick spent adding rows; the rest is left to the window
DRAIN_CHUNK = 64  # rows added between two looks at the clock


class WorkspacePanel(QWidget):
    """A folder's file tree with checkboxes, and the list of what was skipped and why.

    Signals:
        folderOpened(str)       a folder was opened (its real path); its tree starts filling
        selectionChanged(list)  the ticked files changed: relative paths ("src/app.py"), sorted
        scanProgress(int, int)  files and skipped paths shown so far, while scanning
        scanFinished(int, int)  the current folder's scan ended: files listed, paths skipped
        scanFailed(str)         the folder could not be opened or read (a sentence for the user)

    A scan replaced by another folder, stopped, or outliving the panel ends without scanFinished.
    """

    folderOpened = Signal(str)
    selectionChanged = Signal(list)
    scanProgress = Signal(int, int)
    scanFinished = Signal(int, int)
    scanFailed = Signal(str)

    def __init__(self, parent: QWidget | None = None, pool: TaskPool | None = None) -> None:
        super().__init__(parent)
        self._pool = pool
        self._root: Path | None = None
        self._job: ScanJob | None = None
        self._jobs: list[ScanJob] = []  # every job not yet joined, for cancel on destroy
        self._keep_ticked: set[str] = set()  # ticks to restore while a refresh refills the tree
        self._allowed_secrets: set[str] = set()  # files the user allowed to go as they are
        self._pending_files: deque[FileEntry] = deque()
        self._pending_skipped: deque[SkippedEntry] = deque()

        self.open_button = QPushButton("Open folder…")
        self.refresh_button = QPushButton("Rescan")
        self.stop_button = QPushButton("Stop")
        self.folder_label = QLabel("No folder open")
        self.folder_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.status_label = QLabel("")
        self.model = FileTreeModel(self)
        self.tree = QTreeView()
        self.tree.setModel(self.model)
        self.model.children_shown = self.tree.isExpanded
        self.tree.setUniformRowHeights(True)  # lets the view skip measuring 50,000 rows
        self.tree.header().setStretchLastSection(False)
        self.tree.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.tree.header().setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        self.skipped_model = SkippedModel(self)
        self.skipped_view = QTreeView()
        self.skipped_view.setModel(self.skipped_model)
        self.skipped_view.setRootIsDecorated(False)
        self.skipped_view.setUniformRowHeights(True)
        self.skipped_view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.skipped_view.customContextMenuRequested.connect(self._show_skipped_menu)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.tree, "Files")
        self.tabs.addTab(self.skipped_view, "Skipped (0)")

        buttons = QHBoxLayout()
        buttons.addWidget(self.open_button)
        buttons.addWidget(self.refresh_button)
        buttons.addWidget(self.stop_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(buttons)
        layout.addWidget(self.folder_label)
        layout.addWidget(self.tabs, 1)
        layout.addWidget(self.status_label)

        self._drain_timer = QTimer(self)
        self._drain_timer.setInterval(DRAIN_INTERVAL_MS)
        self._drain_timer.timeout.connect(self._drain)
        self.open_button.clicked.connect(self._choose_folder)
        self.refresh_button.clicked.connect(self.refresh)
        self.stop_button.clicked.connect(self.stop_scan)
        self.model.ticksChanged.connect(self._emit_selection)
        # No reference to self: the panel's Python wrapper may already be gone at that point.
        jobs = self._jobs
        self.destroyed.connect(lambda *_: cancel_all(jobs))
        self._update_buttons()

    # -- public API ----------------------------------------------------------------------------

    @property
    def folder(self) -> Path | None:
        """The open folder's real path."""
        return self._root

    def files(self) -> list[str]:
        """Every file listed so far, relative to the folder."""
        return list(self.model.paths)

    def selected_files(self) -> list[str]:
        return sorted(self.model.selected)

    def skipped(self) -> list[SkippedEntry]:
        return list(self.skipped_model.entries)

    def is_scanning(self) -> bool:
        return self._job is not None

    def scan_task(self) -> Task[None] | None:
        return self._job.task if self._job is not None else None  # the running scan's pool job

    def open_folder(self, folder: str | Path, keep_ticked: Iterable[str] = ()) -> bool:
        """Show a folder and start scanning it; False (and scanFailed) when it cannot be opened."""
        try:
            root = open_root(folder)
        except WorkspaceError as exc:
            self.scanFailed.emit(str(exc))
            return False
        had_ticks = bool(self.model.selected)
        self._stop_job()
        if root != self._root:
            self._allowed_secrets.clear()
        self._root = root
        self._keep_ticked = set(keep_ticked)
        self._pending_files.clear()
        self._pending_skipped.clear()
        self.model.reset()
        self.skipped_model.clear()
        self.folder_label.setText(str(root))
        self.folder_label.setToolTip(str(root))
        self._job = ScanJob(root, self._pool or app_task_pool())
        self._jobs.append(self._job)
        self._drain_timer.start()
        self._show_counts()
        self._update_buttons()
        self.folderOpened.emit(str(root))
        if had_ticks:
            self.selectionChanged.emit([])
        return True

    def refresh(self) -> None:
        """Scan the same folder again, keeping the ticks of files that are still there."""
        if self._root is not None:
            self.open_folder(self._root, keep_ticked=self.model.selected)

    def stop_scan(self) -> None:
        """Stop the running scan; what was found so far stays listed."""
        if self._job is not None:
            self._job.cancel.set()
            self._drain(until_empty=True)
            self._stop_job()
            self._show_counts(stopped=True)
            self._update_buttons()
            if self._keep_ticked:  # a stopped refresh: the ticks restored so far are the ticks
                self._keep_ticked = set()
                self._emit_selection()

    def set_selected(self, paths: Iterable[str]) -> None:
        self.model.set_ticked(paths)
        self._emit_selection()

    def folder_choice(self) -> FolderChoice | None:
        """The folder as a chat session's context (what the scan listed so far, the ticked
        files, the secrets allowed); None with no folder open. The session builds the text."""
        if self._root is None:
            return None
        return FolderChoice(
            self._root,
            tuple(self.model.paths),
            tuple(self.selected_files()),
            tuple(sorted(self._allowed_secrets)),
        )

    def show_redactions(self, context: WorkspaceContext) -> None:
        """List files whose secret lines were redacted: the user sees what the model does not."""
        for redacted in context.redacted:
            self.skipped_model.put(SkippedEntry(redacted.path, redacted.reason, secret=True))
        self._show_counts()

    def allowed_secrets(self) -> list[str]:
        return sorted(self._allowed_secrets)

    def allow_secret(self, rel: str) -> bool:
        """Send this file as it is from now on (the user's choice); False if it is not a file
        the scan would list once secrets are allowed (a binary, too big, outside the folder)."""
        if self._root is None:
            return False
        try:
            rel = "/".join(safe_relative_parts(rel))
            if explain_path(self._root, rel, include_secrets=True) is not None:
                return False
            size = (self._root / rel).stat().st_size
        except (WorkspaceError, OSError):
            return False
        self._allowed_secrets.add(rel)
        self.skipped_model.remove(rel)
        if not self.model.index_of(rel).isValid():  # skipped by the scan: now a file to tick
            self.model.add_files([FileEntry(rel, size)], set())
            self.model.set_ticked([*self.model.selected, rel])
            self._emit_selection()
        self._show_counts()
        return True

    def skipped_menu(self, row: int) -> QMenu | None:
        """The context menu for a row of the Skipped tab; None when it offers nothing."""
        if not 0 <= row < len(self.skipped_model.entries):
            return None
        entry = self.skipped_model.entries[row]
        if not entry.secret or entry.is_dir:
            return None
        menu = QMenu(self.skipped_view)
        action = menu.addAction("Send this file as it is (allow its secrets)")
        action.setToolTip(f"{entry.path} goes to the model unredacted, secrets included")
        action.triggered.connect(lambda: self.allow_secret(entry.path))
        return menu

    def shutdown(self, timeout_s: float = 2.0) -> None:
        """Cancel any scan and wait for its job (call before the window closes)."""
        self._stop_job()
        deadline = time.monotonic() + timeout_s
        for job in self._jobs:
            job.task.wait(max(0.0, deadline - time.monotonic()))
        self._jobs[:] = [job for job in self._jobs if not job.task.done()]

    def closeEvent(self, event: QCloseEvent) -> None:
        self.shutdown()
        super().closeEvent(event)

    # -- filling -------------------------------------------------------------------------------

    def _stop_job(self) -> None:
        self._drain_timer.stop()
        if self._job is not None:
            self._job.cancel.set()
        self._job = None
        self._jobs[:] = [job for job in self._jobs if not job.task.done()]

    def _drain(self, until_empty: bool = False) -> None:
        """Move found entries into the models for a few milliseconds, then give the GUI back."""
        job = self._job
        if job is None:
            return
        deadline = time.perf_counter() + DRAIN_BUDGET_S
        while until_empty or time.perf_counter() < deadline:
            if not self._pending_files and not self._pending_skipped:
                batch = job.take()
                if batch is None:
                    break
                self._pending_files.extend(batch.files)
                self._pending_skipped.extend(batch.skipped)
            self._add_skipped()
            chunk = [
                self._pending_files.popleft()
                for _ in range(min(DRAIN_CHUNK, len(self._pending_files)))
            ]
            self.model.add_files(chunk, self._keep_ticked)
        self._show_counts()
        if job.done and not job.batches and not self._pending_files and not self._pending_skipped:
            self._finish(job)

    def _add_skipped(self) -> None:
        entries = list(self._pending_skipped)
        self._pending_skipped.clear()
        self.skipped_model.append(entries)

    def _finish(self, job: ScanJob) -> None:
        failed = job.error is not None and not job.cancel.is_set()
        self._stop_job()
        self._update_buttons()
        if failed and job.error is not None:
            self._show_counts()
            self.status_label.setText(job.error)
            self.scanFailed.emit(job.error)
            return
        self._show_counts()
        if self._keep_ticked:
            self._keep_ticked = set()
            self._emit_selection()
        self.scanFinished.emit(len(self.model.paths), len(self.skipped_model.entries))

    # -- small helpers -------------------------------------------------------------------------

    def _show_counts(self, stopped: bool = False) -> None:
        files, skipped = len(self.model.paths), len(self.skipped_model.entries)
        self.tabs.setTabText(1, f"Skipped ({skipped:,})")
        if self._job is not None:
            state = "Scanning… "
        elif stopped:
            state = "Stopped: "
        else:
            state = ""
        self.status_label.setText(f"{state}{files:,} files, {skipped:,} skipped")
        if self._job is not None:
            self.scanProgress.emit(files, skipped)

    def _update_buttons(self) -> None:
        self.stop_button.setEnabled(self._job is not None)
        self.refresh_button.setEnabled(self._root is not None)

    def _emit_selection(self) -> None:
        self.selectionChanged.emit(self.selected_files())

    def _show_skipped_menu(self, pos: QPoint) -> None:
        menu = self.skipped_menu(self.skipped_view.indexAt(pos).row())
        if menu is not None:
            menu.exec(self.skipped_view.viewport().mapToGlobal(pos))
            menu.deleteLater()

    def _choose_folder(self) -> None:
        start = str(self._root) if self._root is not None else str(Path.home())
        chosen = QFileDialog.getExistingDirectory(self, "Open a code folder", start)
        if chosen:
            self.open_folder(chosen)
