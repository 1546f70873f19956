"""The investigator app end to end, offscreen, with tiny untrained bundles (pytest-qt)."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image
from PySide6.QtCore import Qt

import core
import core.workbench.export
from tests.gui.helpers import WAIT_MS, drag, generate


def test_starts_without_models_and_says_which_are_missing(make_window, tmp_path: Path, evidence_png: Path):
    w = make_window(tmp_path / "empty")
    assert w.banner.isVisible() and "not evidence" in w.banner.text()
    assert w.models_label.isVisible()
    assert "No model 'face-8' installed:" in w.models_label.text()
    assert w.open_path(evidence_png)
    w.generate()
    assert "No model 'face-16' installed" in w.message_label.text()  # the whole 48x40 image
    assert not w.runner.busy


def test_open_corrupt_then_good_image(make_window, gui_models: Path, tmp_path: Path, evidence_png: Path):
    w = make_window(gui_models)
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not a jpeg at all")
    assert not w.open_path(bad)
    assert w.message_label.isVisible() and "Could not open the image" in w.message_label.text()
    assert w.session.evidence is None
    before = evidence_png.read_bytes()
    assert w.open_path(evidence_png)
    assert w.session.evidence.image.size == (48, 40) and not w.view.pixmap_item.pixmap().isNull()
    assert evidence_png.read_bytes() == before
    assert not w.open_path(tmp_path / "missing.png")
    assert w.session.evidence.path == evidence_png.resolve()


def test_roi_generate_steer_star_export(make_window, qtbot, gui_models: Path, tmp_path: Path,
                                        evidence_png: Path):
    w = make_window(gui_models)
    w.open_path(evidence_png)
    drag(w.view, (16.5, 10.5), (31.5, 29.5))
    assert w.session.region.box == (16, 10, 32, 30)
    assert "16x20" in w.input_panel.crop_tile.caption.text()
    assert not w.input_panel.lr_tile.image.pixmap().isNull()
    assert w.session.chosen_model() == "face-8"

    ids = generate(qtbot, w, 8)
    assert len(ids) == 8
    item = w.grid.item_for(ids[0])
    assert "agrees" in item.text() and "dB" in item.text() and "not a quality" in item.toolTip()
    assert w.session.current is not None and w.session.current.id == ids[0]
    assert w.compare.panel_count() == 3

    w.grid.select(ids[3])
    assert w.session.current.id == ids[3]
    assert set(w.slider_dock.sliders) == {"mean/Male", "diff/Smiling"}
    w.slider_dock.set_value("mean/Male", 1.5)
    w.slider_dock.flush()
    qtbot.waitUntil(lambda: w.session.preview is not None, timeout=WAIT_MS)
    assert w.session.preview.recipe["sliders"] == {"mean/Male": 1.5}
    assert w.session.preview.recipe["parent"] == ids[3]
    assert w.compare.panel_count() == 4

    w.toggle_star()  # stars the steered candidate (kept into the grid first)
    derived = w.session.shortlist[0].candidate_id
    assert derived not in ids and derived in w.grid.candidate_ids()
    w.grid.select(ids[5])
    w.toggle_star()
    assert [e.candidate_id for e in w.session.shortlist] == [derived, ids[5]]
    assert w.shortlist_dock.ids() == [derived, ids[5]]
    w.shortlist_dock.list.setCurrentRow(1)
    w.shortlist_dock.up.click()
    assert w.shortlist_dock.ids() == [ids[5], derived]
    w.shortlist_dock.list.setCurrentRow(1)
    w.shortlist_dock.note.setPlainText("matches the witness: short hair")
    assert w.session.note(derived) == "matches the witness: short hair"

    out = w.export_to(tmp_path / "export")
    man = json.loads((out / "manifest.json").read_text())
    assert man["notice"] == core.LEAD_NOTICE
    assert [e["recipe"]["id"] for e in man["leads"]] == [ids[5], derived]
    rec = man["leads"][1]["recipe"]
    assert rec["sliders"] == {"mean/Male": 1.5} and rec["parent"] == ids[3] and rec["model"] == "face-8"
    assert man["leads"][1]["note"] == "matches the witness: short hair"
    assert rec["source"]["evidence"]["sha256"] == w.session.evidence.sha256
    for e in man["leads"]:
        assert e["marked"]["raw_size"] == [64, 64] and e["mark"] == core.workbench.export.MARK
        with Image.open(out / e["file"]) as im:
            assert im.size == tuple(e["marked"]["marked_size"]) and im.text["Description"] == core.LEAD_NOTICE
            assert im.width >= 64 and im.height > 64 * e["marked"]["scale"]  # the mark bands
        assert "unmarked_copy" not in e
    assert not list(out.glob("*UNMARKED*")) and (out / "contact_sheet.png").is_file()
    assert w.export_to(out) is None and "not empty" in w.message_label.text()


def test_more_like_this_and_reference(make_window, qtbot, gui_models: Path, evidence_png: Path):
    w = make_window(gui_models)
    w.open_path(evidence_png)
    ids = generate(qtbot, w, 4)
    w.grid.select(ids[1])
    w.input_panel.n.setValue(4)
    w.more_like_this()
    qtbot.waitUntil(lambda: len(w.grid.candidate_ids()) == 8, timeout=WAIT_MS)
    near = w.session.candidates[w.grid.candidate_ids()[-1]]
    assert near.recipe["kind"] == "more-like-this" and near.recipe["parent"] == ids[1]
    assert near.recipe["temperature"] < 1
    w.reference_transfer(evidence_png)
    qtbot.waitUntil(lambda: len(w.grid.candidate_ids()) == 9, timeout=WAIT_MS)
    assert w.session.candidates[w.grid.candidate_ids()[-1]].recipe["kind"] == "reference"


def test_plate_cells_make_whole_plates(make_window, qtbot, gui_models: Path, evidence_png: Path):
    w = make_window(gui_models)
    w.open_path(evidence_png)
    w.input_panel.domain.setCurrentIndex(w.input_panel.domain.findData("plate"))
    assert w.session.domain == "plate" and w.session.n_cells == 7
    w.input_panel.cells.setValue(3)
    drag(w.view, (6, 10), (30, 18))
    assert len(w.session.cells()) == 3 and w.session.chosen_model() == "plate-char"
    ids = generate(qtbot, w, 4)
    plate = w.session.candidates[ids[2]]
    assert plate.image.shape == (1, 16, 24) and plate.recipe["choices"] == [2, 2, 2]
    assert w.cell_chooser.isVisible()
    w.grid.select(ids[0])
    from PySide6.QtWidgets import QSpinBox

    spins = w.cell_chooser.findChildren(QSpinBox)
    spins[1].setValue(3)
    assert w.session.preview is not None and w.session.preview.recipe["choices"] == [0, 3, 0]


def test_keyboard_navigation_and_star(make_window, qtbot, gui_models: Path, evidence_png: Path):
    w = make_window(gui_models)
    w.open_path(evidence_png)
    ids = generate(qtbot, w, 4)
    w.activateWindow()
    qtbot.waitUntil(w.isActiveWindow, timeout=2000)
    w.grid.setFocus()
    qtbot.keyClick(w.grid, Qt.Key.Key_BracketRight)
    assert w.session.current.id == ids[1]
    qtbot.keyClick(w.grid, Qt.Key.Key_S)
    assert w.session.is_starred(ids[1])
    assert "\u2605" in w.compare.captions[2].text()


def test_settings_remembered(make_window, gui_models: Path, tmp_path: Path):
    ini = tmp_path / "remember.ini"
    w = make_window(gui_models, ini)
    w.input_panel.n.setValue(32)
    w.input_panel.temperature.setValue(0.7)
    w.close()
    w2 = make_window(gui_models, ini)
    assert w2.input_panel.n.value() == 32 and abs(w2.input_panel.temperature.value() - 0.7) < 1e-9


def test_select_menu_shows_the_active_mode(make_window, gui_models) -> None:
    w = make_window(gui_models)
    acts = w.menu_actions
    assert acts["box"].isChecked() and not acts["eyes"].isChecked()
    w.view.set_mode("eyes")
    assert acts["eyes"].isChecked() and not acts["box"].isChecked()
    acts["pan"].trigger()
    assert w.view.mode == "pan" and acts["pan"].isChecked() and not acts["eyes"].isChecked()
