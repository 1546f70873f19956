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
    slim = w.slider_dock.height()
    assert slim < 0.2 * column  # no sliders for plates: a slim strip, not half the column
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
    assert w2.slider_dock.height() > 2 * slim  # the analyst's plate layout, not the default strip


SHIPPED = Path(__file__).resolve().parents[2] / "resources" / "models"


def _shipped_face_models(tmp_path: Path) -> Path:
    """The shipped face-8 bundle (with its encoder reference) in a models folder of its own (links)."""
    import pytest

    src = SHIPPED / "face-8"
    if not (src / "ood.json").is_file():
        pytest.skip("the shipped face-8 has no ood.json")
    root = tmp_path / "shipped"
    (root / "face-8").mkdir(parents=True)
    for f in src.iterdir():
        (root / "face-8" / f.name).symlink_to(f)
    return root


def test_a_flat_crop_is_flagged_by_the_encoder_check(make_window, qtbot, tmp_path: Path):
    from PIL import Image

    wall = tmp_path / "wall.png"
    Image.new("RGB", (24, 24), (158, 140, 122)).save(wall)
    w = make_window(_shipped_face_models(tmp_path))
    assert w.open_path(wall)
    assert not w.input_panel.crop_check.isVisible()
    generate(qtbot, w, 4)
    check = w.input_panel.crop_check
    qtbot.waitUntil(check.isVisible, timeout=WAIT_MS)
    assert "Flatter than any training input" in check.text() and w.last_crop_score.unusual
    from core.workbench.session import Region

    w.session.set_region(Region.from_box(0, 0, 20, 20))  # a new crop takes the old verdict away
    assert not check.isVisible()


def test_a_real_face_is_in_range_of_the_encoder_check(make_window, qtbot, tmp_path: Path):
    import pytest

    from tests.conftest import SHARED_DATA

    chips = sorted((SHARED_DATA / "utkface").glob("*.chip.jpg"))[:1] if (SHARED_DATA / "utkface").is_dir() else []
    if not chips:
        pytest.skip("real data not present at ../shared/data/utkface")
    w = make_window(_shipped_face_models(tmp_path))
    assert w.open_path(chips[0])  # a 96x96 chip is the face frame itself
    generate(qtbot, w, 4)
    qtbot.waitUntil(w.input_panel.crop_check.isVisible, timeout=WAIT_MS)
    s = w.last_crop_score
    assert s is not None and not s.unusual and "like the training inputs" in w.input_panel.crop_check.text()


def test_face_frame_marks_eyes_and_detector_side_by_side_and_the_eye_shift_test(make_window, qtbot,
                                                                                 gui_models: Path,
                                                                                 evidence_png: Path):
    from tests.gui.helpers import drag

    w = make_window(gui_models)
    assert w.open_path(evidence_png)
    drag(w.view, (16, 10), (32, 30))
    marks = [it.path().boundingRect().center() for it in w.view.frame_items]
    assert len(marks) == 2  # where the model's face frame puts the eyes in the box
    assert abs(marks[0].x() - (16 + 19.5 / 64 * 16)) < 0.01 and abs(marks[0].y() - (10 + 18.6 / 64 * 20)) < 0.01
    assert abs(marks[1].x() - (16 + 44.5 / 64 * 16)) < 0.01

    p = w.input_panel
    assert p.eyes_button.isVisible() and p.detect_button.isVisible()  # both alignments, side by side
    assert "eye_shift" in w.menu_actions  # also in the Candidates menu
    qtbot.mouseClick(p.eyes_button, Qt.MouseButton.LeftButton)
    assert w.view.mode == "eyes"
    w.view.set_mode("select")

    steps: list[int] = []
    p.progress.valueChanged.connect(steps.append)
    qtbot.mouseClick(p.shift_button, Qt.MouseButton.LeftButton)
    assert w.runner.busy and not p.framing_result.isVisible()  # the work runs in a worker: the GUI goes on
    qtbot.waitUntil(lambda: p.framing_result.isVisible() and not w.runner.busy, timeout=2 * WAIT_MS)
    s = w.last_sensitivity
    assert set(s.per_shift) == {"right", "left", "down", "up"} and s.between > 0
    assert "Eye-shift" in p.framing_result.text() and f"{s.change:.1f}/255" in p.framing_result.text()
    assert steps and max(steps) >= 2  # progress was shown

    drag(w.view, (14, 8), (34, 32))  # a new crop: the old result goes, the marks follow
    assert not p.framing_result.isVisible() and len(w.view.frame_items) == 2
    p.domain.setCurrentIndex(p.domain.findData("plate"))
    assert not w.view.frame_items and not p.shift_button.isVisible()


def test_a_huge_image_is_decoded_in_a_worker_and_shown_from_a_pyramid(make_window, qtbot, gui_models: Path,
                                                                      tmp_path: Path, dialogs):
    import struct
    import zlib

    from PIL import Image

    big = tmp_path / "big.png"
    img = Image.new("RGB", (8000, 6000), (90, 100, 110))
    img.paste((220, 180, 150), (3000, 2000, 3400, 2500))
    img.save(big, compress_level=1)
    w = make_window(gui_models)
    steps: list[int] = []
    w.input_panel.progress.valueChanged.connect(steps.append)
    assert w.open_path(big)  # returns at once: the decoding runs in the worker
    assert w.session.evidence is None and w.runner.busy
    qtbot.waitUntil(lambda: w.session.evidence is not None and not w.runner.busy, timeout=4 * WAIT_MS)
    assert w.session.evidence.image.size == (8000, 6000) and steps
    view = w.view
    assert len(view.levels) >= 3 and view.levels[0].width() == 8000
    assert view.level > 0 and view.image_rect().width() == 8000  # zoomed out: a coarse level, full-size scene
    view.set_zoom(1.0)
    assert view.level == 0
    assert not w.input_panel.crop_tile.image.pixmap().isNull()  # the tile, from a reduced copy

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    broken = tmp_path / "broken.png"  # a large header and no pixels: the worker's error is worded as ever
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 5000, 1000, 8, 2, 0, 0, 0))
                       + chunk(b"IEND", b""))
    assert w.open_path(broken)
    qtbot.waitUntil(lambda: bool(dialogs) and not w.runner.busy, timeout=WAIT_MS)
    assert "could not be opened" in dialogs[-1].text() and w.session.evidence.image.size == (8000, 6000)
