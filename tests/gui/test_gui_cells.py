"""A plate row's cells through the real window (#13): edges dragged (the outer ones too), redrawn live,
undone and redone; Fit cells moves the edges of an unevenly spaced row in the worker; the polarity."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

from core.workbench.cell_geometry import CellGeometry
from tests.gui.helpers import WAIT_MS, drag

MARGIN = 4


def _send(view, kind: QEvent.Type, at: tuple[float, float], button: Qt.MouseButton,
          buttons: Qt.MouseButton) -> None:
    vp = view.viewport()
    p = QPointF(view.mapFromScene(QPointF(*at)))
    QApplication.sendEvent(vp, QMouseEvent(kind, p, vp.mapToGlobal(p), button, buttons,
                                           Qt.KeyboardModifier.NoModifier))


def _plate_window(make_window, gui_models: Path, row: np.ndarray, path: Path, n: int):
    """The window with ``row`` (grey) opened as evidence on a margin, the plate domain, ``n`` characters
    and the row boxed with a real drag; returns the window and the box."""
    h, w = row.shape
    canvas = Image.new("RGB", (w + 2 * MARGIN, h + 2 * MARGIN), (int(np.median(row)),) * 3)
    canvas.paste(Image.fromarray(row).convert("RGB"), (MARGIN, MARGIN))
    canvas.save(path)
    win = make_window(gui_models)
    win.open_path(path)
    ip = win.input_panel
    ip.domain.setCurrentIndex(ip.domain.findData("plate"))
    ip.cells.setValue(n)
    box = (MARGIN, MARGIN, MARGIN + w, MARGIN + h)
    drag(win.view, box[:2], box[2:])
    assert win.session.region is not None and win.session.region.box == box
    return win, box


def _x(box: tuple[int, int, int, int], f: float) -> float:
    return box[0] + f * (box[2] - box[0])


def test_drag_a_cell_edge_live_then_undo_and_redo(make_window, qtbot, gui_models: Path, tmp_path: Path):
    row = np.full((16, 60), 230, np.uint8)
    row[3:13, 4:8] = 20  # a few dark strokes: what is drawn does not matter here
    w, box = _plate_window(make_window, gui_models, row, tmp_path / "row.png", 4)
    s, view = w.session, w.view
    equal = list(CellGeometry.equal(4).edges)
    assert s.cell_edges == equal and view.cell_edges() == equal
    assert w.fit_cells_button.isVisible() and w.light_on_dark.isVisible()
    undo, redo = w.menu_actions["undo"], w.menu_actions["redo"]
    depth = w.undo.stack.count()

    # an inner edge: redrawn while the mouse moves, set in the session when it is released
    y = (box[1] + box[3]) / 2
    left, none = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton
    _send(view, QEvent.Type.MouseButtonPress, (_x(box, 0.5), y), left, left)
    _send(view, QEvent.Type.MouseMove, (_x(box, 0.5) + 6, y), none, left)
    assert view.cell_edges()[2] == pytest.approx(0.6, abs=0.02) and s.cell_edges == equal  # live, not yet set
    _send(view, QEvent.Type.MouseButtonRelease, (_x(box, 0.5) + 6, y), left, none)
    moved = s.cell_edges
    assert moved[2] == pytest.approx(0.6, abs=0.02) and moved[:2] + moved[3:] == equal[:2] + equal[3:]
    assert s.region is not None and s.region.box == box  # the drag moved an edge, not the box
    assert w.undo.stack.count() == depth + 1 and w.undo.stack.undoText() == "Move a cell edge"
    assert s.source()["cells"]["bounds"] == moved[1:-1]

    # the outer left edge
    drag(view, (_x(box, 0.0), y), (_x(box, 0.0) + 3, y))
    assert s.cell_edges[0] == pytest.approx(0.05, abs=0.01) and s.cell_edges[1:] == moved[1:]
    assert s.source()["cells"]["edges"] == s.cell_edges

    undo.trigger()
    assert s.cell_edges == moved and view.cell_edges() == moved
    undo.trigger()
    assert s.cell_edges == equal and view.cell_edges() == equal
    redo.trigger()
    assert s.cell_edges == moved

    # the polarity is one more undoable step, and what the model sees is inverted
    w.light_on_dark.setChecked(True)
    assert s.cell_inverted and s.source()["cells"]["inverted"] is True
    undo.trigger()
    assert not s.cell_inverted and not w.light_on_dark.isChecked() and s.cell_edges == moved


def test_fit_cells_places_the_edges_of_an_unevenly_spaced_row(make_window, qtbot, gui_models: Path,
                                                               tmp_path: Path):
    from tests.test_plates_eval import _plate, _row

    row = _row(_plate("AB12CD7", spacing=0.1, jitter=0.15, seed=4))
    row = np.pad(row, ((0, 0), (row.shape[1] // 14, 0)), constant_values=int(np.median(row)))  # off by half a cell
    w, box = _plate_window(make_window, gui_models, row, tmp_path / "uneven.png", 7)
    s = w.session
    equal = list(CellGeometry.equal(7).edges)
    assert s.cell_edges == equal
    qtbot.mouseClick(w.fit_cells_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: s.cell_edges != equal and not w.runner.busy, timeout=WAIT_MS)
    fitted = s.cell_edges
    assert len(fitted) == 8 and fitted[0] > 0.02  # the empty left margin is trimmed
    assert all(b - a > 0.05 for a, b in zip(fitted[:-1], fitted[1:], strict=True))
    assert not s.cell_inverted and not w.light_on_dark.isChecked()  # dark characters on a light plate
    assert w.view.cell_edges() == fitted and "Fit cells" in w.statusBar().currentMessage()
    assert w.undo.stack.undoText() == "Fit the cells"
    assert s.source()["cells"]["edges"] == fitted
    w.menu_actions["undo"].trigger()
    assert s.cell_edges == equal
    w.menu_actions["redo"].trigger()
    assert s.cell_edges == fitted


def test_fit_cells_inverts_a_light_on_dark_row(make_window, qtbot, gui_models: Path, tmp_path: Path):
    from tests.test_plates_eval import _plate, _row

    row = _row(_plate("KX4821", light=True))
    w, _box = _plate_window(make_window, gui_models, row, tmp_path / "light.png", 6)
    s = w.session
    w.menu_actions["fit_cells"].trigger()
    qtbot.waitUntil(lambda: s.cell_inverted and not w.runner.busy, timeout=WAIT_MS)
    assert w.light_on_dark.isChecked() and s.source()["cells"]["inverted"] is True
    lrs, _notes = s.prepare(s.installed[s.chosen_model()])
    assert float(np.mean([t.mean().item() for t in lrs])) > 0.5  # the model sees dark characters on light


def test_fit_cells_on_a_tiny_row_asks_to_check_the_polarity(make_window, qtbot, gui_models: Path, tmp_path: Path):
    from tests.test_plates_eval import _plate, _row

    big = Image.fromarray(_row(_plate("KX4821")))
    row = np.asarray(big.resize((12, 4), Image.Resampling.BOX))  # 2x4 px per character
    w, _box = _plate_window(make_window, gui_models, row, tmp_path / "tiny.png", 6)
    w.menu_actions["fit_cells"].trigger()
    qtbot.waitUntil(lambda: "Fit cells:" in w.statusBar().currentMessage() and not w.runner.busy, timeout=WAIT_MS)
    message = w.statusBar().currentMessage()
    assert "2.0 px per character" in message and "check Light on dark" in message
