"""Issue 14, the window side, through the real widgets: one current candidate after "Compare two", dock sizes
per domain (remembered), the encoder's out-of-distribution warning, the face frame and the eye-shift
sensitivity, and huge images decoded in a worker."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt

from tests.gui.helpers import WAIT_MS, generate


def test_compare_two_makes_the_first_lead_the_one_highlighted_and_steered(make_window, qtbot, gui_models: Path,
                                                                          evidence_png: Path):
    w = make_window(gui_models)
    assert w.open_path(evidence_png)
    ids = generate(qtbot, w, 4)
    w.grid.select(ids[0])
    for cid in ids[2:]:
        w.session.star(cid)
    lst = w.shortlist_dock.list
    for i in range(lst.count()):
        lst.item(i).setSelected(True)
    qtbot.mouseClick(w.shortlist_dock.compare, Qt.MouseButton.LeftButton)
    assert w.session.current.id == ids[2] and w.grid.current_id() == ids[2]  # one current candidate
    assert ids[2] in w.slider_dock.target.text()
    assert ids[2] in w.compare.captions[1].text() and ids[3] in w.compare.captions[2].text()
    w.slider_dock.set_value("diff/Smiling", 1.0)
    w.slider_dock.flush()
    qtbot.waitUntil(lambda: w.session.preview is not None, timeout=WAIT_MS)
    assert w.session.preview.recipe["parent"] == ids[2]  # the sliders steer the highlighted one

    lst.setCurrentRow(1)  # a lead chosen in the shortlist is the one the grid highlights too
    assert w.session.current.id == ids[3] and w.grid.current_id() == ids[3]


def _wait_layout(qtbot) -> None:
    qtbot.wait(30)


def test_docks_have_room_per_domain_and_remember_the_analysts_sizes(make_window, qtbot, gui_models: Path,
                                                                    tmp_path: Path):
    ini = tmp_path / "docks.ini"
    w = make_window(gui_models, ini)
    _wait_layout(qtbot)
    sl = w.shortlist_dock.list
    assert sl.viewport().height() >= 3 * (sl.iconSize().height() + 6)  # several leads in view, not 1.5
    table = w.face_search_dock.table
    w.face_search_dock.raise_()
    _wait_layout(qtbot)
    assert table.viewport().height() > 2 * table.verticalHeader().defaultSectionSize()

    panel = w.input_panel
    panel.domain.setCurrentIndex(panel.domain.findData("plate"))
    _wait_layout(qtbot)
    column = w.slider_dock.height() + w.shortlist_dock.height()
    assert w.slider_dock.height() < 0.2 * column  # no sliders for plates: a slim strip, not half the column
    w.plate_dock.raise_()
    _wait_layout(qtbot)
    for t in (w.plate_dock.strings_table, w.plate_dock.matches_table):
        assert t.viewport().height() > 2 * t.verticalHeader().defaultSectionSize()

    w.resizeDocks([w.slider_dock, w.shortlist_dock], [500, 300], Qt.Orientation.Vertical)  # the analyst's own
    _wait_layout(qtbot)
    mine = w.slider_dock.height()
    assert mine > 0.4 * column
    panel.domain.setCurrentIndex(panel.domain.findData("face"))
    _wait_layout(qtbot)
    assert abs(w.slider_dock.height() - mine) > 40  # the face layout, not the plate one
    panel.domain.setCurrentIndex(panel.domain.findData("plate"))
    _wait_layout(qtbot)
    assert abs(w.slider_dock.height() - mine) <= 4  # the plate layout is remembered
    w.close()
    w2 = make_window(gui_models, ini)  # and kept across runs (offscreen, the restored window's size differs)
    _wait_layout(qtbot)
    assert w2.session.domain == "plate"
    assert w2.slider_dock.height() > 0.4 * (w2.slider_dock.height() + w2.shortlist_dock.height())
