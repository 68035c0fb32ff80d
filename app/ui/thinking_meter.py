"""The thinking meter: tokens used in the current thinking block against the policy's budget.

The bar turns amber past 80% of the budget and red at it, so a user sees the cap coming, and a
tick marks the soft budget (where the policy asks the model to wrap up). The caption counts what
the policy did (suppressed, forced, loops broken) and, with thinking KV compaction, how much of
the thinking the KV cache still holds. A model with no thinking format says so here, once: the
model's own label does not repeat it.
"""

from __future__ import annotations

from PySide6.QtWidgets import QWidget

from app.core.llm.engine import ReplyStats
from app.core.thinking.parser import ThinkingFormat
from app.core.thinking.policy import ThinkingPolicy
from app.ui.meter_bars import MeterCard, SegmentBar

WARN_FRACTION = 0.8
NO_FORMAT = "No thinking format: nothing to prune"
# Said in the tooltip: the caption must fit a quarter of a 1280-px window.
NO_FORMAT_TIP = (
    "This model's chat template has no thinking span, so the policy has nothing to act on.\n"
    "Compare's Force thinking opens one anyway, to show what the policy would do."
)
TOOLTIP = (
    "Thinking tokens in the current thinking block against the policy's budget.\n"
    "Amber from 80% of the budget, red at it; the tick is the soft budget, where the policy\n"
    "asks the model to wrap up. Suppressed: filler words ('wait', 'hmm') the policy held back.\n"
    "Forced: tokens LeanCoder wrote into the thinking (the closing, a hint). Loops broken:\n"
    "repeated thinking the policy cut short. Held: thinking the KV cache still keeps after\n"
    "compaction."
)


class ThinkingMeter(MeterCard):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Thinking", parent)
        self.bar = SegmentBar(self)
        self.body.addWidget(self.bar)
        self.setToolTip(TOOLTIP)
        self.level = "ok"
        self.policy: ThinkingPolicy | None = None
        self.summary = ""  # the meter in one line (accessible name, tests)
        self.set_idle(None, None)

    def set_idle(self, fmt: ThinkingFormat | None, policy: ThinkingPolicy | None) -> None:
        self.policy = policy
        self.bar.clear()
        self.level = "ok"
        self.setToolTip(f"{NO_FORMAT_TIP}\n\n{TOOLTIP}" if fmt is ThinkingFormat.NONE else TOOLTIP)
        if fmt is None:
            self._show("", "No model loaded")
        elif fmt is ThinkingFormat.NONE:
            self._show("", NO_FORMAT)
        else:
            budget = policy.budget if policy else None
            cap = f"budget {budget:,}" if budget is not None else "no budget"
            self._show(cap, f"{policy.name if policy else 'Unpruned'} policy: nothing yet")
            self.summary = f"Thinking: {policy.name if policy else 'Unpruned'}, {cap}"

    def update_stats(self, stats: ReplyStats, budget: int | None) -> None:
        used = stats.thinking_block_tokens
        figure = f"{used:,} / {budget:,}" if budget is not None else f"{used:,} tokens"
        counts = []
        if stats.suppressed_tokens:
            counts.append(f"{stats.suppressed_tokens} suppressed")
        if stats.forced_tokens:
            counts.append(f"{stats.forced_tokens} forced")
        if stats.loops_broken:
            plural = "s" if stats.loops_broken > 1 else ""
            counts.append(f"{stats.loops_broken} loop{plural} broken")
        if stats.early_exit_probes:
            counts.append(f"{stats.early_exit_probes} probes, {stats.early_exits} early exit")
        held = ""
        if stats.kv_compactions or stats.thinking_evicted_tokens:
            held = f"thinking {stats.thinking_tokens:,} tokens, {stats.thinking_held_tokens:,} held"
        caption = " · ".join([held, *counts] if held else counts) or "nothing pruned yet"
        self._show(figure, caption)
        self.summary = " · ".join([f"Thinking {figure}", *counts])
        if budget:
            fraction = min(1.0, used / budget)
            self.level = "full" if fraction >= 1 else "warn" if fraction >= WARN_FRACTION else "ok"
            soft = self.policy.soft_budget_fraction if self.policy else None
            self.bar.set_segments(budget, [(min(used, budget), self.level)], soft)
        else:
            self.level = "ok"
            self.bar.clear()

    def _show(self, figure: str, caption: str) -> None:
        self.value.setText(figure)
        self.set_caption(caption)
        self.summary = " · ".join(p for p in ("Thinking " + figure if figure else "", caption) if p)
        self.setAccessibleName(self.summary)
