"""The meters' drawing: a segmented bar (with an optional mark) and a sparkline, painted directly.

Why painted instead of QProgressBar: a progress bar has one value and a style-dependent look, while
the context meter needs a stacked bar by part, the thinking meter a soft-budget mark, and both must
take the theme's colours; a few QPainter rectangles do all of it the same way on every platform.
The widgets keep their data as plain attributes so tests read what is drawn without pixels.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPalette, QPen, QPolygonF, QResizeEvent
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from app.ui import theme

BAR_HEIGHT = 10
SPARKLINE_POINTS = 60  # the last 60 speed readings of a reply


def theme_colour(spec: str, t: theme.Theme | None = None) -> QColor:
    """A colour given as "#rrggbb", a Theme field name ("ok", "full") or "part:N" (a context
    part): named colours are looked up when painting, so a theme switch repaints them."""
    t = t or theme.current()
    if spec.startswith("#"):
        return QColor(spec)
    if spec.startswith("part:"):
        return QColor(t.parts[int(spec[5:]) % len(t.parts)])
    return QColor(str(getattr(t, spec)))


class SegmentBar(QWidget):
    """Segments (value, colour) laid left to right over `total`; a tick at `mark` (0..1).
    Colours are `theme_colour` specs."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.total = 0
        self.segments: list[tuple[int, str]] = []
        self.mark: float | None = None
        self.setFixedHeight(BAR_HEIGHT + 4)  # room for the mark above and below the bar
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def sizeHint(self) -> QSize:
        return QSize(160, BAR_HEIGHT + 4)

    def set_segments(
        self, total: int, segments: Iterable[tuple[int, str]], mark: float | None = None
    ) -> None:
        self.total = max(0, total)
        self.segments = [(max(0, v), c) for v, c in segments]
        self.mark = mark
        self.update()

    def clear(self) -> None:
        self.set_segments(0, [])

    @property
    def fraction(self) -> float:
        """How much of the bar is filled (0..1); what a user reads as its value."""
        if self.total <= 0:
            return 0.0
        return min(1.0, sum(v for v, _ in self.segments) / self.total)

    def paintEvent(self, event: QPaintEvent) -> None:
        t = theme.current()
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        bar = QRectF(0.5, 2.5, self.width() - 1.0, BAR_HEIGHT - 1.0)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(t.track))
        painter.drawRoundedRect(bar, 3, 3)
        if self.total > 0:
            painter.save()
            painter.setClipRect(bar)
            x = bar.left()
            for value, colour in self.segments:
                width = bar.width() * value / self.total
                if x + width > bar.right():
                    width = bar.right() - x
                if width <= 0:
                    continue
                painter.setBrush(theme_colour(colour, t))
                painter.drawRect(QRectF(x, bar.top(), width, bar.height()))
                x += width
            painter.restore()
        if self.mark is not None and 0 < self.mark < 1:
            x = bar.left() + bar.width() * self.mark
            painter.setPen(QPen(QColor(t.text), 2))
            painter.drawLine(QPointF(x, 0), QPointF(x, self.height()))
        painter.end()


class Sparkline(QWidget):
    """A small line of the latest readings (tokens per second while a reply streams)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.values: deque[float] = deque(maxlen=SPARKLINE_POINTS)
        self.setFixedSize(72, BAR_HEIGHT + 4)  # the bars' height: the cards line up

    def add(self, value: float) -> None:
        self.values.append(max(0.0, value))
        self.update()

    def set_values(self, values: Sequence[float]) -> None:
        self.values.clear()
        self.values.extend(max(0.0, v) for v in values[-SPARKLINE_POINTS:])
        self.update()

    def clear(self) -> None:
        self.values.clear()
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        if len(self.values) < 2:
            return
        top = max(self.values) or 1.0
        w, h = self.width() - 2.0, self.height() - 3.0
        step = w / (len(self.values) - 1)
        points = QPolygonF(
            [QPointF(1 + i * step, 1.5 + h * (1 - v / top)) for i, v in enumerate(self.values)]
        )
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(QPen(QColor(theme.current().link), 1.5))
        painter.drawPolyline(points)
        painter.end()


class MeterCard(QFrame):
    """One meter in the panel: a title and its figure on one line, a bar, a short caption.

    Captions are elided (never wrapped or cut mid-word), and the whole story is in the tooltip.
    """

    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("meterCard")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setMinimumWidth(180)
        self.title = QLabel(title, self)
        bold = self.title.font()
        bold.setBold(True)
        self.title.setFont(bold)
        self.value = QLabel("", self)
        self.value.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.caption = ElidedLabel(self)
        head = QHBoxLayout()
        head.setContentsMargins(0, 0, 0, 0)
        head.addWidget(self.title)
        head.addStretch(1)
        head.addWidget(self.value)
        self.body = QHBoxLayout()  # the bar (and a sparkline, for speed)
        self.body.setContentsMargins(0, 0, 0, 0)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 4, 8, 4)
        layout.setSpacing(2)
        layout.addLayout(head)
        layout.addLayout(self.body)
        layout.addWidget(self.caption)

    def set_caption(self, text: str) -> None:
        self.caption.set_full_text(text)


class ElidedLabel(QLabel):
    """A one-line label that shows "…" at the end instead of being cut off or widening its
    parent; the full text stays in `full_text` (and in the tooltip when elided)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("", parent)
        self.full_text = ""
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.setForegroundRole(QPalette.ColorRole.PlaceholderText)

    def set_full_text(self, text: str) -> None:
        self.full_text = text
        self._elide()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        shown = self.fontMetrics().elidedText(
            self.full_text, Qt.TextElideMode.ElideRight, max(10, self.width())
        )
        self.setText(shown)
