"""The folder panel's scan (app.ui.workspace_panel): one job on the app's I/O pool per folder.

It touches no Qt object: batches go into a locked deque that the panel's GUI-thread timer drains,
and it stays only a few batches ahead of what the window has shown. It stops at the next entry
once its cancel flag is set (never terminated).
"""

from __future__ import annotations

import threading
from collections import deque
from pathlib import Path

from app.core.workspace.scan import ScanBatch, WorkspaceError, scan_folder
from app.ui.tasks import Task, TaskPool

SCAN_TASK = "scan folder"
SCAN_BATCH = 128
MAX_AHEAD = 8  # batches found but not yet shown before the scan waits


class ScanJob:
    """One scan of one folder, a pool job; shares only plain Python objects with the GUI."""

    def __init__(self, root: Path, pool: TaskPool) -> None:
        self.root = root
        self.cancel = threading.Event()
        self.ready = threading.Condition()
        self.batches: deque[ScanBatch] = deque()
        self.done = False
        self.error: str | None = None
        # No callbacks: the panel's drain timer reads the batches; a bug is reported by the pool.
        self.task: Task[None] = pool.submit(SCAN_TASK, self._run, cancel=self.cancel)

    def _run(self, cancel: threading.Event) -> None:
        try:
            for batch in scan_folder(self.root, cancel=cancel, batch_size=SCAN_BATCH):
                with self.ready:
                    self.batches.append(batch)
                    # Stay only a little ahead of the window: a scan that runs on while the GUI
                    # thread adds rows competes with it for the GIL and lengthens its stalls.
                    while len(self.batches) >= MAX_AHEAD and not self.cancel.is_set():
                        self.ready.wait(0.05)
        except (WorkspaceError, OSError) as exc:  # the folder vanished or became unreadable
            self.error = str(exc)
        except Exception as exc:  # a bug: the pool logs and reports it; the panel says it stopped
            self.error = f"The scan stopped unexpectedly: {exc}"
            raise
        finally:
            self.done = True

    def take(self) -> ScanBatch | None:
        with self.ready:
            batch = self.batches.popleft() if self.batches else None
            self.ready.notify()
            return batch


def cancel_all(jobs: list[ScanJob]) -> None:
    for job in jobs:
        job.cancel.set()
