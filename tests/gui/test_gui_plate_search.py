"""The plate search dock: registry loading and searching in the worker, results in the tables."""

from __future__ import annotations

from pathlib import Path

import torch
from PySide6.QtCore import Qt

from tests.gui.helpers import WAIT_MS, drag, generate
from varsr_gui.plate_search_panel import NO_CELLS, PlateSearchDock
from varsr_gui.workers import TaskRunner


def test_dock_loads_registry_and_searches(qtbot, tmp_path: Path):
    runner = TaskRunner()
    cells: list[list[torch.Tensor]] = []
    dock = PlateSearchDock(runner, lambda: cells)
    qtbot.addWidget(dock)
    dock.search()
    assert dock.status.text() == NO_CELLS
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"\x00\x01garbage")
    dock.load_registry_file(bad)
    qtbot.waitUntil(lambda: "not loaded" in dock.registry_label.text(), timeout=WAIT_MS)
    good = tmp_path / "reg.csv"
    good.write_text("plate,owner\nAB1,x\nZZZ,y\nAB12,z\n", encoding="utf-8")
    dock.load_registry_file(good)
    qtbot.waitUntil(lambda: dock.registry is not None, timeout=WAIT_MS)
    assert "3 records" in dock.registry_label.text()
    torch.manual_seed(0)
    cells.extend([list(torch.rand(2, 1, 16, 8)) for _ in range(3)])
    dock.pattern.setText("??[0123456789]")
    qtbot.mouseClick(dock.search_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dock.result is not None and not runner.busy, timeout=WAIT_MS)
    assert dock.strings_table.rowCount() == 10 and dock.search_button.isEnabled()
    assert all(dock.strings_table.item(r, 1).text()[-1].isdigit() for r in range(10))
    kinds = {dock.matches_table.item(r, 0).text() for r in range(dock.matches_table.rowCount())}
    assert "ranked" in kinds and "Positions: 1:" in dock.positions_label.text()
    # each position's top classes, entropy and a plain verdict; random cells read as unreliable
    res = dock.result
    assert dock.positions_table.rowCount() == len(res.positions) == 3
    verdicts = [dock.positions_table.item(r, 5).text() for r in range(3)]
    assert verdicts == ["unreliable" if p.unreliable else "clear" for p in res.positions]
    assert ("UNRELIABLE READING" in dock.positions_label.text()) == any(p.unreliable for p in res.positions)
    assert dock.positions_table.item(0, 1).text().startswith(res.positions[0].best)
    assert runner.shutdown()


def test_window_reads_the_selected_plate_row(make_window, qtbot, gui_models: Path, evidence_png: Path):
    w = make_window(gui_models)
    menus = [a.menu() for a in w.menuBar().actions() if a.menu() is not None]
    assert any(w.plate_dock.toggleViewAction() in m.actions() for m in menus)
    w.plate_dock.search()
    assert w.plate_dock.status.text() == NO_CELLS
    w.open_path(evidence_png)
    w.input_panel.domain.setCurrentIndex(w.input_panel.domain.findData("plate"))
    w.input_panel.cells.setValue(3)
    drag(w.view, (6, 10), (30, 18))
    ids = generate(qtbot, w, 4)
    w.grid.select(ids[0])
    w.plate_dock.search()
    qtbot.waitUntil(lambda: w.plate_dock.result is not None and not w.runner.busy, timeout=WAIT_MS)
    assert w.plate_dock.result.reading.length == 3 and w.plate_dock.result.reading.n_candidates == [4, 4, 4]
