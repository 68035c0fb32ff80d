"""Where a dialog or secondary window opens: centred on its parent, never past the screen's edge.

Why: Qt places a top-level window where the window manager likes and keeps the size the code
asked for, so a 1200x800 Compare window opens partly off a 1000-px screen. `fit_and_centre` clamps
the size to the available screen area (less a margin for the panel and title bar) and centres the
frame on the parent window, then moves it back inside the screen. Call it before `show()`.
"""

from __future__ import annotations

from PySide6.QtCore import QPoint, QRect, QSize, Qt
from PySide6.QtGui import QGuiApplication, QScreen
from PySide6.QtWidgets import QWidget

SCREEN_MARGIN = 24  # pixels kept free at each screen edge (panels, the title bar)


def _screen_for(widget: QWidget, parent: QWidget | None) -> QScreen | None:
    for candidate in (parent, widget):
        if candidate is not None and candidate.screen() is not None:
            return candidate.screen()
    return QGuiApplication.primaryScreen()


def fitted_rect(wanted: QSize, available: QRect, centre_on: QRect | None) -> QRect:
    """The rectangle a window of size `wanted` gets: no larger than `available` less the margins,
    centred on `centre_on` (else on the screen), and wholly inside `available`."""
    room = available.adjusted(SCREEN_MARGIN, SCREEN_MARGIN, -SCREEN_MARGIN, -SCREEN_MARGIN)
    size = wanted.boundedTo(room.size())
    rect = QRect(QPoint(0, 0), size)
    rect.moveCenter((centre_on if centre_on is not None else room).center())
    # Back inside the screen: the left/top edge wins if the window is as large as the room.
    rect.moveLeft(max(room.left(), min(rect.left(), room.right() - size.width() + 1)))
    rect.moveTop(max(room.top(), min(rect.top(), room.bottom() - size.height() + 1)))
    return rect


def fit_and_centre(widget: QWidget, parent: QWidget | None = None) -> QRect:
    """Resize `widget` to fit its screen and centre it on `parent` (its parent window by
    default). Returns the geometry given."""
    parent = parent if parent is not None else widget.parentWidget()
    anchor = parent.window() if parent is not None else None
    screen = _screen_for(widget, anchor)
    resized = widget.testAttribute(Qt.WidgetAttribute.WA_Resized)
    wanted = widget.size() if resized else widget.sizeHint()
    if screen is None:
        return widget.geometry()
    centre_on = anchor.frameGeometry() if anchor is not None and anchor.isVisible() else None
    rect = fitted_rect(wanted.expandedTo(widget.minimumSizeHint()), screen.availableGeometry(),
                       centre_on)  # fmt: skip
    widget.resize(rect.size())
    widget.move(rect.topLeft())
    return rect
