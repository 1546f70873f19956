"""The evidence image: zoom, pan, rubber-band region, eye clicks, 4-corner plates, cell boundaries."""

from __future__ import annotations

import math

from PySide6.QtCore import QPoint, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QImage, QMouseEvent, QPainterPath, QPen, QPixmap, QPolygonF
from PySide6.QtWidgets import QGraphicsEllipseItem, QGraphicsItem, QGraphicsView, QWidget

from core.workbench.session import Region
from varsr_gui.zoom_view import ZoomView

MODES = ("select", "pan", "eyes", "quad")
REGION_COLOUR = QColor(80, 200, 255)
CELL_COLOUR = QColor(255, 220, 80)
FACE_COLOUR = QColor(120, 255, 120)
FRAME_COLOUR = QColor(255, 120, 220)
GRAB_PX = 5
MIN_CELL = 0.01  # the narrowest a dragged cell becomes, a fraction of the row


def _pen(colour: QColor, width: float = 1.5, dashed: bool = False) -> QPen:
    pen = QPen(colour)
    pen.setCosmetic(True)
    pen.setWidthF(width)
    if dashed:
        pen.setStyle(Qt.PenStyle.DashLine)
    return pen


def _lerp(a: QPointF, b: QPointF, t: float) -> QPointF:
    return QPointF(a.x() + (b.x() - a.x()) * t, a.y() + (b.y() - a.y()) * t)


class EvidenceView(ZoomView):
    """The whole evidence image with the analyst's region drawn on it.

    Modes: ``select`` (drag a box; drag a yellow cell edge, the outer ones too; click a proposed face box),
    ``pan``, ``eyes`` (click the two eye centres), ``quad`` (click a plate's four corners,
    clockwise from top-left). The middle button always pans.
    """

    region_picked = Signal(object)  # core.workbench.session.Region
    cells_moved = Signal(list)  # all n + 1 cell edges after a drag, fractions of the crop width
    face_clicked = Signal(int)
    mode_changed = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.mode = "select"
        self._press: QPointF | None = None
        self._pan_from: QPoint | None = None
        self._points: list[QPointF] = []
        self._overlay: list[QGraphicsItem] = []
        self._temp: list[QGraphicsItem] = []
        self._faces: list[tuple[float, float, float, float]] = []
        self._corners: tuple[QPointF, QPointF, QPointF, QPointF] | None = None
        self._edges: list[float] = []  # the n + 1 cell edges (none for a face)
        self._drag_cell: int | None = None
        self._region: Region | None = None
        self._frame_eyes: tuple[tuple[float, float], tuple[float, float]] | None = None
        self.frame_items: list[QGraphicsItem] = []  # the face frame's eye marks, for the tests
        self.levels: list[QImage] = []  # a display pyramid (full size first), when one is shown
        self.level = 0
        self.set_mode("select")

    # -- the image and its display pyramid --------------------------------------------------------
    def set_image(self, image: QImage | None, fit: bool = True) -> None:
        self.levels = []
        self.level = 0
        self.pixmap_item.setScale(1.0)
        super().set_image(image, fit)

    def set_pyramid(self, levels: list[QImage]) -> None:
        """Show a large image given as a display pyramid (``levels[0]`` full size, each next one halved, made in
        a worker): the view draws the coarsest level that still has a pixel for each screen pixel, so a
        zoomed-out 8000x6000 frame never converts or paints its full size."""
        if len(levels) < 2:
            self.set_image(levels[0] if levels else None)
            return
        self.levels = list(levels)
        self.level = -1
        self._show_level(len(levels) - 1)
        self.scene().setSceneRect(self.image_rect())
        self._has_image = True
        self.fit()

    def _show_level(self, i: int) -> None:
        if i == self.level or not self.levels:
            return
        self.level = i
        self.pixmap_item.setPixmap(QPixmap.fromImage(self.levels[i]))
        self.pixmap_item.setScale(self.levels[0].width() / max(1, self.levels[i].width()))

    def set_zoom(self, z: float) -> None:
        super().set_zoom(z)
        if self.levels:
            k = 0 if self.zoom() >= 1 else int(math.floor(math.log2(1 / self.zoom())))
            self._show_level(min(len(self.levels) - 1, max(0, k)))

    # -- state from the window ---------------------------------------------------------------
    def set_mode(self, mode: str) -> None:
        assert mode in MODES
        self.mode = mode
        self._points = []
        self._clear(self._temp)
        pan = mode == "pan"
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag if pan else QGraphicsView.DragMode.NoDrag)
        self.viewport().setCursor(Qt.CursorShape.OpenHandCursor if pan else Qt.CursorShape.CrossCursor)
        self.mode_changed.emit(mode)

    def show_region(self, region: Region | None, bounds: list[float] | None = None) -> None:
        """Draw the region (and the row of cells at interior ``bounds`` when given; outer edges shown by
        :meth:`show_cells` are kept while the interior ones are the same)."""
        self._region = region
        inner = list(bounds) if bounds is not None else None
        if inner is None:
            self._edges = []
        elif len(self._edges) != len(inner) + 2 or self._edges[1:-1] != inner:
            self._edges = [0.0, *inner, 1.0]
        self._redraw()

    def show_cells(self, edges: list[float] | None) -> None:
        """Draw the row's cells at all ``n + 1`` ``edges`` (None: no cells)."""
        self._edges = list(edges or [])
        self._redraw()

    def cell_edges(self) -> list[float]:
        """The cell edges drawn (during a drag, where it has moved them)."""
        return list(self._edges)

    def show_frame(self, eyes: tuple[tuple[float, float], tuple[float, float]] | None) -> None:
        """Mark where the face model expects the eye centres in the region (None: no marks)."""
        self._frame_eyes = eyes
        self._redraw()

    def show_faces(self, boxes: list[tuple[float, float, float, float]]) -> None:
        self._faces = list(boxes)
        self._redraw()

    # -- drawing -----------------------------------------------------------------------------
    def _clear(self, items: list[QGraphicsItem]) -> None:
        for it in items:
            if it.scene() is not None:
                self.scene().removeItem(it)
        items.clear()

    def _redraw(self) -> None:
        self._clear(self._overlay)
        sc = self.scene()
        for i, (x0, y0, x1, y1) in enumerate(self._faces):
            it = sc.addRect(QRectF(x0, y0, x1 - x0, y1 - y0), _pen(FACE_COLOUR, 1.5, dashed=True))
            it.setToolTip(f"Proposed face {i + 1}: click to use it")
            self._overlay.append(it)
        self._corners = None
        self.frame_items = [self._frame_mark(x, y) for x, y in self._frame_eyes or ()]
        self._overlay.extend(self.frame_items)
        r = self._region
        if r is None:
            return
        if r.kind == "box" and r.box:
            x0, y0, x1, y1 = r.box
            self._corners = (QPointF(x0, y0), QPointF(x1, y0), QPointF(x1, y1), QPointF(x0, y1))
        elif r.kind == "quad" and r.quad:
            self._corners = tuple(QPointF(*p) for p in r.quad)  # type: ignore[assignment]
        elif r.kind == "eyes" and r.eyes:
            for x, y in r.eyes:
                self._overlay.append(self._marker(QPointF(x, y)))
            try:
                from core.workbench.session import faces_module

                faces = faces_module()
                if faces is not None:
                    x0, y0, x1, y1 = faces.canonical_box_for_eyes(*r.eyes)
                    self._overlay.append(sc.addRect(QRectF(x0, y0, x1 - x0, y1 - y0), _pen(REGION_COLOUR)))
            except ValueError:
                pass
        if self._corners:
            self._overlay.append(sc.addPolygon(QPolygonF(list(self._corners)), _pen(REGION_COLOUR, 2)))
            tl, tr, br, bl = self._corners
            last = len(self._edges) - 1
            for i, b in enumerate(self._edges):
                if (i == 0 and b == 0.0) or (i == last and b == 1.0):
                    continue  # an outer edge on the region's own side
                top, bottom = _lerp(tl, tr, b), _lerp(bl, br, b)
                line = sc.addLine(top.x(), top.y(), bottom.x(), bottom.y(), _pen(CELL_COLOUR, 2))
                self._overlay.append(line)

    def _frame_mark(self, x: float, y: float) -> QGraphicsItem:
        """A cross where the model's face frame puts an eye centre (it scales with the region)."""
        r = max(0.75, 5 / max(self.zoom(), 0.01))
        path = QPainterPath()
        path.moveTo(x - r, y)
        path.lineTo(x + r, y)
        path.moveTo(x, y - r)
        path.lineTo(x, y + r)
        it = self.scene().addPath(path, _pen(FRAME_COLOUR, 1.5))
        it.setToolTip("Where the face model expects this eye centre (its face frame): box the face so the eyes "
                      "fall here, or click the eyes (E)")
        return it

    def _marker(self, p: QPointF) -> QGraphicsEllipseItem:
        r = max(0.6, 4 / max(self.zoom(), 0.01))
        it = self.scene().addEllipse(QRectF(p.x() - r, p.y() - r, 2 * r, 2 * r), _pen(QColor(255, 80, 80), 2),
                                     QBrush(QColor(255, 80, 80, 120)))
        return it

    # -- mouse ---------------------------------------------------------------------------------
    def _scene_pos(self, event: QMouseEvent) -> QPointF:
        return self.mapToScene(event.position().toPoint())

    def _cell_at(self, p: QPointF) -> int | None:
        if not self._corners or len(self._edges) < 2:
            return None
        tl, tr, br, bl = self._corners
        tol = GRAB_PX / max(self.zoom(), 0.01)
        near = [(_dist_to_segment(p, _lerp(tl, tr, b), _lerp(bl, br, b)), i) for i, b in enumerate(self._edges)]
        d, i = min(near)
        return i if d <= tol else None

    def _fraction_along(self, p: QPointF) -> float:
        tl, tr, br, bl = self._corners  # type: ignore[misc]
        left, right = _lerp(tl, bl, 0.5), _lerp(tr, br, 0.5)
        dx, dy = right.x() - left.x(), right.y() - left.y()
        t = ((p.x() - left.x()) * dx + (p.y() - left.y()) * dy) / max(1e-9, dx * dx + dy * dy)
        return min(1.0, max(0.0, t))

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt override
        if event.button() == Qt.MouseButton.MiddleButton:
            self._pan_from = event.position().toPoint()
            return
        if event.button() != Qt.MouseButton.LeftButton or self.mode == "pan":
            super().mousePressEvent(event)
            return
        p = self._scene_pos(event)
        if self.mode == "select":
            self._drag_cell = self._cell_at(p)
            self._press = p
            return
        self._points.append(p)
        self._temp.append(self._marker(p))
        need = 2 if self.mode == "eyes" else 4
        if len(self._points) == need:
            pts = [(q.x(), q.y()) for q in self._points]
            if self.mode == "eyes":
                left, right = sorted(pts[:2])
                if math.dist(left, right) < 1:
                    self.set_mode("eyes")
                    return
                region = Region("eyes", eyes=(left, right))
            else:
                region = Region("quad", quad=tuple(pts))  # type: ignore[arg-type]
            self.set_mode("select")
            self.region_picked.emit(region)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt override
        if self._pan_from is not None:
            d = event.position().toPoint() - self._pan_from
            self._pan_from = event.position().toPoint()
            self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() - d.x())
            self.verticalScrollBar().setValue(self.verticalScrollBar().value() - d.y())
            return
        if self.mode == "select" and self._press is not None:
            p = self._scene_pos(event)
            if self._drag_cell is not None:
                i, e = self._drag_cell, self._edges
                lo = e[i - 1] + MIN_CELL if i > 0 else 0.0
                hi = e[i + 1] - MIN_CELL if i + 1 < len(e) else 1.0
                e[i] = min(hi, max(lo, self._fraction_along(p)))
                self._redraw()  # live, as it is dragged
                return
            self._clear(self._temp)
            r = _snapped(self._press, p)
            self._temp.append(self.scene().addRect(r, _pen(REGION_COLOUR, 1.5, dashed=True)))
            return
        if self.mode == "select":
            cursor = Qt.CursorShape.SizeHorCursor if self._cell_at(self._scene_pos(event)) is not None \
                else Qt.CursorShape.CrossCursor
            self.viewport().setCursor(cursor)
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt override
        if event.button() == Qt.MouseButton.MiddleButton:
            self._pan_from = None
            return
        if self.mode != "select" or self._press is None or event.button() != Qt.MouseButton.LeftButton:
            super().mouseReleaseEvent(event)
            return
        p, start = self._scene_pos(event), self._press
        self._press = None
        self._clear(self._temp)
        if self._drag_cell is not None:
            self._drag_cell = None
            self.cells_moved.emit(list(self._edges))
            return
        r = _snapped(start, p)
        moved = abs(p.x() - start.x()) > 0.5 or abs(p.y() - start.y()) > 0.5
        if moved and r.width() >= 1 and r.height() >= 1:
            self.region_picked.emit(Region.from_box(r.left(), r.top(), r.right(), r.bottom()))
            return
        for i, (x0, y0, x1, y1) in enumerate(self._faces):
            if x0 <= p.x() <= x1 and y0 <= p.y() <= y1:
                self.face_clicked.emit(i)
                return


def _snapped(a: QPointF, b: QPointF) -> QRectF:
    """The rectangle between two points, snapped outwards to whole pixels."""
    x0, x1 = sorted((a.x(), b.x()))
    y0, y1 = sorted((a.y(), b.y()))
    x0, y0, x1, y1 = math.floor(x0), math.floor(y0), math.ceil(x1), math.ceil(y1)
    return QRectF(x0, y0, x1 - x0, y1 - y0)


def _dist_to_segment(p: QPointF, a: QPointF, b: QPointF) -> float:
    dx, dy = b.x() - a.x(), b.y() - a.y()
    t = ((p.x() - a.x()) * dx + (p.y() - a.y()) * dy) / max(1e-9, dx * dx + dy * dy)
    t = min(1.0, max(0.0, t))
    return math.hypot(p.x() - (a.x() + t * dx), p.y() - (a.y() + t * dy))
