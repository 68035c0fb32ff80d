"""Context and memory meters for the status bar.

Context: tokens in the window against the context size, with the split by kind in the tooltip.
Memory: the model and its KV cache (from the model's parameters), the process's RSS, the free
RAM and each GPU's free memory as llama.cpp sees it, refreshed every two seconds (the reads are
cheap; nothing is polled while hidden).
"""

from __future__ import annotations

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QLabel, QWidget

from app.core.llm.engine import ModelInfo
from app.core.session.meters import ContextUsage, memory_usage
from app.core.units import binary_bytes

MEMORY_REFRESH_MS = 2000


class ContextMeter(QLabel):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("", parent)

    def show_usage(self, usage: ContextUsage) -> None:
        self.setText(f"Context {usage.used:,} / {usage.n_ctx:,} ({usage.fraction:.0%})")
        self.setToolTip("\n".join(f"{name}: {n:,} tokens" for name, n in usage.parts()))
        warn = usage.fraction >= 0.9
        self.setStyleSheet("color: #cf222e;" if warn else "")


class MemoryMeter(QLabel):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("", parent)
        self.info: ModelInfo | None = None
        self._timer = QTimer(self)
        self._timer.setInterval(MEMORY_REFRESH_MS)
        self._timer.timeout.connect(self.refresh)
        self._timer.start()
        self.refresh()

    def set_model(self, info: ModelInfo | None) -> None:
        self.info = info
        self.refresh()

    def refresh(self) -> None:
        if not self.isVisibleTo(self.window()) and self.text():
            return
        usage = memory_usage(self.info)
        model = (
            f"model {binary_bytes(usage.model_bytes)} + KV {binary_bytes(usage.kv_bytes)} · "
            if self.info
            else ""
        )
        vram = "".join(f" · free VRAM {binary_bytes(g.free_bytes)}" for g in usage.gpus)
        self.setText(
            f"{model}RSS {binary_bytes(usage.rss_bytes)} · "
            f"free RAM {binary_bytes(usage.free_ram_bytes)}{vram}"
        )
        gpus = "\n".join(
            f"{g.name}: {binary_bytes(g.free_bytes)} free of {binary_bytes(g.total_bytes)}"
            for g in usage.gpus
        )
        self.setToolTip(
            f"Model weights: {binary_bytes(usage.model_bytes)}\n"
            f"KV cache at full context: {binary_bytes(usage.kv_bytes)}\n"
            f"LeanCoder's resident memory: {binary_bytes(usage.rss_bytes)}\n"
            f"Free RAM: {binary_bytes(usage.free_ram_bytes)} of "
            f"{binary_bytes(usage.total_ram_bytes)}\n"
            + (gpus or "GPU memory: no GPU that llama.cpp can use on this machine.")
        )
