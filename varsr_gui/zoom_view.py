"""A zoomable, pannable image view: fits at fractional zoom, nearest-neighbour (or smooth) when
enlarged, with a pixel grid."""

from __future__ import annotations

import math

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPen, QPixmap, QResizeEvent, QTransform, QWheelEvent
from PySide6.QtWidgets import QGraphicsPixmapItem, QGraphicsScene, QGraphicsView, QWidget

GRID_MIN_ZOOM = 8.0
MIN_ZOOM, MAX_ZOOM = 0.05, 128.0


class ZoomView(QGraphicsView):
    """Shows one image; wheel zooms under the cursor, drag pans, ``0`` fits."""

    zoom_changed = Signal(float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.pixmap_item = QGraphicsPixmapItem()
        self.pixmap_item.setShapeMode(QGraphicsPixmapItem.ShapeMode.BoundingRectShape)
        self.scene().addItem(self.pixmap_item)
        self.setBackgroundBrush(QColor(38, 38, 42))
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.FullViewportUpdate)
        self.setAcceptDrops(False)
        self.viewport().setAcceptDrops(False)
        self.show_grid = True
        self.auto_fit = True  # refit on resize until the analyst zooms
        self.smooth = False  # enlarged images: nearest neighbour (every source pixel a block) unless asked
        self._has_image = False

    # image
    def set_image(self, image: QImage | None, fit: bool = True) -> None:
        if image is None:
            self.pixmap_item.setPixmap(QPixmap())
            self._has_image = False
            return
        self.pixmap_item.setPixmap(QPixmap.fromImage(image))
        self.scene().setSceneRect(self.image_rect())
        self._has_image = True
        if fit:
            self.fit()

    def image_rect(self) -> QRectF:
        """The image in scene coordinates (its own pixels; a scaled-down pyramid level covers the same)."""
        return self.pixmap_item.sceneBoundingRect()

    # zoom
    def zoom(self) -> float:
        return self.transform().m11()

    def set_zoom(self, z: float) -> None:
        z = min(MAX_ZOOM, max(MIN_ZOOM, z))
        self.setTransform(QTransform.fromScale(z, z))
        self._update_filtering()
        self.zoom_changed.emit(z)

    def zoom_by(self, factor: float) -> None:
        """A zoom the analyst asked for: stop refitting on resize."""
        self.auto_fit = False
        self.set_zoom(self.zoom() * factor)

    def fit(self) -> None:
        self.auto_fit = True
        if not self._has_image or self.viewport().width() < 2:
            return
        r = self.image_rect()
        vw, vh = self.viewport().width() - 8, self.viewport().height() - 8
        z = min(vw / max(1.0, r.width()), vh / max(1.0, r.height()))  # fractional: the view is filled
        self.set_zoom(max(MIN_ZOOM, z))
        self.centerOn(r.center())

    def set_smooth(self, smooth: bool) -> None:
        """Smooth (bilinear) enlargement instead of nearest-neighbour blocks."""
        self.smooth = smooth
        self._update_filtering()
        self.viewport().update()

    def _update_filtering(self) -> None:
        smooth = self.smooth or self.zoom() < 1.0
        tm = Qt.TransformationMode
        self.pixmap_item.setTransformationMode(tm.SmoothTransformation if smooth else tm.FastTransformation)
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, smooth)

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802 - Qt override
        steps = event.angleDelta().y() / 120.0
        if steps:
            self.zoom_by(1.25**steps)
        event.accept()

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        if self.auto_fit:
            self.fit()

    def drawForeground(self, painter: QPainter, rect: QRectF) -> None:  # noqa: N802 - Qt override
        """The pixel grid, once each source pixel is big enough to see."""
        if not (self.show_grid and self._has_image and self.zoom() >= GRID_MIN_ZOOM):
            return
        r = rect.intersected(self.image_rect())
        if r.isEmpty():
            return
        pen = QPen(QColor(255, 255, 255, 45))
        pen.setCosmetic(True)
        pen.setWidth(0)
        painter.setPen(pen)
        for x in range(math.floor(r.left()), math.ceil(r.right()) + 1):
            painter.drawLine(QPointF(x, r.top()), QPointF(x, r.bottom()))
        for y in range(math.floor(r.top()), math.ceil(r.bottom()) + 1):
            painter.drawLine(QPointF(r.left(), y), QPointF(r.right(), y))
