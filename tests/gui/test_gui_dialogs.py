"""About box, recent files, export failures and reference alignment, through the real widgets."""

from __future__ import annotations

import errno
import json
import shutil
from pathlib import Path

import pytest
from PIL import Image
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMessageBox

import core
import core.workbench.candidates
import core.workbench.export as E
import core.workbench.session as S
from tests.conftest import SHARED_DATA
from tests.gui.helpers import WAIT_MS, generate


def menu_action(w, menu_title: str, text: str) -> QAction:
    """The action whose text (without '&' and the ellipsis) starts with ``text`` in a menu bar menu."""
    for top in w.menuBar().actions():
        if top.text().replace("&", "") == menu_title:
            for a in top.menu().actions():
                if a.text().replace("&", "").startswith(text):
                    return a
    raise AssertionError(f"no action {menu_title} > {text}")


def test_about_lists_bundles_with_their_cards(make_window, gui_models: Path, tmp_path: Path):
    root = tmp_path / "models"
    shutil.copytree(gui_models, root)
    (root / "face-8" / "card.md").write_text("# Model card: `face-8`\n\n**Synthetic leads.**\n\n"
                                             "| task | face 8x8 |\n|---|---|\n", encoding="utf-8")
    w = make_window(root)
    menu_action(w, "Help", "About VarSR Studio").trigger()
    dlg = w.about_dialog
    assert dlg is not None and dlg.isVisible()
    assert core.LEAD_NOTICE in dlg.notice.text()
    names = [dlg.bundles.item(i).text().splitlines()[0] for i in range(dlg.bundles.count())]
    assert names == ["face-8", "plate-char"]
    assert "face \u00b7 8x8 \u2192 64x64" in dlg.bundles.item(0).text()
    dlg.bundles.setCurrentRow(0)
    text = dlg.card_text()
    assert "Model card: face-8" in text and "#" not in text  # rendered Markdown, not the source
    assert "no card" not in dlg.bundles.item(0).text()
    dlg.bundles.setCurrentRow(1)
    assert "no card" in dlg.card_text() and "no card" in dlg.bundles.item(1).text()
    assert "No model 'face-16' installed" in dlg.missing.text()
    dlg.close()


def test_recent_files_persist_and_reopen(make_window, gui_models: Path, tmp_path: Path, evidence_png: Path):
    ini = tmp_path / "recent.ini"
    other = tmp_path / "other.png"
    Image.new("RGB", (20, 10), (1, 2, 3)).save(other)
    w = make_window(gui_models, ini)
    assert w.open_path(evidence_png) and w.open_path(other) and w.open_path(evidence_png)
    assert w.recent_files() == [str(evidence_png.resolve()), str(other.resolve())]
    w.close()

    w2 = make_window(gui_models, ini)
    w2.recent_menu.aboutToShow.emit()
    acts = [a for a in w2.recent_menu.actions() if a.data()]
    assert [a.data() for a in acts] == [str(evidence_png.resolve()), str(other.resolve())]
    assert acts[1].text().endswith("other.png")
    acts[1].trigger()
    assert w2.session.evidence.path == other.resolve()
    assert w2.recent_files()[0] == str(other.resolve())

    other.unlink()
    acts = [a for a in w2.recent_menu.actions() if a.data()]
    acts[0].trigger()  # other.png, gone
    assert "no longer there" in w2.message_label.text()
    assert w2.recent_files() == [str(evidence_png.resolve())]
    assert w2.session.evidence.path == other.resolve()  # nothing else changed
    menu_action(w2, "File", "Open recent").menu().actions()[-1].trigger()  # Clear the list
    assert w2.recent_files() == []


def _shortlisted_window(make_window, qtbot, gui_models: Path, evidence_png: Path):
    w = make_window(gui_models)
    w.open_path(evidence_png)
    ids = generate(qtbot, w, 4)
    for cid in ids[:3]:
        w.session.star(cid)
    return w


@pytest.mark.parametrize(("err", "words"), [
    (errno.ENOSPC, "The disk is full"),
    (errno.EROFS, "is read-only"),
])
def test_export_failure_gives_a_dialog_and_leaves_nothing(make_window, qtbot, gui_models: Path,
                                                          evidence_png: Path, tmp_path: Path,
                                                          monkeypatch, err: int, words: str):
    w = _shortlisted_window(make_window, qtbot, gui_models, evidence_png)
    real_save = E.save_png
    calls = []

    def failing_save(img, path, extra=None):
        calls.append(path)
        if len(calls) == 3:  # two PNGs are on disk when the disk fills up
            raise OSError(err, "simulated")
        real_save(img, path, extra)

    monkeypatch.setattr(E, "save_png", failing_save)
    out = tmp_path / "exports" / "case-17"
    assert w.export_to(out) is None
    box = w.error_dialog
    assert isinstance(box, QMessageBox) and box.isVisible()
    assert words in box.text() and str(out) in box.text()
    assert "Nothing was exported" in box.informativeText()
    assert "Traceback" not in box.text() + box.informativeText()
    assert words in w.message_label.text()
    # no folder that could pass for an export: neither the target nor a leftover partial one
    assert not out.exists()
    assert list((tmp_path / "exports").iterdir()) == []
    assert len(calls) == 3

    box.close()
    monkeypatch.setattr(E, "save_png", real_save)
    assert w.export_to(out) == out  # the same folder works once there is room
    man = json.loads((out / "manifest.json").read_text())
    assert len(man["leads"]) == 3


def test_export_into_unwritable_parent(make_window, qtbot, gui_models: Path, evidence_png: Path,
                                       tmp_path: Path, monkeypatch):
    w = _shortlisted_window(make_window, qtbot, gui_models, evidence_png)

    def denied(*a, **k):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(E.tempfile, "mkdtemp", denied)
    out = tmp_path / "ro" / "leads"
    assert w.export_to(out) is None
    assert "is read-only" in w.error_dialog.text()
    assert not out.exists()


def test_thumbnails_are_rendered_in_the_worker(make_window, qtbot, gui_models: Path, evidence_png: Path):
    w = make_window(gui_models)
    w.open_path(evidence_png)
    ids = generate(qtbot, w, 8)
    assert all(w.session.candidates[cid] in w.images for cid in ids)
    w.session.star(ids[2])
    w.session.unstar(ids[2])
    assert not w.session.shortlist


# -- reference transfer ------------------------------------------------------------------------------
def test_reference_without_a_face_is_centre_resized_and_says_so(make_window, qtbot, gui_models: Path,
                                                                evidence_png: Path, tmp_path: Path):
    ref = tmp_path / "landscape.png"
    img = Image.new("RGB", (240, 160), (90, 140, 200))
    img.paste((40, 120, 40), (0, 110, 240, 160))
    img.save(ref)
    w = make_window(gui_models)
    w.open_path(evidence_png)
    ids = generate(qtbot, w, 4)
    w.grid.select(ids[0])
    w.reference_transfer(ref)
    qtbot.waitUntil(lambda: len(w.grid.candidate_ids()) == 5 and not w.runner.busy, timeout=WAIT_MS)
    c = w.session.candidates[w.grid.candidate_ids()[-1]]
    assert c.recipe["kind"] == "reference"
    assert c.recipe["reference_alignment"] == {"method": "centre", "reference_size": [240, 160]}
    msg = w.statusBar().currentMessage()
    assert "no face found" in msg and "centre" in msg


@pytest.mark.data
@pytest.mark.skipif(not (SHARED_DATA / "celeba" / "img_align_celeba").is_dir(),
                    reason="real data not present at ../shared/data/celeba")
def test_reference_face_is_aligned_by_its_eyes(make_window, qtbot, gui_models: Path, evidence_png: Path,
                                               tmp_path: Path, monkeypatch):
    src = SHARED_DATA / "celeba" / "img_align_celeba" / "000001.jpg"
    with Image.open(src) as im:
        big = im.convert("RGB")
    # a larger photo with the face off centre: the centre fallback would miss it
    photo = Image.new("RGB", (big.width * 2 + 40, big.height + 60), (200, 200, 190))
    photo.paste(big, (big.width + 30, 20))
    ref = tmp_path / "reference.png"
    photo.save(ref)
    seen = {}
    real_align = S.align_reference

    def spy(reference, cfg, eyes=None):
        out, how = real_align(reference, cfg, eyes)
        seen["image"] = out
        return out, how

    monkeypatch.setattr(core.workbench.candidates, "align_reference", spy)  # where reference_transfer looks it up
    w = make_window(gui_models)
    w.open_path(evidence_png)
    w.reference_transfer(ref)
    qtbot.waitUntil(lambda: len(w.grid.candidate_ids()) == 1 and not w.runner.busy, timeout=WAIT_MS)
    c = w.session.candidates[w.grid.candidate_ids()[0]]
    how = c.recipe["reference_alignment"]
    assert how["method"] == "eyes"
    (lx, ly), (rx, ry) = how["eyes"]
    assert big.width + 30 < lx < rx < photo.width and 20 < ly < 20 + big.height / 2 + 20
    assert abs(ly - ry) < 8
    assert "aligned by its eyes" in w.statusBar().currentMessage()
    assert seen["image"].size == (64, 64)
    # the aligned frame is the face: its centre is skin, not the plain background of the photo
    px = seen["image"].getpixel((32, 34))
    assert px != (200, 200, 190)
