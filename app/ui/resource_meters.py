"""Context, memory and speed meters for the meters panel.

Context: a stacked bar of the window by part (system, folder files, history, the new message,
template text, thinking, answer); the legend is in the tooltip, the biggest parts in the caption.
Memory: a bar of the machine's RAM split into the model's weights, its KV cache, the rest of the
process (RSS) and what other programs use; free RAM and each GPU's free memory as llama.cpp sees
it, refreshed every two seconds (the reads are cheap; nothing is polled while hidden).
Speed: decode tokens per second with a sparkline of the reply so far, and the time to first
token; with speculative decoding, how many drafted tokens the model accepted.
"""

from __future__ import annotations

import html

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QWidget

from app.core.llm.engine import ModelInfo, ReplyStats
from app.core.session.meters import ContextUsage, memory_usage
from app.core.units import binary_bytes, short_bytes
from app.ui import theme
from app.ui.meter_bars import MeterCard, SegmentBar, Sparkline

MEMORY_REFRESH_MS = 2000
CONTEXT_WARN_FRACTION = 0.9
PART_LABELS = {
    "system": "system prompt",
    "files": "folder files",
    "history": "earlier turns",
    "message": "your message",
    "template": "template text",
    "thinking": "thinking",
    "answer": "answer",
}


class ContextMeter(MeterCard):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Context", parent)
        self.bar = SegmentBar(self)
        self.body.addWidget(self.bar)
        self.usage: ContextUsage | None = None
        self.clear()

    def clear(self, n_ctx: int | None = None) -> None:
        """No reply in this chat yet (a new chat, another chat opened, another model)."""
        self.usage = None
        self.bar.clear()
        self.value.setText(f"0 / {n_ctx:,}" if n_ctx else "")
        self.set_caption("Empty: fills as you chat" if n_ctx else "No model loaded")
        self.setToolTip(
            "How much of the model's context window the conversation fills, by part.\n"
            "When it is full the oldest turns no longer fit."
        )

    def text(self) -> str:
        """The meter in one line."""
        return f"Context {self.value.text()}" if self.usage is not None else ""

    def show_usage(self, usage: ContextUsage) -> None:
        self.usage = usage
        parts = usage.parts()
        self.value.setText(f"{usage.used:,} / {usage.n_ctx:,} ({usage.fraction:.0%})")
        self.bar.set_segments(usage.n_ctx, [(n, f"part:{i}") for i, (_, n) in enumerate(parts)])
        biggest = sorted((p for p in parts if p[1] > 0), key=lambda p: -p[1])[:3]
        caption = " · ".join(f"{PART_LABELS[name]} {n:,}" for name, n in biggest)
        if usage.fraction >= CONTEXT_WARN_FRACTION:
            caption = f"Nearly full · {caption}"
        self.set_caption(caption)
        t = theme.current()
        rows = "".join(
            f'<tr><td><span style="color:{t.parts[i]};">&#9632;</span> '
            f"{html.escape(PART_LABELS[name])}</td><td align=right>{n:,}</td></tr>"
            for i, (name, n) in enumerate(parts)
        )
        self.setToolTip(
            f"<b>Context window: {usage.used:,} of {usage.n_ctx:,} tokens</b>"
            f"<table cellspacing=4>{rows}</table>"
            "Template text: role markers and other text the chat template adds."
        )


class MemoryMeter(MeterCard):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Memory", parent)
        self.bar = SegmentBar(self)
        self.body.addWidget(self.bar)
        self.info: ModelInfo | None = None
        self._timer = QTimer(self)
        self._timer.setInterval(MEMORY_REFRESH_MS)
        self._timer.timeout.connect(self.refresh)
        self._timer.start()
        self.refresh()

    def set_model(self, info: ModelInfo | None) -> None:
        self.info = info
        self.refresh()

    def text(self) -> str:
        """The meter in one line."""
        return f"{self.value.text()} · {self.caption.full_text}"

    def refresh(self) -> None:
        if not self.isVisibleTo(self.window()) and self.value.text():
            return
        usage = memory_usage(self.info)
        own_rest = max(0, usage.rss_bytes - usage.model_bytes - usage.kv_bytes)
        others = max(0, usage.total_ram_bytes - usage.free_ram_bytes - usage.rss_bytes)
        mib = 1024 * 1024  # segment values in MiB keep them within a C int
        self.bar.set_segments(
            usage.total_ram_bytes // mib,
            [
                (usage.model_bytes // mib, "part:0"),
                (usage.kv_bytes // mib, "part:1"),
                (own_rest // mib, "part:4"),
                (others // mib, "border"),
            ],
        )
        self.value.setText(f"RSS {binary_bytes(usage.rss_bytes)}")
        # Short figures (three digits): the caption fits a quarter of a 1280-px window unelided.
        pieces = [f"{short_bytes(usage.free_ram_bytes)} free"]
        if self.info:
            pieces.insert(0, f"model {short_bytes(usage.model_bytes)}")
            pieces.insert(1, f"KV {short_bytes(usage.kv_bytes)}")
        else:
            pieces.insert(0, "No model loaded")
        pieces += [f"VRAM {short_bytes(g.free_bytes)} free" for g in usage.gpus]
        self.set_caption(" · ".join(pieces))
        gpus = "\n".join(
            f"{g.name}: {binary_bytes(g.free_bytes)} free of {binary_bytes(g.total_bytes)}"
            for g in usage.gpus
        )
        self.setToolTip(
            "The bar is this machine's RAM: model weights, KV cache, the rest of LeanCoder,\n"
            "then other programs; the empty part is free.\n"
            f"Model weights: {binary_bytes(usage.model_bytes)}\n"
            f"KV cache at full context: {binary_bytes(usage.kv_bytes)}\n"
            f"LeanCoder's resident memory (RSS): {binary_bytes(usage.rss_bytes)}\n"
            f"Free RAM: {binary_bytes(usage.free_ram_bytes)} of "
            f"{binary_bytes(usage.total_ram_bytes)}\n"
            + (gpus or "GPU memory: no GPU that llama.cpp can use on this machine.")
        )


class SpeedMeter(MeterCard):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Speed", parent)
        self.bar = SegmentBar(self)  # this reply's speed against the best seen with this model
        self.sparkline = Sparkline(self)
        self.body.addWidget(self.bar, 1)
        self.body.addWidget(self.sparkline)
        self.best = 0.0
        self.setToolTip(
            "Decode speed: tokens per second the model generates (the line is this reply so far;\n"
            "the bar compares it with the fastest reply since the model loaded).\n"
            "First token: the wait before the first token, mostly reading the prompt.\n"
            "Drafted / accepted: speculative decoding's guesses and how many the model confirmed."
        )
        self.set_model(None)

    def set_model(self, info: ModelInfo | None) -> None:
        self.best = 0.0
        self.reset("Speed appears with the first reply" if info else "No model loaded")

    def reset(self, caption: str) -> None:
        self.sparkline.clear()
        self.bar.clear()
        self.value.setText("")
        self.set_caption(caption)

    def waiting(self) -> None:
        """A message was sent; nothing has come back yet."""
        self.reset("Reading the prompt…")

    def text(self) -> str:
        """The meter in one line."""
        return f"{self.value.text()} · {self.caption.full_text}"

    def update_stats(self, stats: ReplyStats) -> None:
        speed = stats.decode_tokens_per_s
        if speed > 0:
            self.sparkline.add(speed)
            self.best = max(self.best, speed)
        self.value.setText(f"{speed:.1f} tok/s")
        if self.best > 0:
            self.bar.set_segments(1000, [(int(1000 * speed / self.best), "link")])
        pieces = []
        if stats.time_to_first_token_s > 0:
            pieces.append(f"first token {stats.time_to_first_token_s:.2f} s")
        pieces.append(f"{stats.generated_tokens:,} tokens")
        if stats.drafted_tokens:
            pieces.append(f"{stats.drafted_tokens:,} drafted, {stats.accepted_tokens:,} accepted")
        self.set_caption(" · ".join(pieces))
