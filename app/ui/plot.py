"""A small scatter plot (mean thinking tokens against accuracy, one point per policy) as PNG.

Drawn with QPainter on a QImage, so it needs no display and no plotting library beyond the Qt the
app already ships.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QGuiApplication, QImage, QPainter, QPen

from app.core.evals.thinking_bench import PolicySummary

WIDTH, HEIGHT = 720, 480
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 80, 40, 50, 60
PALETTE = ("#1f6feb", "#cf222e", "#2da44e", "#d29922", "#8250df", "#57606a")


def _ensure_gui() -> None:
    if QGuiApplication.instance() is None:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        QGuiApplication([])


def plot_tokens_vs_accuracy(summaries: Sequence[PolicySummary], path: Path, title: str) -> None:
    _ensure_gui()
    image = QImage(WIDTH, HEIGHT, QImage.Format.Format_ARGB32)
    image.fill(QColor("white"))
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    plot = QRectF(
        MARGIN_LEFT, MARGIN_TOP,
        WIDTH - MARGIN_LEFT - MARGIN_RIGHT, HEIGHT - MARGIN_TOP - MARGIN_BOTTOM,
    )  # fmt: skip
    max_tokens = max([s.mean_thinking for s in summaries] + [1.0]) * 1.15

    def point(tokens: float, accuracy: float) -> QPointF:
        return QPointF(
            plot.left() + plot.width() * tokens / max_tokens,
            plot.bottom() - plot.height() * accuracy,
        )

    painter.setPen(QPen(QColor("#d0d7de"), 1))
    for i in range(6):
        y = plot.bottom() - plot.height() * i / 5
        painter.drawLine(QPointF(plot.left(), y), QPointF(plot.right(), y))
        painter.setPen(QColor("#57606a"))
        painter.drawText(QRectF(0, y - 10, MARGIN_LEFT - 8, 20),
                         int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter),
                         f"{i * 20}%")  # fmt: skip
        painter.setPen(QPen(QColor("#d0d7de"), 1))
    for i in range(6):
        x = plot.left() + plot.width() * i / 5
        painter.setPen(QColor("#57606a"))
        label = f"{max_tokens * i / 5:.0f}"
        painter.drawText(
            QRectF(x - 40, plot.bottom() + 6, 80, 20), int(Qt.AlignmentFlag.AlignHCenter), label
        )
    painter.setPen(QPen(QColor("#24292f"), 2))
    painter.drawLine(plot.bottomLeft(), plot.bottomRight())
    painter.drawLine(plot.bottomLeft(), plot.topLeft())
    painter.drawText(QRectF(0, HEIGHT - 28, WIDTH, 20), int(Qt.AlignmentFlag.AlignHCenter),
                     "mean thinking tokens per task")  # fmt: skip
    painter.drawText(QRectF(0, 10, WIDTH, 24), int(Qt.AlignmentFlag.AlignHCenter), title)
    for i, summary in enumerate(summaries):
        color = QColor(PALETTE[i % len(PALETTE)])
        center = point(summary.mean_thinking, summary.accuracy)
        painter.setPen(QPen(color, 2))
        painter.setBrush(color)
        painter.drawEllipse(center, 6, 6)
        label = f"{summary.policy} ({summary.accuracy:.0%})"
        painter.drawText(center + QPointF(10, -8 - 16 * i), label)  # staggered: points may meet
    painter.end()
    path.parent.mkdir(parents=True, exist_ok=True)
    if not image.save(str(path)):  # the format follows the .png suffix
        raise OSError(f"could not write {path}")
