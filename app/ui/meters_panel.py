"""The meters panel: thinking, context, memory and speed side by side under the toolbar.

Why a toolbar row rather than the status bar or the chat's layout: it stays visible whatever the
centre shows (the chat or the full-width review page), it never competes with status messages
for width (the status bar keeps one short line), and View > Meters hides it like any toolbar.
The panel only draws: the live reply pushes statistics into its meters, and `clear_reply` is what
New chat and opening another chat call so no figure outlives its conversation.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QMainWindow, QToolBar, QWidget

from app.core.llm.engine import ModelInfo
from app.core.thinking.policy import ThinkingPolicy
from app.ui import theme
from app.ui.resource_meters import ContextMeter, MemoryMeter, SpeedMeter
from app.ui.thinking_meter import ThinkingMeter


class MetersPanel(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.thinking = ThinkingMeter(self)
        self.context = ContextMeter(self)
        self.memory = MemoryMeter(self)
        self.speed = SpeedMeter(self)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 2, 6, 4)
        layout.setSpacing(8)
        for card in self.cards:
            layout.addWidget(card, 1)
        self.n_ctx: int | None = None

    @property
    def cards(self) -> tuple[ThinkingMeter, ContextMeter, MemoryMeter, SpeedMeter]:
        return (self.thinking, self.context, self.memory, self.speed)

    def set_model(self, info: ModelInfo | None, policy: ThinkingPolicy | None) -> None:
        """A model was loaded (or none is): every meter starts from its empty state."""
        self.n_ctx = info.n_ctx if info else None
        self.thinking.set_idle(info.thinking_format if info else None, policy)
        self.memory.set_model(info)
        self.speed.set_model(info)
        self.context.clear(self.n_ctx)

    def clear_reply(self) -> None:
        """A new or another chat: the context figure and the last reply's speed go."""
        self.context.clear(self.n_ctx)
        self.speed.reset(
            "Speed appears with the first reply" if self.n_ctx else "No model loaded"
        )

    def repaint_theme(self, _theme: theme.Theme | None = None) -> None:
        for card in self.cards:
            card.update()
            for child in card.findChildren(QWidget):
                child.update()


def add_meters_toolbar(window: QMainWindow) -> MetersPanel:
    """The panel in its own fixed toolbar row under the main toolbar; View > Meters toggles it
    (`toolbar.toggleViewAction()`)."""
    window.addToolBarBreak(Qt.ToolBarArea.TopToolBarArea)
    bar = QToolBar("Meters", window)
    bar.setObjectName("metersToolbar")  # saveState() needs a name to restore it
    bar.setMovable(False)
    bar.setFloatable(False)
    panel = MetersPanel(bar)
    bar.addWidget(panel)
    window.addToolBar(Qt.ToolBarArea.TopToolBarArea, bar)
    panel.toolbar = bar  # type: ignore[attr-defined]
    return panel
