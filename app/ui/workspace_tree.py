"""The file tree of an open folder: a QStandardItemModel filled in pieces, with checkboxes.

Folders come before files, each in name order (the scan walks folders depth first and by name,
and a folder's row is inserted after its earlier sibling folders). Ticking a folder ticks every
file under it in one pass with the model's signals blocked, then one dataChanged per folder, so
ticking 50,000 files does not repaint 50,000 times.
"""

from __future__ import annotations

from collections.abc import Iterable

from PySide6.QtCore import QModelIndex, QObject, Qt, Signal
from PySide6.QtGui import QStandardItem, QStandardItemModel

from app.core.workspace.rules import human_size
from app.core.workspace.scan import FileEntry

PATH_ROLE = Qt.ItemDataRole.UserRole + 1  # the relative path ("src/app.py"; a folder's "src")
IS_DIR_ROLE = Qt.ItemDataRole.UserRole + 2
CHECKED = Qt.CheckState.Checked
UNCHECKED = Qt.CheckState.Unchecked
PARTIAL = Qt.CheckState.PartiallyChecked


class FileTreeModel(QStandardItemModel):
    """Signals:
    ticksChanged()   the user ticked or unticked files or folders (see `selected`)
    """

    ticksChanged = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.setHorizontalHeaderLabels(["Name", "Size"])
        self._updating = False  # our own checkbox changes, which are not the user's ticks
        self.itemChanged.connect(self._on_item_changed)
        self.selected: set[str] = set()  # ticked files
        self.paths: list[str] = []  # every file, in the order shown
        self._folders: dict[str, QStandardItem] = {}
        self._folder_rows: dict[str, int] = {}  # subfolders so far, per folder: where the next goes

    def reset(self) -> None:
        self.clear()
        self.setHorizontalHeaderLabels(["Name", "Size"])
        self.selected.clear()
        self.paths.clear()
        self._folders.clear()
        self._folder_rows.clear()

    # -- filling -------------------------------------------------------------------------------

    def add_files(self, entries: Iterable[FileEntry], ticked: set[str]) -> None:
        """Append files (in scan order); those in `ticked` start ticked (a refresh keeps ticks)."""
        stale: dict[str, QStandardItem] = {}  # folders whose tick may no longer match
        for entry in entries:
            folder, _, name = entry.path.rpartition("/")
            parent = self._folder(folder)
            is_ticked = entry.path in ticked
            parent.appendRow(_file_row(entry, name, is_ticked))
            self.paths.append(entry.path)
            if is_ticked:
                self.selected.add(entry.path)
            # An unticked file under an unticked folder changes nothing: skip the recount.
            if folder and (is_ticked or parent.checkState() != UNCHECKED):
                stale[folder] = parent
        self._updating = True
        try:
            for parent in stale.values():
                self._refresh_chain(parent)
        finally:
            self._updating = False

    def _folder(self, rel: str) -> QStandardItem:
        found = self._folders.get(rel)
        if found is not None:
            return found
        if not rel:
            root = self.invisibleRootItem()
            self._folders[""] = root
            return root
        above, _, name = rel.rpartition("/")
        parent = self._folder(above)
        item = QStandardItem(name)
        item.setEditable(False)
        item.setCheckable(True)
        item.setData(rel, PATH_ROLE)
        item.setData(True, IS_DIR_ROLE)
        size = QStandardItem("")
        size.setEditable(False)
        row = self._folder_rows.get(above, 0)
        parent.insertRow(row, [item, size])
        self._folder_rows[above] = row + 1
        self._folders[rel] = item
        return item

    # -- ticking -------------------------------------------------------------------------------

    def _on_item_changed(self, item: QStandardItem) -> None:
        if self._updating or not isinstance(item.data(PATH_ROLE), str):
            return
        self._updating = True
        try:
            self._apply_tick(item)
        finally:
            self._updating = False
        self.ticksChanged.emit()

    def _apply_tick(self, item: QStandardItem) -> None:
        """After the user ticked or unticked `item`: its files, the set, the folders above."""
        rel = item.data(PATH_ROLE)
        state = item.checkState()
        if item.data(IS_DIR_ROLE):
            target = UNCHECKED if state == UNCHECKED else CHECKED
            if state == PARTIAL:  # a click on a partly ticked folder ticks it all
                item.setCheckState(CHECKED)
            self._set_subtree(item, target)
        elif state == CHECKED:
            self.selected.add(rel)
        else:
            self.selected.discard(rel)
        parent = item.parent()
        if parent is not None:
            self._refresh_chain(parent)

    def set_ticked(self, paths: Iterable[str]) -> None:
        """Tick exactly these files (unknown paths are ignored)."""
        self._updating = True
        try:
            self._tick_exactly(set(paths))
        finally:
            self._updating = False

    def _tick_exactly(self, wanted: set[str]) -> None:
        root = self.invisibleRootItem()
        self._set_subtree(root, UNCHECKED)
        for rel in wanted & set(self.paths):
            item = self._file_item(rel)
            if item is not None:
                item.setCheckState(CHECKED)
                self.selected.add(rel)
        for rel in {p.rpartition("/")[0] for p in wanted}:
            folder = self._folders.get(rel)
            if folder is not None and rel:
                self._refresh_chain(folder)

    def _file_item(self, rel: str) -> QStandardItem | None:
        folder, _, name = rel.rpartition("/")
        parent = self._folders.get(folder)
        if parent is None:
            return None
        for row in range(self._folder_rows.get(folder, 0), parent.rowCount()):
            child = parent.child(row)
            if child is not None and child.text() == name:
                return child
        return None

    def _set_subtree(self, folder: QStandardItem, state: Qt.CheckState) -> None:
        blocked = self.blockSignals(True)  # one dataChanged per folder below, not one per file
        changed: list[QStandardItem] = []
        try:
            stack = [folder]
            while stack:
                current = stack.pop()
                if current.rowCount():
                    changed.append(current)
                for row in range(current.rowCount()):
                    child = current.child(row)
                    if child is None:
                        continue
                    child.setCheckState(state)
                    if child.data(IS_DIR_ROLE):
                        stack.append(child)
                    elif state == CHECKED:
                        self.selected.add(child.data(PATH_ROLE))
                    else:
                        self.selected.discard(child.data(PATH_ROLE))
        finally:
            self.blockSignals(blocked)
        for current in changed:
            parent_index = current.index() if current is not self.invisibleRootItem() else None
            first = self.index(0, 0, parent_index or QModelIndex())
            last = self.index(current.rowCount() - 1, 0, parent_index or QModelIndex())
            self.dataChanged.emit(first, last, [Qt.ItemDataRole.CheckStateRole])

    def _refresh_chain(self, folder: QStandardItem | None) -> None:
        """Recompute a folder's tick from its children, then each folder above it."""
        while folder is not None and folder.data(IS_DIR_ROLE):
            states = {folder.child(row).checkState() for row in range(folder.rowCount())}
            state = states.pop() if len(states) == 1 else PARTIAL
            if state != folder.checkState():
                folder.setCheckState(state)  # callers hold _updating: not a user tick
            folder = folder.parent()


def _file_row(entry: FileEntry, name: str, ticked: bool) -> list[QStandardItem]:
    item = QStandardItem(name)
    item.setEditable(False)
    item.setCheckable(True)
    item.setCheckState(CHECKED if ticked else UNCHECKED)
    item.setData(entry.path, PATH_ROLE)
    size = QStandardItem(human_size(entry.size))
    size.setEditable(False)
    size.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    return [item, size]
