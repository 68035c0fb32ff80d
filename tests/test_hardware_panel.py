"""The hardware panel: filled by real detection off the GUI thread, or from a HardwareInfo."""

from __future__ import annotations

import os
import stat
import threading
import time
from pathlib import Path

import psutil
import pytest
from pytestqt.qtbot import QtBot

from app.core.machine.info import CpuInfo, GpuInfo, HardwareInfo
from app.core.units import binary_bytes
from app.ui.hardware_panel import HardwarePanel
from app.ui.measured_bandwidth import measured_bandwidth
from app.ui.tasks import THREAD_PREFIX

DETECT_TIMEOUT_MS = 20_000


@pytest.fixture
def panel(qtbot: QtBot, tmp_path: Path, data_dir: Path) -> HardwarePanel:
    # Every panel shows the memory speed measured earlier in this process (app-wide, by design):
    # each test starts with none measured.
    measured_bandwidth().seed(None)
    widget = HardwarePanel(models_dir=tmp_path / "models")
    qtbot.addWidget(widget)
    widget.show()
    return widget


def test_detection_runs_off_the_gui_thread_and_fills_the_panel(
    panel: HardwarePanel, qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A vendor tool that takes a second: the GUI thread must not wait for it.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    slow = bin_dir / "nvidia-smi"
    slow.write_text("#!/bin/sh\nsleep 1\necho 'NVIDIA GeForce RTX 4090, 24564, 23012'\n")
    slow.chmod(slow.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")

    started = time.monotonic()
    with qtbot.waitSignal(panel.detected, timeout=DETECT_TIMEOUT_MS) as blocker:
        panel.refresh()
        assert time.monotonic() - started < 0.5  # refresh() returned at once
        assert not panel.refresh_button.isEnabled()
        assert panel.status.text() == "Inspecting this machine…"
        # The detection is a job on the app's I/O pool, not on the GUI thread.
        task = panel.detector.task
        assert task is not None and task.name == "detect hardware"
        qtbot.waitUntil(lambda: task.thread_name is not None)
        assert task.thread_name is not None and task.thread_name.startswith(THREAD_PREFIX)
        assert task.thread_name != threading.current_thread().name
    info = blocker.args[0]
    assert isinstance(info, HardwareInfo) and panel.info is info
    rows = dict(panel.row_texts())
    assert rows["RAM"].startswith(binary_bytes(psutil.virtual_memory().total))
    assert info.cpu.name in rows["CPU"]
    assert rows["CPU features"] == (" ".join(info.cpu.features) or "none reported")
    gpu_rows = [text for label, text in panel.row_texts() if label.startswith("GPU ")]
    if os.name == "posix":
        assert any("NVIDIA GeForce RTX 4090" in text for text in gpu_rows)
    assert f"free at {tmp_path / 'models'}" in rows["Disk"]
    assert "Bandwidth" not in rows
    assert panel.refresh_button.isEnabled() and panel.status.text() == ""


def test_bandwidth_button_measures_memory_speed(panel: HardwarePanel, qtbot: QtBot) -> None:
    with qtbot.waitSignal(panel.detected, timeout=DETECT_TIMEOUT_MS) as blocker:
        panel.bandwidth_button.click()
        assert panel.status.text() == "Measuring memory speed…"
    info = blocker.args[0]
    assert info.memory_bandwidth_bytes_per_s is not None
    rows = dict(panel.row_texts())
    assert rows["Bandwidth"] == f"{info.memory_bandwidth_bytes_per_s / 1e9:.1f} GB/s (estimate)"


def test_panel_shows_each_gpu_with_its_source_and_the_notes(panel: HardwarePanel) -> None:
    info = HardwareInfo(
        ram_total_bytes=64 * 1024**3,
        ram_available_bytes=40 * 1024**3,
        cpu=CpuInfo("AMD Ryzen 9 7950X", 16, 32, ("AVX2", "AVX512")),
        gpus=(
            GpuInfo(0, "NVIDIA GeForce RTX 4090", "CUDA", 24 * 1024**3, 23 * 1024**3, "ggml"),
            GpuInfo(1, "AMD Radeon RX 6800", "unknown", 16 * 1024**3, None, "windows"),
        ),
        disk_path="/models",
        disk_free_bytes=500 * 1024**3,
        notes=("The installed llama.cpp cannot use AMD Radeon RX 6800 (windows).",),
    )
    panel.show_info(info)
    panel.show_info(info)  # a refresh replaces the rows, it does not add to them
    rows = panel.row_texts()
    assert [label for label, _ in rows] == [
        "RAM",
        "CPU",
        "CPU features",
        "Threads",
        "GPU 0",
        "GPU 1",
        "Disk",
    ]
    texts = dict(rows)
    assert texts["RAM"] == "64 GiB total, 40 GiB available"
    assert texts["CPU"] == "AMD Ryzen 9 7950X (16 cores, 32 threads)"
    assert texts["Threads"] == "16 for decoding, 32 for prompts; the window the same"
    assert (
        texts["GPU 0"] == "NVIDIA GeForce RTX 4090 (CUDA, via llama.cpp): 24 GiB, 23 GiB free"
    )
    assert texts["GPU 1"] == (
        "AMD Radeon RX 6800 (unknown, via windows, not usable by llama.cpp): 16 GiB"
    )
    assert texts["Disk"] == "500 GiB free at /models"
    assert panel.notes.isVisible()
    assert "cannot use AMD Radeon RX 6800" in panel.notes.text()
