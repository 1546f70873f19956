"""Side-by-side views with synchronised zoom and pan (input, bicubic, candidates)."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from core.workbench.export import MARK
from varsr_gui.qt_images import scaled_nearest
from varsr_gui.zoom_view import ZoomView

MAX_PANELS = 4


@dataclass
class Panel:
    caption: str
    image: QImage
    synthetic: bool = False


class CompareView(QWidget):
    """Up to four images at one common size; zooming or panning one moves them all."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        self.smooth = QCheckBox("Smooth")
        self.smooth.setToolTip("Enlarge smoothly instead of showing each pixel as a block (nearest neighbour)")
        self.smooth.toggled.connect(lambda on: [v.set_smooth(on) for v in self.views])
        bar = QHBoxLayout()
        bar.addStretch(1)
        bar.addWidget(self.smooth)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        outer.addLayout(row, 1)
        outer.addLayout(bar)
        self.views: list[ZoomView] = []
        self.captions: list[QLabel] = []
        #: one widget per panel, hidden when unused so that an empty slot takes no width
        self.columns: list[QWidget] = []
        self._syncing = False
        for _ in range(MAX_PANELS):
            column = QWidget()
            col = QVBoxLayout(column)
            col.setContentsMargins(0, 0, 0, 0)
            cap = QLabel()
            cap.setWordWrap(True)
            cap.setAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
            cap.setFixedHeight(6 * cap.fontMetrics().height())
            view = ZoomView()
            view.setMinimumSize(120, 120)
            view.zoom_changed.connect(lambda z, v=view: self._sync_zoom(v, z))
            view.horizontalScrollBar().valueChanged.connect(lambda _v, v=view: self._sync_scroll(v))
            view.verticalScrollBar().valueChanged.connect(lambda _v, v=view: self._sync_scroll(v))
            col.addWidget(cap)
            col.addWidget(view, 1)
            row.addWidget(column, 1)
            self.columns.append(column)
            self.views.append(view)
            self.captions.append(cap)
        self.set_panels([])

    def set_panels(self, panels: list[Panel]) -> None:
        """Show ``panels``; smaller images are enlarged (nearest) to the largest one's size."""
        w = max((p.image.width() for p in panels), default=1)
        h = max((p.image.height() for p in panels), default=1)
        first = not any(v.isVisible() for v in self.views[: len(panels)])
        for i, (view, cap) in enumerate(zip(self.views, self.captions, strict=True)):
            visible = i < len(panels)
            self.columns[i].setVisible(visible)
            view.setVisible(visible)
            cap.setVisible(visible)
            if not visible:
                continue
            p = panels[i]
            img = p.image if (p.image.width(), p.image.height()) == (w, h) else scaled_nearest(p.image, w, h)
            view.set_image(img, fit=False)
            cap.setText(p.caption + (f"<br><b style='color:#e67e22'>{MARK}</b>" if p.synthetic else ""))
        if panels and (first or self.views[0].auto_fit):
            self.fit()

    def fit(self) -> None:
        self.views[0].fit()

    def panel_count(self) -> int:
        return sum(1 for v in self.views if not v.isHidden())

    def _sync_zoom(self, src: ZoomView, z: float) -> None:
        if self._syncing:
            return
        self._syncing = True
        try:
            for v in self.views:
                if v is not src:
                    v.auto_fit = src.auto_fit
                    v.set_zoom(z)
            self._sync_scroll(src, force=True)
        finally:
            self._syncing = False

    def _sync_scroll(self, src: ZoomView, force: bool = False) -> None:
        if self._syncing and not force:
            return
        was, self._syncing = self._syncing, True
        try:
            for v in self.views:
                if v is not src:
                    v.horizontalScrollBar().setValue(src.horizontalScrollBar().value())
                    v.verticalScrollBar().setValue(src.verticalScrollBar().value())
        finally:
            self._syncing = was
