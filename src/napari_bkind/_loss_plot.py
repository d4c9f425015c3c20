"""A small live plot of the training loss (plain Qt painting, no plotting library)."""

from __future__ import annotations

import math

from qtpy.QtCore import QPointF, Qt
from qtpy.QtGui import QColor, QPainter, QPaintEvent, QPen, QPolygonF
from qtpy.QtWidgets import QWidget

MARGIN = 6


class LossPlot(QWidget):
    """Total loss against step, log scale, redrawn as points are added."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.steps: list[int] = []
        self.losses: list[float] = []
        self.setMinimumHeight(110)
        self.setToolTip("Training loss (log scale) against step")

    def clear(self) -> None:
        """Forget every point."""
        self.steps.clear()
        self.losses.clear()
        self.update()

    def add(self, step: int, loss: float) -> None:
        """Append one point (non-finite or non-positive losses are skipped)."""
        if math.isfinite(loss) and loss > 0:
            self.steps.append(step)
            self.losses.append(math.log10(loss))
            self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        """Draw the frame, the curve and the last value."""
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        rect = self.rect().adjusted(MARGIN, MARGIN, -MARGIN, -MARGIN)
        painter.setPen(QPen(QColor(128, 128, 128)))
        painter.drawRect(rect)
        if len(self.steps) < 2:
            painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, "loss appears here")
            return
        low, high = min(self.losses), max(self.losses)
        span_y = max(high - low, 1e-6)
        first, span_x = self.steps[0], max(self.steps[-1] - self.steps[0], 1)
        curve = QPolygonF(
            [
                QPointF(
                    rect.left() + rect.width() * (step - first) / span_x,
                    rect.bottom() - rect.height() * (loss - low) / span_y,
                )
                for step, loss in zip(self.steps, self.losses, strict=True)
            ]
        )
        painter.setPen(QPen(QColor(255, 160, 40), 1.5))
        painter.drawPolyline(curve)
        painter.setPen(QPen(QColor(200, 200, 200)))
        label = f"step {self.steps[-1]}  loss {10 ** self.losses[-1]:.4g}"
        painter.drawText(rect.adjusted(4, 2, -4, -2), Qt.AlignmentFlag.AlignRight, label)
