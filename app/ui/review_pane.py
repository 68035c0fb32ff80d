"""Review a model's proposed edits hunk by hunk, then apply them (or undo the last apply).

Nothing touches disk until Apply. The core does the work (`app.core.edits`): this pane shows the
proposal, records the user's decisions on it, and reports what the core says. One hunk is the
current one (outlined): the review page's keys move it across files and accept or reject it.
The message bars (big deletion, read-only, conflict) live in app/ui/review_bars.py.
"""

from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
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
from app.core.edits.pipeline import line_counts
from app.ui import theme
from app.ui.diff_highlight import FileHighlighter
from app.ui.hunk_view import HunkView
from app.ui.review_bars import ReviewBars

BLOCKS_MAX_HEIGHT = 110  # the list of edit blocks scrolls past this


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
        self.current_hunk = -1  # index into hunk_views (the selected file's hunks)
        self.side_by_side = False
        self._highlighters: dict[str, FileHighlighter] = {}

        self.summary = QLabel("No proposed edits.", self)
        self.summary.setWordWrap(True)
        self.blocks_view = QTextBrowser(self)
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

        self.bars = ReviewBars(self)

        self.accept_all_button = QPushButton("Accept all", self)
        self.reject_all_button = QPushButton("Reject all", self)
        self.checkpoint_box = QCheckBox("Git checkpoint first", self)
        self.checkpoint_box.setToolTip(
            "Save the folder's current state as a git stash entry before writing "
            "(only in a git repository)."
        )
        self.apply_button = QPushButton("Apply", self)
        self.apply_button.setToolTip("Write the accepted hunks (Ctrl+Enter)")
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
        layout.addWidget(self.bars)
        layout.addLayout(buttons)
        layout.addWidget(self.status)

        self.file_list.currentRowChanged.connect(self._show_file)
        self.accept_all_button.clicked.connect(self.accept_all)
        self.reject_all_button.clicked.connect(self.reject_all)
        self.apply_button.clicked.connect(self.apply)
        self.bars.confirm_button.clicked.connect(lambda: self.apply(confirmed=True))
        self.bars.overwrite_button.clicked.connect(
            lambda: self.apply(True, overwrite_read_only=True)
        )
        self.undo_button.clicked.connect(self.undo)
        self.set_proposal(None)

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
        self.bars.hide_all()
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
            t = theme.current()  # text colours readable on the theme's background
            color = {"applied": t.success_text, "unchanged": t.muted, "refused": t.danger_text}
            rows.append(
                f'<span style="color:{color[block.status.value]};">'
                f"{html.escape(block.describe())}</span>"
            )
        self.blocks_view.setHtml("<br>".join(rows) or "<i>The reply holds no edit blocks.</i>")
        # As tall as its lines (at most BLOCKS_MAX_HEIGHT): the hunks get the rest of the page.
        view = self.blocks_view
        margins = 2 * view.frameWidth() + 2 * int(view.document().documentMargin()) + 2
        tall = max(1, len(rows)) * view.fontMetrics().lineSpacing() + margins
        view.setFixedHeight(min(BLOCKS_MAX_HEIGHT, tall))
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
        self.current_hunk = -1
        if self.proposal is None or not 0 <= row < len(self.proposal.files):
            return
        change = self.proposal.files[row]
        highlighter = self._highlighters.setdefault(change.path, FileHighlighter(change))
        for index in range(len(change.hunks)):
            view = HunkView(change, index, highlighter, self.hunk_host)
            view.side_by_side = self.side_by_side
            if self.side_by_side:
                view.refresh()
            view.changed.connect(self._hunk_changed)
            view.focused.connect(lambda v: self.set_current_hunk(self.hunk_views.index(v)))
            view.set_locked(self.spent)
            self.hunk_layout.insertWidget(self.hunk_layout.count() - 1, view)
            self.hunk_views.append(view)
        if self.hunk_views:
            self.set_current_hunk(0)

    def repaint_theme(self) -> None:
        """Draw the summary and the hunks again in the theme's colours (they carry them inline),
        keeping the file and the hunk the user is on."""
        hunk = self.current_hunk  # the highlighters keep one rendering per theme
        self._show_blocks()
        self._show_file(self.file_list.currentRow())
        self.set_current_hunk(hunk)

    def set_side_by_side(self, on: bool) -> None:
        """Old and new lines next to each other (wrapped) instead of one above the other."""
        self.side_by_side = on
        for view in self.hunk_views:
            view.set_side_by_side(on)

    # Keyboard review ------------------------------------------------------------------------------

    def set_current_hunk(self, index: int) -> None:
        if not 0 <= index < len(self.hunk_views):
            return
        self.current_hunk = index
        for i, view in enumerate(self.hunk_views):
            view.set_current(i == index)
        self.hunk_area.ensureWidgetVisible(self.hunk_views[index], 0, 40)

    def move_hunk(self, step: int) -> bool:
        """The next (+1) or previous (-1) hunk, on to the next or previous file at the ends."""
        target = self.current_hunk + step
        if 0 <= target < len(self.hunk_views):
            self.set_current_hunk(target)
            return True
        row = self.file_list.currentRow() + step
        if self.proposal is None or not 0 <= row < len(self.proposal.files):
            return False
        self.file_list.setCurrentRow(row)  # rebuilds the hunk views, current = the first
        if step < 0:
            self.set_current_hunk(len(self.hunk_views) - 1)
        return True

    def decide_current(self, status: HunkStatus) -> bool:
        """Accept or reject the current hunk, then move on to the next one."""
        if self.spent or not 0 <= self.current_hunk < len(self.hunk_views):
            return False
        self.hunk_views[self.current_hunk].set_status(status)
        self.move_hunk(1)
        return True

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
        self.bars.confirm_bar.hide()
        self.bars.read_only_bar.hide()
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
        self.bars.conflict_bar.hide()
        big = [c.path for c in proposal.files if c.writes and c.is_big_deletion()]
        if big and not confirmed:
            self.bars.ask_big_deletion(", ".join(
                f"{c.path} ({c.removed_share():.0%} of its lines)"
                for c in proposal.files
                if c.path in big
            ))  # fmt: skip
            return False
        self.bars.hide_all()
        try:
            result = apply_proposal(
                proposal,
                confirm_big_deletions=True,
                checkpoint=self.checkpoint_box.isChecked(),
                overwrite_read_only=overwrite_read_only,
            )
        except ReadOnlyFileError as exc:
            self.bars.ask_read_only(exc.files)
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
        self.bars.conflict_bar.hide()
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
        self.bars.show_conflict(message, files, self.proposal)
        self.status.setText("")
        self.conflict.emit(files)

    def _show_error(self, message: str) -> None:
        colour = theme.current().danger_text
        self.status.setText(f'<span style="color:{colour};">{html.escape(message)}</span>')
        self.failed.emit(message)
