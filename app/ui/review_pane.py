"""Review a model's proposed edits hunk by hunk, then apply them (or undo the last apply).

Nothing touches disk until Apply. The core does the work (`app.core.edits`): this pane shows the
proposal, records the user's decisions on it, and reports what the core says.
"""

from __future__ import annotations

import difflib
import html
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from app.core.edits import (
    BlockStatus,
    ConflictError,
    EditError,
    FileChange,
    HunkStatus,
    Proposal,
    ReadOnlyFileError,
    apply_proposal,
    in_git_repository,
    latest_record,
    recover_interrupted,
    undo_last,
)
from app.core.edits.fsio import read_or_none
from app.core.edits.pipeline import line_counts
from app.ui.diff_highlight import FileHighlighter
from app.ui.hunk_view import HunkView

WARNING_STYLE = "QFrame { background: #fff8c5; border: 1px solid #d4a72c; border-radius: 4px; }"
ERROR_STYLE = "QFrame { background: #ffebe9; border: 1px solid #cf222e; border-radius: 4px; }"
CONFLICT_DIFF_LINES = 40


class ReviewPane(QWidget):
    """The proposal's files (left) and the selected file's hunks (right), with Apply and Undo.

    Signals:
        applied(str): the accepted hunks were written; the argument is the change-set id that
            "Undo last apply" (or `leancoder undo`) reverses.
        undone(): the last applied change set of the folder was undone.
        conflict(list): Apply (or Undo) was refused because these files (paths relative to the
            folder) changed on disk meanwhile; nothing was written. The conflict view shows how.
        failed(str): an apply or undo failed for another reason; the argument is the message.
        proposalChanged(): a hunk was accepted, rejected or edited.

    Big deletions (an accepted change that removes more than half of a file, or deletes it) are
    not written on the first Apply: a confirmation bar names the files, and "Apply anyway" writes.
    """

    applied = Signal(str)
    undone = Signal()
    conflict = Signal(list)
    failed = Signal(str)
    proposalChanged = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.proposal: Proposal | None = None
        self.folder: Path | None = None
        self.spent = False  # the proposal has been applied
        self.hunk_views: list[HunkView] = []
        self._highlighters: dict[str, FileHighlighter] = {}

        self.summary = QLabel("No proposed edits.", self)
        self.summary.setWordWrap(True)
        self.blocks_view = QTextBrowser(self)
        self.blocks_view.setMaximumHeight(110)
        self.file_list = QListWidget(self)
        self.hunk_area = QScrollArea(self)
        self.hunk_area.setWidgetResizable(True)
        self.hunk_host = QWidget(self.hunk_area)
        self.hunk_layout = QVBoxLayout(self.hunk_host)
        self.hunk_layout.addStretch(1)
        self.hunk_area.setWidget(self.hunk_host)
        splitter = QSplitter(Qt.Orientation.Horizontal, self)
        splitter.addWidget(self.file_list)
        splitter.addWidget(self.hunk_area)
        splitter.setStretchFactor(1, 3)

        self.confirm_bar, self.confirm_label, confirm_layout = self._bar(WARNING_STYLE)
        self.confirm_button = QPushButton("Apply anyway", self.confirm_bar)
        self.cancel_confirm_button = QPushButton("Cancel", self.confirm_bar)
        confirm_buttons = QHBoxLayout()
        confirm_buttons.addStretch(1)
        confirm_buttons.addWidget(self.confirm_button)
        confirm_buttons.addWidget(self.cancel_confirm_button)
        confirm_layout.addLayout(confirm_buttons)
        self.read_only_bar, self.read_only_label, read_only_layout = self._bar(WARNING_STYLE)
        self.overwrite_button = QPushButton("Overwrite read-only files", self.read_only_bar)
        self.cancel_overwrite_button = QPushButton("Cancel", self.read_only_bar)
        read_only_buttons = QHBoxLayout()
        read_only_buttons.addStretch(1)
        read_only_buttons.addWidget(self.overwrite_button)
        read_only_buttons.addWidget(self.cancel_overwrite_button)
        read_only_layout.addLayout(read_only_buttons)
        self.conflict_bar, self.conflict_label, conflict_layout = self._bar(ERROR_STYLE)
        self.conflict_view = QTextBrowser(self.conflict_bar)
        self.conflict_view.setMaximumHeight(200)
        self.dismiss_conflict_button = QPushButton("Dismiss", self.conflict_bar)
        conflict_layout.addWidget(self.conflict_view)
        conflict_layout.addWidget(self.dismiss_conflict_button, 0, Qt.AlignmentFlag.AlignRight)

        self.accept_all_button = QPushButton("Accept all", self)
        self.reject_all_button = QPushButton("Reject all", self)
        self.checkpoint_box = QCheckBox("Git checkpoint first", self)
        self.checkpoint_box.setToolTip(
            "Save the folder's current state as a git stash entry before writing "
            "(only in a git repository)."
        )
        self.apply_button = QPushButton("Apply", self)
        self.undo_button = QPushButton("Undo last apply", self)
        self.status = QLabel("", self)
        self.status.setWordWrap(True)
        buttons = QHBoxLayout()
        for button in (self.accept_all_button, self.reject_all_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        buttons.addWidget(self.checkpoint_box)
        for button in (self.apply_button, self.undo_button):
            buttons.addWidget(button)

        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(self.blocks_view)
        layout.addWidget(splitter, 1)
        layout.addWidget(self.confirm_bar)
        layout.addWidget(self.read_only_bar)
        layout.addWidget(self.conflict_bar)
        layout.addLayout(buttons)
        layout.addWidget(self.status)

        self.file_list.currentRowChanged.connect(self._show_file)
        self.accept_all_button.clicked.connect(self.accept_all)
        self.reject_all_button.clicked.connect(self.reject_all)
        self.apply_button.clicked.connect(self.apply)
        self.confirm_button.clicked.connect(lambda: self.apply(confirmed=True))
        self.cancel_confirm_button.clicked.connect(self.confirm_bar.hide)
        self.overwrite_button.clicked.connect(lambda: self.apply(True, overwrite_read_only=True))
        self.cancel_overwrite_button.clicked.connect(self.read_only_bar.hide)
        self.dismiss_conflict_button.clicked.connect(self.conflict_bar.hide)
        self.undo_button.clicked.connect(self.undo)
        self.set_proposal(None)

    def _bar(self, style: str) -> tuple[QFrame, QLabel, QVBoxLayout]:
        """A message bar (hidden until needed): a frame, its label, and its layout."""
        bar = QFrame(self)
        bar.setStyleSheet(style)
        label = QLabel(bar)
        label.setWordWrap(True)
        layout = QVBoxLayout(bar)
        layout.addWidget(label)
        bar.hide()
        return bar, label, layout

    # Showing a proposal ---------------------------------------------------------------------------

    def set_folder(self, folder: Path | None) -> None:
        """The folder "Undo last apply" acts on when no proposal is shown.

        An edit of the folder that a crash interrupted is put back first (and said so).
        """
        self.folder = folder
        if folder is not None:
            try:
                recovered = recover_interrupted(folder)
            except (EditError, OSError) as exc:
                self._show_error(f"An interrupted edit could not be put back: {exc}")
            else:
                if recovered:
                    self.status.setText(" ".join(r.describe() for r in recovered))
        self._update_buttons()

    def set_proposal(self, proposal: Proposal | None) -> None:
        self.proposal = proposal
        self.spent = False
        self._highlighters = {}
        if proposal is not None:
            self.folder = proposal.folder
        self.confirm_bar.hide()
        self.read_only_bar.hide()
        self.conflict_bar.hide()
        self.status.setText("")
        self.file_list.clear()
        for change in proposal.files if proposal else []:
            item = QListWidgetItem(self.file_list)
            item.setData(Qt.ItemDataRole.UserRole, change.path)
        self._refresh_files()
        self._show_blocks()
        self.checkpoint_box.setEnabled(bool(self.folder and in_git_repository(self.folder)))
        if self.file_list.count():
            self.file_list.setCurrentRow(0)
        else:
            self._show_file(-1)
        self._update_buttons()

    def _show_blocks(self) -> None:
        proposal = self.proposal
        if proposal is None:
            self.summary.setText("No proposed edits.")
            self.blocks_view.clear()
            self.blocks_view.hide()
            return
        counts = {s: sum(1 for b in proposal.blocks if b.status is s) for s in BlockStatus}
        self.summary.setText(
            f"<b>{len(proposal.files)} file(s)</b> would change. Edit blocks: "
            f"{counts[BlockStatus.APPLIED]} proposed, {counts[BlockStatus.UNCHANGED]} with nothing "
            f"to do, {counts[BlockStatus.REFUSED]} refused."
        )
        rows = []
        for block in proposal.blocks:
            color = {"applied": "#1a7f37", "unchanged": "#57606a", "refused": "#cf222e"}
            rows.append(
                f'<span style="color:{color[block.status.value]};">'
                f"{html.escape(block.describe())}</span>"
            )
        self.blocks_view.setHtml("<br>".join(rows) or "<i>The reply holds no edit blocks.</i>")
        self.blocks_view.show()

    def _refresh_files(self) -> None:
        if self.proposal is None:
            return
        for row, change in enumerate(self.proposal.files):
            added, removed = line_counts(change)
            decided = sum(1 for h in change.hunks if h.status is not HunkStatus.PENDING)
            accepted = len(change.accepted)
            warning = "⚠ " if change.is_big_deletion() else ""
            item = self.file_list.item(row)
            item.setText(
                f"{warning}{change.path}\n{change.kind.value}, +{added} −{removed}, "
                f"{accepted}/{len(change.hunks)} accepted"
                + ("" if decided == len(change.hunks) else ", undecided")
            )

    def _show_file(self, row: int) -> None:
        for view in self.hunk_views:
            self.hunk_layout.removeWidget(view)
            view.deleteLater()
        self.hunk_views = []
        if self.proposal is None or not 0 <= row < len(self.proposal.files):
            return
        change = self.proposal.files[row]
        highlighter = self._highlighters.setdefault(change.path, FileHighlighter(change))
        for index in range(len(change.hunks)):
            view = HunkView(change, index, highlighter, self.hunk_host)
            view.changed.connect(self._hunk_changed)
            view.set_locked(self.spent)
            self.hunk_layout.insertWidget(self.hunk_layout.count() - 1, view)
            self.hunk_views.append(view)

    def current_change(self) -> FileChange | None:
        row = self.file_list.currentRow()
        if self.proposal is None or not 0 <= row < len(self.proposal.files):
            return None
        return self.proposal.files[row]

    def select_file(self, path: str) -> None:
        if self.proposal is None:
            return
        for row, change in enumerate(self.proposal.files):
            if change.path == path:
                self.file_list.setCurrentRow(row)

    # Decisions ------------------------------------------------------------------------------------

    def _hunk_changed(self) -> None:
        self.confirm_bar.hide()
        self.read_only_bar.hide()
        self._refresh_files()
        self._update_buttons()
        self.proposalChanged.emit()

    def accept_all(self) -> None:
        if self.proposal is not None and not self.spent:
            self.proposal.accept_all()
            self._after_bulk_change()

    def reject_all(self) -> None:
        if self.proposal is not None and not self.spent:
            self.proposal.reject_all()
            self._after_bulk_change()

    def _after_bulk_change(self) -> None:
        for view in self.hunk_views:
            view.refresh()
        self._hunk_changed()

    def _update_buttons(self) -> None:
        proposal = self.proposal
        writes = bool(proposal and not self.spent and any(c.writes for c in proposal.files))
        self.apply_button.setEnabled(writes)
        live = bool(proposal and not self.spent and proposal.files)
        self.accept_all_button.setEnabled(live)
        self.reject_all_button.setEnabled(live)
        # A damaged record counts too: Undo then says it is damaged and where its bytes are.
        self.undo_button.setEnabled(bool(self.folder and latest_record(self.folder)))

    # Apply and undo -------------------------------------------------------------------------------

    def apply(self, confirmed: bool = False, *, overwrite_read_only: bool = False) -> bool:
        """Write the accepted hunks; True if something was written.

        A file without write permission is not overwritten until the user says so in the bar that
        names it ("Overwrite read-only files"); `overwrite_read_only` is that answer.
        """
        proposal = self.proposal
        if proposal is None or self.spent:
            return False
        self.conflict_bar.hide()
        big = [c.path for c in proposal.files if c.writes and c.is_big_deletion()]
        if big and not confirmed:
            shares = ", ".join(
                f"{c.path} ({c.removed_share():.0%} of its lines)"
                for c in proposal.files
                if c.path in big
            )
            self.confirm_label.setText(
                f"<b>Large deletion.</b> The accepted changes remove more than half of {shares}. "
                "Apply anyway?"
            )
            self.confirm_bar.show()
            return False
        self.confirm_bar.hide()
        self.read_only_bar.hide()
        try:
            result = apply_proposal(
                proposal,
                confirm_big_deletions=True,
                checkpoint=self.checkpoint_box.isChecked(),
                overwrite_read_only=overwrite_read_only,
            )
        except ReadOnlyFileError as exc:
            names = html.escape(", ".join(exc.files))
            self.read_only_label.setText(
                f"<b>Read-only.</b> {names} {'has' if len(exc.files) == 1 else 'have'} no write "
                "permission, so nothing was written. Overwrite anyway? (The permissions stay as "
                "they are.)"
            )
            self.read_only_bar.show()
            return False
        except ConflictError as exc:
            self._show_conflict(str(exc), exc.files)
            return False
        except EditError as exc:
            self._show_error(str(exc))
            return False
        except OSError as exc:  # the core words every expected failure; this is a last resort
            self._show_error(f"Applying failed: {exc.strerror or exc}.")
            return False
        if result.change_set is None:
            self.status.setText("Nothing was accepted, so nothing was written.")
            return False
        self.spent = True
        for view in self.hunk_views:
            view.set_locked(True)
        saved = f" Checkpoint: {result.checkpoint.describe()}." if result.checkpoint else ""
        self.status.setText(f"Applied to {len(result.files)} file(s): "
                            f"{', '.join(result.files)}.{saved}")  # fmt: skip
        self._update_buttons()
        self.applied.emit(result.change_set)
        return True

    def undo(self) -> bool:
        if self.folder is None:
            return False
        self.conflict_bar.hide()
        try:
            result = undo_last(self.folder)
        except ConflictError as exc:
            self._show_conflict(str(exc), exc.files)
            return False
        except EditError as exc:
            self._show_error(str(exc))
            return False
        except OSError as exc:
            self._show_error(f"Undo failed: {exc.strerror or exc}.")
            return False
        files = [*result.restored, *result.removed]
        self.status.setText(f"Undone: {', '.join(files) or 'nothing to restore'}.")
        self._update_buttons()
        self.undone.emit()
        return True

    def _show_conflict(self, message: str, files: list[str]) -> None:
        self.conflict_label.setText(f"<b>Not written.</b> {html.escape(message)}")
        self.conflict_view.setHtml(self._conflict_details(files))
        self.conflict_bar.show()
        self.status.setText("")
        self.conflict.emit(files)

    def _conflict_details(self, files: list[str]) -> str:
        """For each file, how the disk differs from what the proposal was made against."""
        parts = []
        for path in files:
            change = None
            if self.proposal is not None:
                change = next((c for c in self.proposal.files if c.path == path), None)
            parts.append(f"<b>{html.escape(path)}</b>")
            if change is None:
                continue
            now = read_or_none(change.real_path)
            then = change.original
            if now is None or then is None:
                parts.append("<i>" + ("deleted since" if now is None else "created since")
                             + " the proposal</i>")  # fmt: skip
                continue
            diff = list(difflib.unified_diff(
                then.decode(change.encoding, "replace").splitlines(),
                now.decode(change.encoding, "replace").splitlines(),
                "proposed against", "on disk now", lineterm="", n=1,
            ))[:CONFLICT_DIFF_LINES]  # fmt: skip
            parts.append("<pre>" + html.escape("\n".join(diff) or "(same text)") + "</pre>")
        return "<br>".join(parts)

    def _show_error(self, message: str) -> None:
        self.status.setText(f'<span style="color:#cf222e;">{html.escape(message)}</span>')
        self.failed.emit(message)
