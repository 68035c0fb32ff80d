"""The thinking meter: tokens used in the current thinking block against the policy's budget.

The bar turns amber past 80% of the budget and red at it, so a user sees the cap coming; the label
also counts what the policy did (suppressed, forced, loops broken). For a model with no thinking
format it says so instead of showing an empty bar.
"""

from __future__ import annotations

from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QWidget

from app.core.llm.engine import ReplyStats
from app.core.thinking.parser import ThinkingFormat
from app.core.thinking.policy import ThinkingPolicy

WARN_FRACTION = 0.8
_COLORS = {"ok": "#2da44e", "warn": "#d29922", "full": "#cf222e"}


class ThinkingMeter(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.label = QLabel("", self)
        self.bar = QProgressBar(self)
        self.bar.setMaximumWidth(120)
        self.bar.setTextVisible(False)
        self.bar.setFixedHeight(10)
        layout.addWidget(self.label)
        layout.addWidget(self.bar)
        self.level = "ok"
        self.set_idle(None, None)

    def set_idle(self, fmt: ThinkingFormat | None, policy: ThinkingPolicy | None) -> None:
        if fmt is None:
            self.label.setText("")
            self.bar.hide()
        elif fmt is ThinkingFormat.NONE:
            self.label.setText("Thinking: this model has no thinking format")
            self.bar.hide()
        else:
            budget = policy.budget if policy else None
            cap = f"budget {budget:,}" if budget is not None else "no budget"
            self.label.setText(f"Thinking: {policy.name if policy else 'Unpruned'}, {cap}")
            self.bar.hide()

    def update_stats(self, stats: ReplyStats, budget: int | None) -> None:
        used = stats.thinking_block_tokens
        parts = [f"Thinking {used:,}" + (f" / {budget:,}" if budget is not None else " tokens")]
        if stats.suppressed_tokens:
            parts.append(f"{stats.suppressed_tokens} suppressed")
        if stats.forced_tokens:
            parts.append(f"{stats.forced_tokens} forced")
        if stats.loops_broken:
            parts.append(f"{stats.loops_broken} loop broken")
        if stats.early_exit_probes:
            parts.append(f"{stats.early_exit_probes} probes, {stats.early_exits} early exit")
        self.label.setText(" · ".join(parts))
        if budget:
            fraction = min(1.0, used / budget)
            self.bar.setRange(0, 1000)
            self.bar.setValue(int(fraction * 1000))
            level = "full" if fraction >= 1 else "warn" if fraction >= WARN_FRACTION else "ok"
            if level != self.level:
                self.level = level
                self.bar.setStyleSheet(f"QProgressBar::chunk {{ background: {_COLORS[level]}; }}")
            self.bar.show()
        else:
            self.bar.hide()
