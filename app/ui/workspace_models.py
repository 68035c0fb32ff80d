"""The folder panel's models: the file tree (lazy, over plain lists, with checkboxes) and the
skipped list.

50,000 files would be 100,000 QStandardItems, each with a Python wrapper that the garbage
collector walks again and again (a measured 78 ms pause) and ~30 µs of GUI time to build. Here a
file is a few list entries; the view asks `data()` only for the rows it shows, and a chunk of new
files is one rowsInserted per folder.

Folders come before files, each in name order (the scan walks depth first by name; a folder's row
goes after its earlier sibling folders). Each folder counts its files and ticked files (all the
way down), so its checkbox state is O(1) and ticking a folder of 50,000 files is one pass.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from PySide6.QtCore import (
    QAbstractItemModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    Signal,
)

from app.core.units import binary_bytes
from app.core.workspace.scan import FileEntry, SkippedEntry

PATH_ROLE = Qt.ItemDataRole.UserRole + 1  # the relative path ("src/app.py"; a folder's "src")
IS_DIR_ROLE = Qt.ItemDataRole.UserRole + 2
CHECKED = Qt.CheckState.Checked
UNCHECKED = Qt.CheckState.Unchecked
PARTIAL = Qt.CheckState.PartiallyChecked
ROOT = 0  # the folder id of the open folder itself (never shown as a row)
_FLAGS = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
_RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
AnyIndex = QModelIndex | QPersistentModelIndex


class FileTreeModel(QAbstractItemModel):
    """Signals:
    ticksChanged()   the user ticked or unticked files or folders (see `selected`)

    Index ids: a folder's is 2 * its id, a file's 2 * its id + 1.
    """

    ticksChanged = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.selected: set[str] = set()  # ticked files
        self.paths: list[str] = []  # every file, by file id (the order they were found)
        # Whether a folder's rows are on show (the panel passes QTreeView.isExpanded).
        self.children_shown: Callable[[QModelIndex], bool] = lambda _index: True
        self.reset()

    def reset(self) -> None:
        self.beginResetModel()
        self.selected.clear()
        self.paths.clear()
        self._file_names: list[str] = []
        self._file_sizes: list[int] = []
        self._file_folder: list[int] = []
        self._file_slot: list[int] = []  # position among its folder's files
        self._file_ticked = bytearray()
        self._file_ids: dict[str, int] = {}
        self._folder_names: list[str] = [""]
        self._folder_paths: list[str] = [""]
        self._folder_parent: list[int] = [-1]
        self._folder_slot: list[int] = [0]  # position among its parent's subfolders
        self._subfolders: list[list[int]] = [[]]
        self._files: list[list[int]] = [[]]
        self._total: list[int] = [0]  # files under a folder, all the way down
        self._ticked: list[int] = [0]  # ticked files under a folder, all the way down
        self._folder_ids: dict[str, int] = {"": ROOT}
        self.endResetModel()

    # -- Qt's model interface ------------------------------------------------------------------

    def index(self, row: int, column: int, parent: AnyIndex = QModelIndex()) -> QModelIndex:  # noqa: B008
        folder = ROOT if not parent.isValid() else parent.internalId() // 2
        if parent.isValid() and parent.internalId() % 2:
            return QModelIndex()  # files have no children
        subfolders, files = self._subfolders[folder], self._files[folder]
        if row < 0 or column not in (0, 1):
            return QModelIndex()
        if row < len(subfolders):
            return self.createIndex(row, column, 2 * subfolders[row])
        if row - len(subfolders) < len(files):
            return self.createIndex(row, column, 2 * files[row - len(subfolders)] + 1)
        return QModelIndex()

    def parent(self, index: AnyIndex = QModelIndex()) -> QModelIndex:  # type: ignore[override]  # noqa: B008
        if not index.isValid():
            return QModelIndex()
        ident = index.internalId()
        folder = self._file_folder[ident // 2] if ident % 2 else self._folder_parent[ident // 2]
        return self._folder_index(folder)

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        if not parent.isValid():
            return len(self._subfolders[ROOT]) + len(self._files[ROOT])
        if parent.column() > 0 or parent.internalId() % 2:
            return 0
        folder = parent.internalId() // 2
        return len(self._subfolders[folder]) + len(self._files[folder])

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 2

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return ("Name", "Size")[section] if section in (0, 1) else None
        return None

    def flags(self, index: AnyIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        if index.column() == 0:
            return _FLAGS | Qt.ItemFlag.ItemIsUserCheckable
        return _FLAGS

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        ident, column = index.internalId(), index.column()
        is_file, n = bool(ident % 2), ident // 2
        if role == Qt.ItemDataRole.DisplayRole:
            if column == 0:
                return self._file_names[n] if is_file else self._folder_names[n]
            return binary_bytes(self._file_sizes[n]) if is_file else ""
        if role == Qt.ItemDataRole.CheckStateRole and column == 0:
            return self._file_state(n) if is_file else self._folder_state(n)
        if role == Qt.ItemDataRole.TextAlignmentRole and column == 1:
            return _RIGHT
        if role in (PATH_ROLE, Qt.ItemDataRole.ToolTipRole):
            return self.paths[n] if is_file else self._folder_paths[n]
        if role == IS_DIR_ROLE:
            return not is_file
        return None

    def setData(self, index: AnyIndex, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:
        if not index.isValid() or role != Qt.ItemDataRole.CheckStateRole or index.column() != 0:
            return False
        state = Qt.CheckState(value) if isinstance(value, int) else value
        ident = index.internalId()
        if ident % 2:
            self._tick_file(ident // 2, state == CHECKED)
            self._announce_chain(self._file_folder[ident // 2])
            self.dataChanged.emit(index, index, [Qt.ItemDataRole.CheckStateRole])
        else:
            # A click on a partly ticked folder ticks all of it.
            self._tick_folder(ident // 2, state != UNCHECKED)
        self.ticksChanged.emit()
        return True

    # -- filling -------------------------------------------------------------------------------

    def add_files(self, entries: Iterable[FileEntry], ticked: set[str]) -> None:
        """Append files (in scan order); those in `ticked` start ticked (a refresh keeps ticks)."""
        by_folder: dict[int, list[FileEntry]] = {}
        for entry in entries:
            if entry.path in self._file_ids:
                continue
            folder = self._folder_for(entry.path.rpartition("/")[0])
            by_folder.setdefault(folder, []).append(entry)
        changed_state: set[int] = set()
        for folder, group in by_folder.items():
            first = len(self._subfolders[folder]) + len(self._files[folder])
            self.beginInsertRows(self._folder_index(folder), first, first + len(group) - 1)
            for entry in group:
                n = len(self.paths)
                is_ticked = entry.path in ticked
                self.paths.append(entry.path)
                self._file_names.append(entry.path.rpartition("/")[2])
                self._file_sizes.append(entry.size)
                self._file_folder.append(folder)
                self._file_slot.append(len(self._files[folder]))
                self._file_ticked.append(is_ticked)
                self._file_ids[entry.path] = n
                self._files[folder].append(n)
                if is_ticked:
                    self.selected.add(entry.path)
                self._count_up(folder, 1, int(is_ticked))
            self.endInsertRows()
            if self._ticked[folder]:  # new files change a ticked folder's box (or its parents')
                changed_state.add(folder)
        for folder in changed_state:
            self._announce_chain(folder)

    def _folder_for(self, rel: str) -> int:
        """The folder's id, making it (and those above it) on first sight."""
        found = self._folder_ids.get(rel)
        if found is not None:
            return found
        above, _, name = rel.rpartition("/")
        parent = self._folder_for(above)
        row = len(self._subfolders[parent])
        self.beginInsertRows(self._folder_index(parent), row, row)
        n = len(self._folder_names)
        self._folder_names.append(name)
        self._folder_paths.append(rel)
        self._folder_parent.append(parent)
        self._folder_slot.append(row)
        self._subfolders.append([])
        self._files.append([])
        self._total.append(0)
        self._ticked.append(0)
        self._folder_ids[rel] = n
        self._subfolders[parent].append(n)
        self.endInsertRows()
        return n

    # -- ticking -------------------------------------------------------------------------------

    def set_ticked(self, paths: Iterable[str]) -> None:
        """Tick exactly these files (unknown paths are ignored)."""
        self._tick_folder(ROOT, False)
        for rel in paths:
            n = self._file_ids.get(rel)
            if n is not None and not self._file_ticked[n]:
                self._tick_file(n, True)
                index = self._file_index(n)
                self.dataChanged.emit(index, index, [Qt.ItemDataRole.CheckStateRole])
                self._announce_chain(self._file_folder[n])

    def index_of(self, rel: str) -> QModelIndex:
        """The index of a file or folder by its relative path (invalid if not shown)."""
        n = self._file_ids.get(rel)
        if n is not None:
            return self._file_index(n)
        folder = self._folder_ids.get(rel.rstrip("/"))
        return self._folder_index(folder) if folder else QModelIndex()

    def _tick_file(self, n: int, on: bool) -> None:
        if bool(self._file_ticked[n]) == on:
            return
        self._file_ticked[n] = on
        (self.selected.add if on else self.selected.discard)(self.paths[n])
        self._count_up(self._file_folder[n], 0, 1 if on else -1)

    def _tick_folder(self, top: int, on: bool) -> None:
        """Tick or untick every file under a folder; one dataChanged per folder on show."""
        delta = (self._total[top] if on else 0) - self._ticked[top]
        mark = self.selected.add if on else self.selected.discard
        stack = [(top, True)]
        while stack:
            folder, shown = stack.pop()
            for n in self._files[folder]:
                if bool(self._file_ticked[n]) != on:
                    self._file_ticked[n] = on
                    mark(self.paths[n])
            self._ticked[folder] = self._total[folder] if on else 0
            parent = self._folder_index(folder)
            # A view lays out every row of a changed range (Python calls per row), so rows under
            # a collapsed folder, which no view shows or caches, are not announced.
            shown = shown and (folder == ROOT or self.children_shown(parent))
            rows = len(self._subfolders[folder]) + len(self._files[folder])
            if rows and shown:
                self.dataChanged.emit(
                    self.index(0, 0, parent), self.index(rows - 1, 0, parent),
                    [Qt.ItemDataRole.CheckStateRole],
                )  # fmt: skip
            stack.extend((sub, shown) for sub in self._subfolders[folder])
        above = self._folder_parent[top]
        if above >= 0:
            self._count_up(above, 0, delta)
            self._announce_chain(top)

    def _count_up(self, folder: int, total: int, ticked: int) -> None:
        while folder >= 0:
            self._total[folder] += total
            self._ticked[folder] += ticked
            folder = self._folder_parent[folder]

    def _announce_chain(self, folder: int) -> None:
        """Repaint a folder's checkbox and those of the folders above it."""
        while folder > ROOT:
            index = self._folder_index(folder)
            self.dataChanged.emit(index, index, [Qt.ItemDataRole.CheckStateRole])
            folder = self._folder_parent[folder]

    def _file_state(self, n: int) -> Qt.CheckState:
        return CHECKED if self._file_ticked[n] else UNCHECKED

    def _folder_state(self, folder: int) -> Qt.CheckState:
        ticked = self._ticked[folder]
        if ticked == 0:
            return UNCHECKED
        return CHECKED if ticked == self._total[folder] else PARTIAL

    def _folder_index(self, folder: int) -> QModelIndex:
        if folder <= ROOT:
            return QModelIndex()
        return self.createIndex(self._folder_slot[folder], 0, 2 * folder)

    def _file_index(self, n: int) -> QModelIndex:
        folder = self._file_folder[n]
        row = len(self._subfolders[folder]) + self._file_slot[n]
        return self.createIndex(row, 0, 2 * n + 1)


class SkippedModel(QAbstractItemModel):
    """The skipped paths and their reasons, as a flat two-column table."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.entries: list[SkippedEntry] = []

    def clear(self) -> None:
        self.beginResetModel()
        self.entries = []
        self.endResetModel()

    def append(self, entries: list[SkippedEntry]) -> None:
        if entries:
            first = len(self.entries)
            self.beginInsertRows(QModelIndex(), first, first + len(entries) - 1)
            self.entries.extend(entries)
            self.endInsertRows()

    def put(self, entry: SkippedEntry) -> None:
        """Show `entry`, in place of the entry for the same path if there is one."""
        for row, old in enumerate(self.entries):
            if old.path == entry.path:
                self.entries[row] = entry
                self.dataChanged.emit(self.index(row, 0), self.index(row, 1))
                return
        self.append([entry])

    def remove(self, path: str) -> None:
        for row, old in enumerate(self.entries):
            if old.path == path:
                self.beginRemoveRows(QModelIndex(), row, row)
                del self.entries[row]
                self.endRemoveRows()
                return

    def index(self, row: int, column: int, parent: AnyIndex = QModelIndex()) -> QModelIndex:  # noqa: B008
        if parent.isValid() or not 0 <= row < len(self.entries) or column not in (0, 1):
            return QModelIndex()
        return self.createIndex(row, column, 0)

    def parent(self, index: AnyIndex = QModelIndex()) -> QModelIndex:  # type: ignore[override]  # noqa: B008
        return QModelIndex()

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.entries)

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 2

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return ("Path", "Why it was skipped")[section] if section in (0, 1) else None
        return None

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or role not in (
            Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole,
        ):  # fmt: skip
            return None
        entry = self.entries[index.row()]
        return entry.path if index.column() == 0 else entry.reason
