"""Listing a generated 50,000-file folder: the core scan's speed, and the window while it fills.

What it measures, in one process on a temporary folder (deleted afterwards):

- the core scan (`scan_all`, no Qt): wall time over 3 runs (median), and the time to the first
  batch, i.e. how soon a window can show something;
- the folder panel (offscreen, shown) filling its tree from the background scan: wall time from
  `open_folder` to `scanFinished`, and the GUI thread's stalls, sampled by a QTimer that fires
  every 5 ms and records the gap since it last fired (lateness = gap - 5 ms);
- the same timer with the panel idle (a baseline), and the stall of ticking one folder that
  holds 5,000 files, collapsed and with every row under it expanded.

The folder holds 50,000 source files to list plus what must be skipped: a node_modules/ and an
ignored build/ (never entered), and binary files.
Goal: the longest stall while the tree fills stays under 50 ms (a frame or three).

Run: QT_QPA_PLATFORM=offscreen .venv/bin/python bench/scan.py [--files N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QElapsedTimer, QEventLoop, Qt, QTimer
from PySide6.QtWidgets import QApplication

from app.core.workspace.scan import scan_all, scan_folder
from app.ui.workspace_panel import WorkspacePanel

TICK_MS = 5
GOAL_MAX_STALL_MS = 50.0
TOP_FOLDERS = 10
SUB_FOLDERS = 50


def make_tree(root: Path, n_files: int) -> None:
    """n_files listed files in TOP_FOLDERS x SUB_FOLDERS folders, plus things to skip."""
    per_folder = max(1, n_files // (TOP_FOLDERS * SUB_FOLDERS))
    made = 0
    for top in range(TOP_FOLDERS):
        for sub in range(SUB_FOLDERS):
            folder = root / f"pkg{top:02d}" / f"mod{sub:02d}"
            folder.mkdir(parents=True)
            for i in range(per_folder):
                if made >= n_files:
                    break
                (folder / f"file{i:03d}.py").write_text(f"def f{i}():\n    return {i}\n")
                made += 1
            (folder / "icon.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (root / ".gitignore").write_text("build/\n*.log\n")
    for heavy in ("node_modules/pkg", "build/out"):
        (root / heavy).mkdir(parents=True)
        for i in range(1000):
            (root / heavy / f"x{i}.js").write_text("module.exports = 1\n")


def time_core_scan(root: Path) -> tuple[float, float, int, int]:
    """(median seconds of a full scan, seconds to the first batch, files, skipped)."""
    times = []
    for _ in range(3):
        start = time.perf_counter()
        result = scan_all(root)
        times.append(time.perf_counter() - start)
    start = time.perf_counter()
    next(iter(scan_folder(root)))
    first_batch = time.perf_counter() - start
    return statistics.median(times), first_batch, len(result.files), len(result.skipped)


class StallMeter:
    """A 5 ms QTimer on the GUI thread; each gap beyond 5 ms is time the loop was busy."""

    def __init__(self) -> None:
        self.gaps: list[float] = []
        self._clock = QElapsedTimer()
        self._timer = QTimer()
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.setInterval(TICK_MS)
        self._timer.timeout.connect(self._tick)

    def _tick(self) -> None:
        self.gaps.append(self._clock.nsecsElapsed() / 1e6)
        self._clock.restart()

    def start(self) -> None:
        self.gaps.clear()
        self._clock.start()
        self._timer.start()

    def stop(self) -> list[float]:
        self._timer.stop()
        return [max(0.0, gap - TICK_MS) for gap in self.gaps]


def run_for(seconds: float) -> None:
    loop = QEventLoop()
    QTimer.singleShot(int(seconds * 1000), loop.quit)
    loop.exec()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    index = min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))
    return ordered[index]


def lateness_row(name: str, values: list[float]) -> str:
    return (
        f"| {name} | {percentile(values, 50):.2f} ms | {percentile(values, 99):.1f} ms "
        f"| {max(values, default=0.0):.1f} ms |"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=50_000)
    args = parser.parse_args()
    app = QApplication.instance() or QApplication(sys.argv)
    workdir = Path(tempfile.mkdtemp(prefix="leancoder-scan-bench-"))
    try:
        root = workdir / "tree"
        start = time.perf_counter()
        make_tree(root, args.files)
        print(f"generated {args.files:,} files in {time.perf_counter() - start:.1f} s")
        core_s, first_s, n_files, n_skipped = time_core_scan(root)
        rate = n_files / core_s
        print(f"core scan: {n_files:,} files, {n_skipped:,} skipped, median {core_s:.2f} s "
              f"({rate:,.0f} files/s); first batch after {first_s * 1000:.1f} ms")  # fmt: skip

        panel = WorkspacePanel()
        panel.resize(500, 800)
        panel.show()
        meter = StallMeter()
        meter.start()
        run_for(2.0)
        idle = meter.stop()

        finished = QEventLoop()
        panel.scanFinished.connect(lambda *_: finished.quit())
        meter.start()
        start = time.perf_counter()
        panel.open_folder(root)
        finished.exec()
        fill_s = time.perf_counter() - start
        filling = meter.stop()
        assert len(panel.files()) == n_files, (len(panel.files()), n_files)

        folder = panel.model.index(0, 0)
        tick_ms = {}
        for label in ("collapsed", "expanded"):
            if label == "expanded":
                panel.tree.expandRecursively(folder)
            app.processEvents()
            for state in (Qt.CheckState.Unchecked, Qt.CheckState.Checked):
                start = time.perf_counter()
                # What the view does on a click: setData with the new state, then a repaint.
                panel.model.setData(folder, state.value, Qt.ItemDataRole.CheckStateRole)
                app.processEvents()
                tick_ms[label] = (time.perf_counter() - start) * 1000
        ticked = len(panel.selected_files())
        panel.shutdown()
        panel.close()
        panel.deleteLater()
        app.processEvents()

        print(f"panel fill: {fill_s:.2f} s ({fill_s / core_s:.2f}x the core scan)")
        print(f"tick a folder of {ticked:,} files: {tick_ms['collapsed']:.0f} ms collapsed, "
              f"{tick_ms['expanded']:.0f} ms with all its rows expanded")  # fmt: skip
        print("\n| GUI timer lateness | p50 | p99 | max |\n|---|---|---|---|")
        print(lateness_row("idle", idle))
        print(lateness_row(f"filling {n_files:,} files", filling))
        worst = max(filling, default=0.0)
        verdict = "met" if worst < GOAL_MAX_STALL_MS else "MISSED"
        print(f"\nlongest stall while filling: {worst:.1f} ms (goal < {GOAL_MAX_STALL_MS:.0f}: "
              f"{verdict})")  # fmt: skip
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
