"""Face and plate searches run in the app go into the open case: manifest, audit log, reopen, report."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from core import case as K
from tests.gui.helpers import WAIT_MS, drag, generate


def _index(root: Path) -> Path:
    from core.search.embedders import load_embedder
    from core.search.gallery import build_index

    rng = np.random.default_rng(0)
    for i in range(3):
        a = np.clip(rng.integers(40, 220, 3) + rng.normal(0, 20, (48, 40, 3)), 0, 255).astype(np.uint8)
        (root / "gallery").mkdir(parents=True, exist_ok=True)
        Image.fromarray(a).save(root / "gallery" / f"person{i}.png")
    build_index(root / "gallery", root / "index", load_embedder(), detector=lambda _img: None)
    return root / "index"


def test_searches_in_the_app_are_recorded_in_the_case(make_window, qtbot, gui_models: Path, evidence_png: Path,
                                                      tmp_path: Path) -> None:
    from core.workbench.session import Candidate

    w = make_window(gui_models)
    face, plate = w.face_search_dock, w.plate_dock
    # without a case a search is shown, not recorded
    assert w.case_actions.record_search({"kind": "faces", "query": {}, "hits": []}) is None
    assert "not recorded" in w.statusBar().currentMessage()

    case = w.case_actions.new_case(tmp_path / "CASE-S", "Examiner S")
    torch.manual_seed(0)
    faces = w.session.add_set("faces", [Candidate(image=torch.rand(3, 64, 64), lr=torch.rand(3, 8, 8), z=None,
                                                  recipe={"kind": "sample", "model": "face-8", "domain": "face"},
                                                  l1=0.0, lr_psnr=40.0) for _ in range(3)])
    w.session.star(faces.candidate_ids[1])
    face.open_index(_index(tmp_path))
    qtbot.waitUntil(lambda: face.index is not None and not w.runner.busy, timeout=WAIT_MS)
    face.top.setValue(2)
    face.search()
    qtbot.waitUntil(lambda: face.result is not None and not w.runner.busy, timeout=WAIT_MS)
    assert len(case.searches) == 1
    rec = case.searches[0]
    assert rec["kind"] == "faces" and rec["query"]["candidates"] == [faces.candidate_ids[1]]
    assert rec["query"]["source"] == "shortlist" and rec["query"]["top"] == 2 and len(rec["hits"]) == 2
    assert rec["hits"][0]["candidate"] == faces.candidate_ids[1] and rec["hits"][0]["photo"].startswith("person")
    assert "search-1 recorded" in w.statusBar().currentMessage()

    w.open_path(evidence_png)
    w.input_panel.domain.setCurrentIndex(w.input_panel.domain.findData("plate"))
    w.input_panel.cells.setValue(3)
    drag(w.view, (6, 10), (30, 18))
    ids = generate(qtbot, w, 4)
    w.grid.select(ids[2])
    reg = tmp_path / "registry.csv"
    reg.write_text("plate,owner\nAB1,x\nZZZ,y\n", encoding="utf-8")
    plate.load_registry_file(reg)
    qtbot.waitUntil(lambda: plate.registry is not None, timeout=WAIT_MS)
    plate.search()
    qtbot.waitUntil(lambda: len(case.searches) == 2 and not w.runner.busy, timeout=WAIT_MS)
    rec = case.searches[1]
    q = rec["query"]
    assert rec["kind"] == "plates" and q["registry"]["name"] == "registry.csv" and len(q["registry"]["sha256"]) == 64
    assert q["candidates"]["row"] == ids[2] and sorted(q["candidates"]["rows"]) == sorted(ids)
    assert q["candidates"]["k"] == [4, 4, 4] and len(q["classifier"]["sha256"]) == 64
    assert [e["action"] for e in case.log.entries()].count("search_run") == 2

    assert w.case_actions.save_case()
    reopened = w.case_actions.open_case(case.folder)
    assert [s["id"] for s in reopened.searches] == ["search-1", "search-2"]
    assert K.read_case(case.folder).manifest["searches"][1]["hits"] == rec["hits"]
    html, _pdf = w.case_actions.export_report(tmp_path / "out" / "report.html")
    text = html.read_text(encoding="utf-8")
    assert "6. Database searches" in text and "never an identification" in text and "registry.csv" in text
