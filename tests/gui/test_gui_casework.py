"""Issue 14, the app for real casework, through the real widgets: the model never enlarges the crop,
work is never lost, honest scores, a readable layout, true messages, the in-app guide."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from tests.gui.helpers import WAIT_MS, drag


@pytest.fixture(scope="module")
def two_face_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny untrained face-8 and face-16 bundles and a plate-char one."""
    from core.model.bundle import save_bundle
    from core.model.varsr import VarSR
    from tests.conftest import tiny_config

    root = tmp_path_factory.mktemp("models2")
    torch.manual_seed(0)
    for name in ("face-8", "face-16", "plate-char"):
        save_bundle(VarSR(tiny_config(name)), root / name)
    return root


def _frame(tmp_path: Path, size: tuple[int, int] = (64, 48)) -> Path:
    img = Image.new("RGB", size, (70, 90, 110))
    img.paste((220, 180, 150), (20, 10, 40, 34))
    p = tmp_path / "frame.png"
    img.save(p)
    return p


def test_auto_model_never_enlarges_the_crop_and_keeps_a_manual_choice(make_window, two_face_models: Path,
                                                                      tmp_path: Path):
    w = make_window(two_face_models)
    assert w.open_path(_frame(tmp_path))
    drag(w.view, (20, 10), (33, 23))  # a 13x13 face crop
    assert w.session.crop().size == (13, 13)
    panel = w.input_panel
    assert panel.model.itemText(0).startswith("Auto: face-8")
    assert w.session.chosen_model() == "face-8"
    assert "face-16 would enlarge it" in panel.model_reason.text()

    drag(w.view, (20, 10), (26, 16))  # 6x6: smaller than every model: the smallest, with a note
    assert w.session.chosen_model() == "face-8"
    assert "smaller than every model's input" in panel.notes.text()

    panel.model.setCurrentIndex(panel.model.findData("face-16"))  # the analyst's own choice
    panel.model.activated.emit(panel.model.currentIndex())
    assert w.session.chosen_model() == "face-16"
    assert "Your choice: face-16" in panel.model_reason.text() and "enlarged" in panel.model_reason.text()
    panel.domain.setCurrentIndex(panel.domain.findData("plate"))
    assert w.session.chosen_model() == "plate-char"
    panel.domain.setCurrentIndex(panel.domain.findData("face"))
    assert w.session.chosen_model() == "face-16"  # kept, not back to Auto
    assert panel.model.currentData() == "face-16"


def test_quit_with_unsaved_work_asks_and_the_title_marks_it(make_window, qtbot, gui_models: Path,
                                                           evidence_png: Path, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    from tests.gui.helpers import generate
    from varsr_gui import main_window

    w = make_window(gui_models)
    assert "[*]" in w.windowTitle() and not w.isWindowModified()
    assert w.open_path(evidence_png)
    generate(qtbot, w, 4)
    qtbot.waitUntil(w.isWindowModified, timeout=WAIT_MS)  # the title shows '*'
    answers = [QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Discard]
    asked: list[str] = []

    class Box(QMessageBox):
        def exec(self) -> int:
            asked.append(self.text())
            return int(answers.pop(0).value)

    monkeypatch.setattr(main_window, "QMessageBox", Box)
    w.confirm_quit = True  # as in the app (the fixture turns it off for pytest-qt's own closing)
    w.close()
    assert asked and "unsaved" in asked[0] and w.isVisible()  # Cancel keeps the window and the work
    w.close()
    assert not w.isVisible() and len(asked) == 2  # Discard closes


def test_undo_redo_region_whole_image_sliders_and_stars(make_window, qtbot, gui_models: Path,
                                                      evidence_png: Path):
    from tests.gui.helpers import generate

    w = make_window(gui_models)
    assert w.open_path(evidence_png)
    drag(w.view, (16, 10), (32, 30))
    box = w.session.region
    assert box is not None
    w.menu_actions["whole_image"].trigger()  # W
    assert w.session.region is None
    w.menu_actions["undo"].trigger()
    assert w.session.region == box
    w.menu_actions["redo"].trigger()
    assert w.session.region is None
    w.menu_actions["undo"].trigger()

    ids = generate(qtbot, w, 4)
    w.grid.select(ids[0])
    key = next(iter(w.slider_dock.sliders))
    w.slider_dock.set_value(key, 1.5)
    w.slider_dock.flush()
    w.menu_actions["reset_sliders"].trigger()  # R
    w.slider_dock.flush()
    assert w.slider_dock.values()[key] == 0
    w.menu_actions["undo"].trigger()
    assert w.slider_dock.values()[key] == 1.5  # R undone

    qtbot.waitUntil(lambda: not w.runner.busy and w.session.preview is not None, timeout=WAIT_MS)
    w.menu_actions["star"].trigger()  # keeps the steered candidate and stars it
    qtbot.waitUntil(lambda: w.session.preview is None and bool(w.session.shortlist), timeout=WAIT_MS)
    starred = [e.candidate_id for e in w.session.shortlist]
    w.menu_actions["undo"].trigger()
    assert not w.session.shortlist
    w.menu_actions["redo"].trigger()
    assert [e.candidate_id for e in w.session.shortlist] == starred


def test_undo_redo_a_note_edit(make_window, qtbot, gui_models: Path, evidence_png: Path, tmp_path: Path):
    """A typed note reaches the session (and the case) when the analyst leaves the editor, as one undoable
    step; undo and redo put the text back in the dock, the session and the case."""
    import json

    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QToolBar

    from tests.gui.helpers import generate

    w = make_window(gui_models)
    assert w.open_path(evidence_png)
    case = w.case_actions.new_case(tmp_path / "case", "Examiner A")
    assert case is not None
    ids = generate(qtbot, w, 4)
    w.grid.select(ids[1])
    w.menu_actions["star"].trigger()
    dock, cid = w.shortlist_dock, ids[1]
    dock.list.setCurrentRow(0)
    note = dock.note
    w.activateWindow()
    note.setFocus()
    qtbot.waitUntil(note.hasFocus)
    qtbot.keyClicks(note, "short hair")
    assert note.toPlainText() == "short hair" and w.session.note(cid) == ""  # not per keystroke
    dock.list.setFocus()  # editing finished
    assert w.session.note(cid) == "short hair" and w.undo.stack.undoText() == f"Edit the note of {cid}"

    note.setFocus()
    qtbot.waitUntil(note.hasFocus)
    qtbot.keyClicks(note, ", smiling")
    save = w.findChild(QToolBar, "main_toolbar").widgetForAction(w.menu_actions["save_case"])
    qtbot.mouseClick(save, Qt.MouseButton.LeftButton)  # a toolbar button takes no focus: the edit ends anyway
    m = json.loads((tmp_path / "case" / "case.json").read_text())
    assert m["shortlist"] == [{"candidate": cid, "note": "short hair, smiling"}]

    w.menu_actions["undo"].trigger()
    assert w.session.note(cid) == "short hair" and note.toPlainText() == "short hair"
    w.menu_actions["undo"].trigger()
    assert w.session.note(cid) == "" and note.toPlainText() == ""
    assert w.undo.stack.redoText() == f"Edit the note of {cid}"
    w.menu_actions["redo"].trigger()
    assert w.session.note(cid) == "short hair" and note.toPlainText() == "short hair"
    assert [e.candidate_id for e in w.session.shortlist] == [cid]  # the star untouched
    qtbot.waitUntil(lambda: w.isWindowModified())  # the case has a step to save
    notes = [e["details"]["note"] for e in case.log.entries() if e["action"] == "note_set"]
    assert "short hair, smiling" in notes and notes[-1] == "short hair"


def test_too_large_image_is_refused_for_its_size(make_window, gui_models: Path, tmp_path: Path, dialogs):
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    big = tmp_path / "huge.png"  # a 12000x9000 header (decoding never starts)
    big.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 12000, 9000, 8, 2, 0, 0, 0))
                    + chunk(b"IEND", b""))
    w = make_window(gui_models)
    assert not w.open_path(big)
    assert dialogs and "too large" in dialogs[-1].text() and "damaged" not in dialogs[-1].text()


def test_help_guide_lists_every_shortcut(make_window, gui_models: Path):
    from PySide6.QtWidgets import QTextBrowser

    from varsr_gui.actions import ITEMS, Action
    from varsr_gui.guide import key_text

    w = make_window(gui_models)
    w.menu_actions["guide"].trigger()
    plain = w.guide_dialog.findChild(QTextBrowser, "guide_text").toPlainText()
    assert "never evidence" in plain and "Generate" in plain
    for spec in ITEMS:
        if isinstance(spec, Action) and spec.key is not None and key_text(spec.key):
            assert key_text(spec.key) in plain, spec.name


def test_case_details_close_save_as_recent_and_asking_before_new_evidence(make_window, qtbot, gui_models: Path,
                                                                         tmp_path: Path, evidence_png: Path,
                                                                         dialogs):
    import json

    w = make_window(gui_models)
    assert w.open_path(evidence_png)
    case = w.case_actions.new_case(tmp_path / "c1", "Examiner A",
                                   {"case_number": "2026-0042", "title": "Robbery", "agency": "Metro PD"})
    assert case is not None and "2026-0042" in w.case_actions.case_label.text()
    m = json.loads((tmp_path / "c1" / "case.json").read_text())
    assert m["details"] == {"case_number": "2026-0042", "title": "Robbery", "agency": "Metro PD"}

    other = tmp_path / "plate.png"
    Image.new("RGB", (30, 12), (9, 9, 9)).save(other)
    before = w.session.evidence.sha256
    assert not w.open_path(other)  # asked (the captured box answers No): not copied into the case
    assert any("Add this image to the case" in b.windowTitle() for b in dialogs)
    assert w.session.evidence.sha256 == before and len(case.originals) == 1

    assert w.case_actions.save_case_as(tmp_path / "c2") is None  # the copy runs in the worker
    qtbot.waitUntil(lambda: w.case_actions.copying is None and w.case_actions.case is not None
                    and w.case_actions.case.folder == tmp_path / "c2", timeout=30000)
    copy = w.case_actions.case
    assert copy.details["title"] == "Robbery" and (tmp_path / "c1" / "case.json").is_file()
    assert w.case_actions.recent_cases()[:2] == [str((tmp_path / "c2").resolve()), str((tmp_path / "c1").resolve())]
    assert w.case_actions.close_case() and w.case_actions.case is None
    assert not w.menu_actions["close_case"].isEnabled()

    old = json.loads((tmp_path / "c1" / "case.json").read_text())  # a case written before the details
    del old["details"]
    (tmp_path / "c1" / "case.json").write_text(json.dumps(old))
    reopened = w.case_actions.open_recent_case(str((tmp_path / "c1").resolve()))
    assert reopened is not None and reopened.details == {}


def test_blank_region_warns_that_no_face_is_there(make_window, qtbot, gui_models: Path, tmp_path: Path):
    from tests.gui.helpers import generate

    wall = tmp_path / "wall.png"
    Image.new("RGB", (40, 40), (128, 128, 128)).save(wall)
    w = make_window(gui_models)
    assert w.open_path(wall)
    generate(qtbot, w, 4)
    qtbot.waitUntil(lambda: "No face found in the region" in w.message_label.text(), timeout=4 * WAIT_MS)
    assert "agrees" in w.compare.captions[2].text() and "quality" not in w.compare.captions[2].text()


def test_sliders_advanced_switch_and_a_flagged_steer(make_window, qtbot, gui_models: Path, evidence_png: Path):
    from tests.gui.helpers import generate

    w = make_window(gui_models)
    assert w.open_path(evidence_png)
    ids = generate(qtbot, w, 4)
    w.grid.select(ids[0])
    dock = w.slider_dock
    assert not dock.advanced.isChecked()
    assert dock.sliders["mean/Male"].isHidden() and not dock.sliders["diff/Smiling"].isHidden()
    dock.advanced.setChecked(True)
    assert not dock.sliders["mean/Male"].isHidden()
    dock.advanced.setChecked(False)

    w.steer_min_db = 1000.0  # every steered candidate falls below it
    dock.set_value("diff/Smiling", 2.0)
    dock.flush()
    qtbot.waitUntil(lambda: w.session.preview is not None and dock.warning.isVisible(), timeout=WAIT_MS)
    assert "no longer agrees with the evidence" in dock.warning.text()
    assert "agrees much less" in w.compare.captions[3].text()


def test_the_active_slider_stays_in_view_when_the_sliders_are_rebuilt(qtbot):
    """The slider moved last (its name in bold) is scrolled back into view after Advanced, a rebuild, a reset."""
    from PySide6.QtCore import QPoint, QRect

    from varsr_gui.slider_dock import SliderDock

    dock = SliderDock()
    qtbot.addWidget(dock)
    dock.resize(320, 260)
    dock.show()
    qtbot.waitExposed(dock)
    dock.set_attributes([f"{kind}/A{i:02d}" for i in range(12) for kind in ("mean", "diff")])  # means hidden
    bar, key = dock.scroll.verticalScrollBar(), "diff/A08"

    def in_view() -> bool:
        vp, s = dock.scroll.viewport(), dock.sliders[key]
        return vp.rect().contains(QRect(s.mapTo(vp, QPoint(0, 0)), s.size()))

    qtbot.waitUntil(lambda: bar.maximum() > 0)
    dock.scroll.ensureWidgetVisible(dock.sliders[key])  # the analyst scrolls down to it and moves it
    dock.set_value(key, 1.0)
    assert in_view() and dock.active == key
    assert dock.names[key].font().bold() and not dock.names["diff/A00"].font().bold()
    dock.advanced.setChecked(True)  # nine mean rows more above it
    qtbot.waitUntil(in_view, timeout=2000)
    bar.setValue(0)
    dock.set_attributes([*(f"diff/B{i:02d}" for i in range(10)), key])  # another model's sliders: rebuilt
    qtbot.waitUntil(in_view, timeout=2000)
    assert dock.names[key].font().bold()
    bar.setValue(0)
    dock.reset()  # R
    qtbot.waitUntil(in_view, timeout=2000)


def test_compare_view_fills_its_room_and_thumbnails_carry_a_slim_band(make_window, qtbot, gui_models: Path,
                                                                     evidence_png: Path):
    from tests.gui.helpers import generate
    from varsr_gui.qt_images import THUMB, mark_band_height

    w = make_window(gui_models)
    assert w.open_path(evidence_png)
    ids = generate(qtbot, w, 4)
    w.grid.select(ids[0])
    qtbot.wait(50)
    view, first = w.compare.views[2], w.compare.views[0]
    size = view.image_rect().width()
    assert size == 64
    fit = min((first.viewport().width() - 8) / size, (first.viewport().height() - 8) / size)
    # a fractional fit (not rounded down to 1x as before) and at least twice the candidate's own size
    assert abs(view.zoom() - fit) < 0.05 * fit and view.zoom() >= 2.0
    assert not view.smooth
    w.compare.smooth.setChecked(True)
    assert all(v.smooth for v in w.compare.views)
    assert mark_band_height(THUMB) <= THUMB // 6  # a slim band, not a third of the thumbnail


def test_new_evidence_clears_the_compare_view_and_progress_resets(make_window, qtbot, gui_models: Path,
                                                                  evidence_png: Path, tmp_path: Path):
    from tests.gui.helpers import generate

    w = make_window(gui_models)
    assert w.open_path(evidence_png)
    generate(qtbot, w, 4)
    assert w.compare.panel_count() == 3
    other = tmp_path / "other.png"
    Image.new("RGB", (30, 30), (50, 60, 70)).save(other)
    assert w.open_path(other)
    assert w.compare.panel_count() == 0 and w.session.current is None
    assert w.input_panel.progress.value() < w.input_panel.progress.maximum()  # no stale 100 %
    w.detect_faces()
    qtbot.waitUntil(lambda: not w.runner.busy, timeout=2 * WAIT_MS)
    assert w.input_panel.progress.value() < w.input_panel.progress.maximum()
