"""A plate or digit row's cells in the window: edges dragged in the evidence view, Fit cells (the plate
reader's search of the edges and polarity, in a worker) and the row's polarity, each an undoable step.

The session holds the cells (:meth:`core.workbench.session.Session.cell_geometry`); this mixin of
:class:`~varsr_gui.main_window.MainWindow` draws them, changes them through the session (so a case logs each
change) and puts every change of the cells within one domain on the window's undo stack.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from PySide6.QtWidgets import QCheckBox, QFormLayout, QHBoxLayout, QPushButton, QWidget

from core.workbench.cell_geometry import CellFit, CellGeometry, fit_cells
from varsr_gui.undo import _Applied


class CellsCommand(_Applied):
    """The row's cells (edges and polarity) before and after one change."""

    def __init__(self, window: CellEditing, text: str, old: CellGeometry, new: CellGeometry) -> None:
        self.old, self.new = old, new
        super().__init__(text, lambda forward: window.apply_cells(new if forward else old))


def _describe(old: CellGeometry, new: CellGeometry) -> str:
    if old.n != new.n:
        return f"Set {new.n} characters"
    if old.edges == new.edges:
        return "Invert the row (light on dark)" if new.inverted else "Read the row as it is (dark on light)"
    moved = [i for i, (a, b) in enumerate(zip(old.edges, new.edges, strict=True)) if a != b]
    return "Move a cell edge" if len(moved) == 1 else "Move the cell edges"


class CellEditing:
    """The row's cells: see the module docstring (a mixin of the main window)."""

    def init_cell_editing(self) -> None:
        """Add Fit cells and the polarity beside the number of characters; draw and record the cells."""
        s = self.session
        self._cells_state: tuple[str, CellGeometry] = (s.domain, s.cell_geometry())
        self._cells_applying = False
        self._cells_text: str | None = None
        ip = self.input_panel
        self.fit_cells_button = QPushButton("Fit cells")
        self.fit_cells_button.setToolTip("Let the plate reader place the cell edges (and choose the polarity) where "
                                         "it is surest of the characters; undo with Ctrl+Z. Drag any yellow edge "
                                         "to correct it.")
        self.light_on_dark = QCheckBox("Light on dark")
        self.light_on_dark.setToolTip("The characters are lighter than the plate: the row is inverted before the "
                                      "model (recorded with every candidate)")
        self._cells_row: QWidget | None = None  # a widget, not a layout: hidden, its form row takes no room
        form = ip.cells.parentWidget().layout()
        if isinstance(form, QFormLayout):
            row, role = form.getWidgetPosition(ip.cells)
            form.removeWidget(ip.cells)
            self._cells_row = QWidget()
            box = QHBoxLayout(self._cells_row)
            box.setContentsMargins(0, 0, 0, 0)
            for wdg in (ip.cells, self.fit_cells_button, self.light_on_dark):
                box.addWidget(wdg)
            box.addStretch(1)
            form.setWidget(row, role, self._cells_row)
        self.fit_cells_button.clicked.connect(self.fit_cells)
        self.light_on_dark.toggled.connect(self.set_light_on_dark)
        self.view.cells_moved.connect(self.move_cell_edges)
        ev = s.events
        ev.settings_changed.connect(self._on_cells)  # after the window's own redraw
        ev.region_changed.connect(lambda _r: self._show_cells())
        self._on_cells()

    # -- changes ----------------------------------------------------------------------------------
    def move_cell_edges(self, edges: list[float]) -> None:
        """The view's edges after a drag (all ``n + 1``)."""
        s = self.session
        if len(edges) == s.n_cells + 1:
            self._set_cells(CellGeometry(tuple(edges), s.cell_inverted), None)

    def set_light_on_dark(self, on: bool) -> None:
        g = self.session.cell_geometry()
        if g.inverted != bool(on):
            self._set_cells(CellGeometry(g.edges, bool(on)), None)

    def fit_cells(self) -> None:
        """Search the boxed row's cell edges and polarity with the plate reader, in a worker."""
        s = self.session
        if s.domain == "face":
            self.show_message("Fit cells is for a plate or digit row: choose Licence plate (or Digits), box the "
                              "characters and give their number.", error=False)
            return
        crop = s.crop_or_none()
        if crop is None or s.region is None:
            self.show_message("Box the row of characters first (drag a rectangle around them), then Fit cells.",
                              error=False)
            return
        n = s.n_cells
        key = (s.evidence, s.region, n, s.domain)
        self.statusBar().showMessage(f"Fitting {n} cells to the characters\u2026")
        self.runner.submit("Fit cells", lambda ctx: fit_cells(crop, n), partial(self._cells_fitted, key),
                           self.show_message)

    def _cells_fitted(self, key: tuple[Any, ...], fit: CellFit) -> None:
        s = self.session
        if key != (s.evidence, s.region, s.n_cells, s.domain):
            self.statusBar().showMessage("The row changed while its cells were fitted: press Fit cells again", 10000)
            return
        self._set_cells(fit.geometry, "Fit the cells")
        how = " and inverted it (light characters on a dark plate)" if fit.geometry.inverted else ""
        check = (f" At {fit.px_per_char:.1f} px per character its guess of the polarity is often wrong: check "
                 "Light on dark against the plate's colours." if fit.polarity_unsure else "")
        self.statusBar().showMessage(f"Fit cells: the reader placed the edges{how} (its confidence "
                                     f"{fit.score:.1f} against {fit.equal_score:.1f} for equal cells); drag an "
                                     f"edge to correct it, Ctrl+Z to undo.{check}", 20000)

    def _set_cells(self, g: CellGeometry, text: str | None) -> None:
        self._cells_text = text
        try:
            self.session.set_cell_geometry(g)
        finally:
            self._cells_text = None

    def apply_cells(self, g: CellGeometry) -> None:
        """Undo / redo: set the cells without recording a new step."""
        self._cells_applying = True
        try:
            self.session.set_cell_geometry(g)
        finally:
            self._cells_applying = False

    # -- drawing and recording ----------------------------------------------------------------------
    def _show_cells(self) -> None:
        s = self.session
        self.view.show_cells(s.cell_edges if s.domain != "face" else None)

    def _on_cells(self) -> None:
        s = self.session
        rows = s.domain != "face"
        self._show_cells()
        for wdg in (self._cells_row, self.fit_cells_button, self.light_on_dark):
            if wdg is not None:
                wdg.setVisible(rows)
        self.light_on_dark.blockSignals(True)
        self.light_on_dark.setChecked(s.cell_inverted)
        self.light_on_dark.blockSignals(False)
        (domain, old), new = self._cells_state, s.cell_geometry()
        self._cells_state = (s.domain, new)
        if self._cells_applying or domain != s.domain or old == new or not rows:
            return
        self.undo.stack.push(CellsCommand(self, self._cells_text or _describe(old, new), old, new))
