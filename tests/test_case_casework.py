"""Issue 14, case side, without Qt: removing an original nothing derives from, exports made before the
case carried into it, work before any case kept for recovery, the report's region of interest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

import core
from core import case as K
from core.case.originals import derived_from, remove_original
from core.case.report import build_report, describe
from core.errors import CaseError
from core.workbench import session as S
from tests.helpers.cases import generate


def _image(path: Path, colour: tuple[int, int, int], size: tuple[int, int] = (40, 30)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)
    return path


def _case_with_two_originals(tmp_path: Path, models_root: Path, evidence_png: Path) -> tuple[K.Case, str, str]:
    """A case whose evidence has candidates, and a second image opened into it by mistake."""
    session = S.Session(models_root)
    case = K.Case.create(tmp_path / "cases" / "C", session, "Examiner A")
    face = core.load_model(models_root / "face-8")
    session.open_file(evidence_png)
    generate(session, face, 4, seed=1)
    good = session.evidence.sha256
    stray = _image(tmp_path / "incoming" / "test-chart.png", (200, 10, 10))
    session.open_file(stray)
    case.save()
    return case, good, session.evidence.sha256


# -- removing an original ---------------------------------------------------------------------------------
def test_an_original_without_derived_work_is_removed_and_logged(tmp_path: Path, models_root: Path,
                                                                evidence_png: Path) -> None:
    case, good, stray = _case_with_two_originals(tmp_path, models_root, evidence_png)
    with pytest.raises(CaseError, match="evidence on screen"):
        remove_original(case, stray)  # on screen: refused
    case.session.open_file(evidence_png)  # back to the real evidence (already in the case: not copied again)
    with pytest.raises(CaseError, match=r"4 candidate\(s\) \(C0001, C0002, C0003, C0004\) derive from evidence.png"):
        remove_original(case, good)
    assert derived_from(case, good).candidates == ["C0001", "C0002", "C0003", "C0004"]
    copy = case.folder / case.originals[stray].file
    assert copy.is_file()
    removed = remove_original(case, stray, why="opened by mistake")
    assert stray not in case.originals and copy.is_file()  # the copy goes with the next save, not before
    entry = case.log.entries()[-1]
    assert entry["action"] == "original_removed" and entry["actor"] == "Examiner A" and entry["utc"].endswith("+00:00")
    assert entry["details"]["sha256"] == stray and entry["details"]["why"] == "opened by mistake"
    assert removed.name in describe(entry) and stray in describe(entry)
    case.save()
    assert not copy.exists()
    m = json.loads((case.folder / K.MANIFEST).read_text())
    assert [o["sha256"] for o in m["originals"]] == [good]
    reopened = K.open_case(case.folder)
    assert reopened.audit_check.ok and reopened.warnings == [] and list(reopened.originals) == [good]
    assert any(e["action"] == "original_removed" for e in reopened.log.entries())


def test_an_original_a_search_used_is_kept(tmp_path: Path, models_root: Path, evidence_png: Path) -> None:
    case, good, stray = _case_with_two_originals(tmp_path, models_root, evidence_png)
    case.session.open_file(evidence_png)
    case.retired["C0099"] = {"kind": "sample", "source": {"evidence": {"sha256": stray}}}  # dropped from memory
    case.record_search({"kind": "faces", "candidates": ["C0099"], "hits": []})
    with pytest.raises(CaseError, match=r"1 candidate\(s\) \(C0099\) and 1 search\(es\) \(search-1\)"):
        remove_original(case, stray)
    assert stray in case.originals


# -- exports made before the case -----------------------------------------------------------------------
def test_an_export_made_before_the_case_is_carried_into_it(tmp_path: Path, models_root: Path,
                                                           evidence_png: Path) -> None:
    session = S.Session(models_root)
    session.open_file(evidence_png)
    cset = generate(session, core.load_model(models_root / "face-8"), 4, seed=1)
    session.star(cset.candidate_ids[0])
    out = session.export_shortlist(tmp_path / "exports" / "leads")
    made = session.record_export(folder=out.name, unmarked_copies=False, leads=[cset.candidate_ids[0]])
    case = K.Case.create(tmp_path / "cases" / "C", session, "Examiner A")
    assert session.exports == []  # carried: a later case does not get it again
    entry = next(e for e in case.log.entries() if e["action"] == "shortlist_exported")
    d = entry["details"]
    assert d["before_case"] is True and d["made_utc"] == made["utc"] and d["leads"] == [cset.candidate_ids[0]]
    created = next(e for e in case.log.entries() if e["action"] == "case_created")
    assert made["utc"] <= created["utc"] <= entry["utc"]
    html = build_report(case).html()
    assert "before the case was created" in html and made["utc"][:19].replace("T", " ") in html
    reopened = K.open_case(case.folder)
    assert any(e["details"].get("before_case") for e in reopened.log.entries() if e["action"] == "shortlist_exported")


# -- work before any case ---------------------------------------------------------------------------------
KILLED = """
import os, signal, sys
from pathlib import Path
import core
from core.case.unsaved import UnsavedWork
from core.workbench import session as S
from tests.helpers.cases import generate
models, evidence, root = map(Path, sys.argv[1:4])
s = S.Session(models)
s.open_file(evidence)
s.set_region(S.Region.from_box(16, 10, 32, 30))
cset = generate(s, core.load_model(models / "face-8"), 4, seed=5, t=0.7)
s.star(cset.candidate_ids[2]); s.star(cset.candidate_ids[0])
s.set_note(cset.candidate_ids[2], "nearest to the witness")
s.record_export(folder="leads", unmarked_copies=False, leads=[cset.candidate_ids[2]])
UnsavedWork(root / "mine", s).save()
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_work_before_a_case_survives_a_kill_and_is_restored(tmp_path: Path, models_root: Path,
                                                            evidence_png: Path) -> None:
    import os
    import subprocess
    import sys

    import torch

    from core.case.unsaved import UnsavedWork, find_unsaved, restore_unsaved
    from tests.conftest import REPO

    root = tmp_path / "recovery"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", KILLED, str(models_root), str(evidence_png), str(root)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -9, proc.stderr[-2000:]  # killed, never closed
    found = find_unsaved(root)
    assert len(found) == 1 and (found[0].candidates, found[0].shortlisted, found[0].exports) == (4, 2, 1)
    assert "evidence.png" in found[0].summary()

    session = S.Session(models_root)
    assert restore_unsaved(found[0].folder, session) == []
    assert [e.candidate_id for e in session.shortlist] == ["C0003", "C0001"]
    assert session.note("C0003") == "nearest to the witness" and session.exports[0]["leads"] == ["C0003"]
    assert session.evidence.path == evidence_png.resolve() and session.region.box == (16, 10, 32, 30)
    again = S.Session(models_root)  # the recipes regenerate the same pixels, bit for bit
    again.open_file(evidence_png)
    again.set_region(S.Region.from_box(16, 10, 32, 30))
    fresh = generate(again, core.load_model(models_root / "face-8"), 4, seed=5, t=0.7)
    for cid in fresh.candidate_ids:
        assert torch.equal(session.candidates[cid].image, again.candidates[cid].image)
        assert session.candidates[cid].recipe == again.candidates[cid].recipe | {
            "source": session.candidates[cid].recipe["source"]}

    mine = UnsavedWork(root / "this-process", session)
    mine.save()
    assert [r.folder.name for r in find_unsaved(root, live={mine.folder})] == ["mine"]  # ours is live
    case = K.Case.create(tmp_path / "cases" / "C", session, "Examiner A")  # the recovered work is adopted
    assert any(e["details"].get("before_case") for e in case.log.entries() if e["action"] == "shortlist_exported")
    assert set(case.session.candidates) == set(fresh.candidate_ids)
    mine.discard()  # the app discards it once a case holds the work
    assert not mine.folder.exists()


# -- the report ---------------------------------------------------------------------------------------------
def test_the_reports_picture_of_the_original_outlines_the_region(saved_case) -> None:
    import io

    from core.case.roi import LINE, region_inset, region_outline

    case, _ = saved_case  # evidence 48x40, region box (16, 10, 32, 30) for the face candidates
    rep = build_report(case)
    ev = next(i for i, o in enumerate(case.originals.values()) if o.role == "evidence")
    pic = Image.open(io.BytesIO(rep.images[f"original_{ev}"])).convert("RGB")
    k = pic.width // 48
    assert pic.size == (48 * k, 40 * k) and k > 1
    on_line = [pic.getpixel((16 * k + dx, 20 * k)) for dx in (-1, 0)] + [pic.getpixel((24 * k, 30 * k + d))
                                                                          for d in (-1, 0)]
    assert all(p == LINE for p in on_line), on_line
    assert pic.getpixel((24 * k, 20 * k)) != LINE  # inside the box: the picture, untouched
    assert f"original_{ev}_region" not in rep.images  # the picture is already enlarged 6 times: no inset
    assert "Region of interest outlined in yellow: box [16.0, 10.0, 32.0, 30.0]" in rep.html()
    frame = Image.new("RGB", (640, 480), (60, 60, 60))  # a 13 px face in a CCTV frame: enlarged beside it
    inset = region_inset(frame, [{"kind": "box", "box": [300, 200, 313, 213]}], min_scale=1.5 * 320 / 640)
    assert inset is not None and inset.width >= 120  # 27 px shown 5 times
    assert LINE in {c for _, c in inset.getcolors(1 << 16)}  # outlined
    assert region_inset(frame, [{"kind": "box", "box": [0, 0, 600, 400]}], min_scale=0.75) is None
    # the face frame two eye clicks align: the canonical eyes give the 64x64 frame itself, turned with the eyes
    def flat(pts):
        return [v for p in pts for v in p]

    assert flat(region_outline({"kind": "eyes", "eyes": [[19.5, 18.6], [44.5, 18.6]]})) == pytest.approx(
        [0, 0, 64, 0, 64, 64, 0, 64])
    turned = region_outline({"kind": "eyes", "eyes": [[10, 10], [10, 35]]})  # the eye line turned 90 degrees
    assert list(turned[0]) == pytest.approx([10 + 18.6, 22.5 - 32])
    assert region_outline({"kind": "quad", "quad": [[1, 2], [9, 2], [9, 6], [1, 6]]}) == [(1, 2), (9, 2), (9, 6),
                                                                                            (1, 6)]
    assert region_outline(None) is None


def test_the_audit_line_of_a_settings_change_says_how_the_cells_were_set():
    d = {"domain": "plate", "cells": 3, "cell_bounds": [1 / 3, 2 / 3], "model_override": None}
    assert describe({"action": "settings_changed", "details": d}) == (
        "settings: domain plate, 3 cell(s), model chosen by crop size")  # equal cells: as before
    moved = describe({"action": "settings_changed", "details": {**d, "cell_bounds": [0.3, 0.7]}})
    assert "3 cell(s) at 0.00|0.30|0.70|1.00" in moved
    flipped = describe({"action": "settings_changed", "details": {**d, "cell_inverted": True,
                                                                  "cell_edges": [0.05, 0.3, 0.7, 0.95]}})
    assert "at 0.05|0.30|0.70|0.95, light on dark (inverted)" in flipped
