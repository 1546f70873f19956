"""The visible mark on every candidate shown or exported, the export dialog, and error dialogs."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image
from PySide6.QtWidgets import QDialogButtonBox

from core.images import tensor_to_pil
from core.workbench.export import MARK, NOTICE
from tests.gui.helpers import WAIT_MS, generate
from varsr_gui.qt_images import THUMB


def test_every_shown_candidate_carries_the_mark(make_window, qtbot, gui_models: Path, evidence_png: Path):
    w = make_window(gui_models)
    w.open_path(evidence_png)
    ids = generate(qtbot, w, 4)
    c = w.session.candidates[ids[0]]
    r = w.images.get(c)
    # thumbnails: the mark is a band under the candidate, which is not covered
    assert r.icon_image.width() == THUMB and r.icon_image.height() > r.thumb.height() + 8
    assert r.icon_image.copy(0, 0, THUMB, THUMB) == r.thumb.convertToFormat(r.icon_image.format())
    assert w.grid.iconSize().height() == r.icon_image.height()
    assert MARK in w.grid.item_for(ids[0]).toolTip()
    # large view: every candidate panel is captioned with the mark, the input is not
    caps = [cap.text() for cap in w.compare.captions if not cap.isHidden()]
    assert len(caps) == 3 and MARK in caps[2] and MARK not in caps[0]
    assert "lead, not evidence" not in " ".join(caps)
    # shortlist and compare two
    w.session.star(ids[0])
    w.session.star(ids[2])
    for i in range(w.shortlist_dock.list.count()):
        assert MARK in w.shortlist_dock.list.item(i).text()
    w.compare_two(ids[0], ids[2])
    caps = [cap.text() for cap in w.compare.captions if not cap.isHidden()]
    assert [MARK in t for t in caps] == [False, True, True]


def test_export_dialog_unmarked_copies_off_by_default(make_window, qtbot, gui_models: Path,
                                                      evidence_png: Path, tmp_path: Path):
    w = make_window(gui_models)
    w.open_path(evidence_png)
    ids = generate(qtbot, w, 4)
    w.session.star(ids[1])
    w.session.star(ids[0])
    w.session.set_note(ids[0], "nose shape fits")

    dlg = w.export_dialog()
    assert dlg is not None and dlg.isVisible() and not dlg.unmarked.isChecked()
    ok = dlg.buttons.button(QDialogButtonBox.StandardButton.Ok)
    assert not ok.isEnabled()  # no folder yet
    dlg.folder.setText(str(tmp_path / "plain"))
    ok.click()
    qtbot.waitUntil(lambda: not w.runner.busy, timeout=WAIT_MS)  # the export runs in the worker
    out = tmp_path / "plain"
    man = json.loads((out / "manifest.json").read_text())
    assert [e["recipe"]["id"] for e in man["leads"]] == [ids[1], ids[0]]
    assert not list(out.glob("*UNMARKED*")) and all("unmarked_copy" not in e for e in man["leads"])
    for e in man["leads"]:
        raw = tensor_to_pil(w.session.candidates[e["recipe"]["id"]].image)
        with Image.open(out / e["file"]) as im:
            assert im.width > raw.width and im.height > raw.height * e["marked"]["scale"]
            assert im.text["varsr:mark"] == MARK
    with Image.open(out / "contact_sheet.png") as im:
        assert im.text["Description"] == NOTICE and im.text["varsr:mark"] == MARK
    assert MARK in w.statusBar().currentMessage()

    dlg = w.export_dialog()
    dlg.folder.setText(str(tmp_path / "with_copies"))
    dlg.unmarked.setChecked(True)
    dlg.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    qtbot.waitUntil(lambda: not w.runner.busy, timeout=WAIT_MS)
    out = tmp_path / "with_copies"
    man = json.loads((out / "manifest.json").read_text())
    assert man["unmarked_copies"]["requested"] is True
    for e in man["leads"]:
        assert (out / e["unmarked_copy"]).is_file()
        assert e["unmarked_copy_request"]["requested_by"] == "examiner"
        assert e["unmarked_copy_request"]["requested_utc"].endswith("+00:00")
    assert "unmarked copies" in w.statusBar().currentMessage()


def test_unreadable_image_gives_a_dialog(make_window, gui_models: Path, tmp_path: Path, dialogs):
    w = make_window(gui_models)
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
    assert not w.open_path(bad)
    assert len(dialogs) == 1
    box = dialogs[0]
    assert box.windowTitle() == "Could not open the image"
    assert "broken.png could not be opened" in box.text() and "not a readable image" in box.text()
    assert "never modified" in box.informativeText()
    assert "Traceback" not in box.text() + box.informativeText()
    assert "Could not open the image" in w.message_label.text()  # and the message strip
    assert w.session.evidence is None


def test_generate_with_a_missing_model_gives_a_dialog(make_window, tmp_path: Path, evidence_png: Path,
                                                      dialogs):
    w = make_window(tmp_path / "empty")
    assert w.open_path(evidence_png)
    w.generate()
    assert len(dialogs) == 1
    box = dialogs[0]
    assert box.windowTitle() == "Model missing"
    assert box.text() == "Cannot generate: the model 'face-16' is not installed."
    assert "No model 'face-16' installed" in box.informativeText() and "README" in box.informativeText()
    assert "Traceback" not in box.text() + box.informativeText()
    assert "No model 'face-16' installed" in w.message_label.text()
    assert not w.runner.busy


def test_unloadable_model_gives_a_dialog(make_window, qtbot, gui_models: Path, tmp_path: Path,
                                         evidence_png: Path, dialogs):
    import shutil

    root = tmp_path / "models"
    shutil.copytree(gui_models, root)
    for f in (root / "face-8").iterdir():
        if f.suffix in (".safetensors", ".pt", ".pth", ".bin"):
            f.write_bytes(b"truncated")
    w = make_window(root)
    w.open_path(evidence_png)
    w.session.set_model_override("face-8")
    w.generate()
    qtbot.waitUntil(lambda: bool(dialogs) and not w.runner.busy, timeout=WAIT_MS)
    assert dialogs[0].windowTitle() == "Model could not be loaded"
    assert "'face-8' could not be loaded" in dialogs[0].text()
    assert "Traceback" not in dialogs[0].text() + dialogs[0].informativeText()
