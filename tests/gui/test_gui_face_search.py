"""The face search dock: index a gallery in the worker (with cancel), search with the shortlist, show hits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from core.workbench.session import Candidate, Session
from tests.gui.helpers import WAIT_MS
from varsr_gui.search_dock import ID_ROLE, FaceSearchDock, face_candidates
from varsr_gui.workers import TaskRunner


def _gallery(folder: Path, n: int = 3) -> Path:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    for i in range(n):
        a = np.clip(rng.integers(40, 220, 3) + rng.normal(0, 20, (48, 40, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(a).save(folder / f"person{i}.png")
    return folder


def _candidates(session: Session, n: int = 3) -> list[str]:
    torch.manual_seed(0)
    ids = []
    for _ in range(n):
        c = Candidate(image=torch.rand(3, 64, 64), lr=torch.rand(3, 8, 8), z=None,
                      recipe={"kind": "sample", "model": "face-8", "domain": "face"}, l1=0.0, lr_psnr=40.0)
        ids.append(session.add_candidate(c))
    plate = Candidate(image=torch.rand(1, 16, 8), lr=torch.rand(1, 4, 2), z=None,
                      recipe={"kind": "sample", "model": "plate-char", "domain": "plate-char"}, l1=0.0, lr_psnr=40.0)
    session.add_candidate(plate)
    return ids


def test_dock_indexes_searches_and_shows_hits(qtbot, tmp_path: Path) -> None:
    runner = TaskRunner()
    session = Session(models_root=tmp_path / "no-models")
    dock = FaceSearchDock(runner, session)
    qtbot.addWidget(dock)
    assert dock.search() is None and "Open or build" in dock.status.text()
    ids = _candidates(session)
    assert len(face_candidates(session, "All face candidates")) == 3  # the plate cell is not a face
    assert face_candidates(session, "Shortlist") == []
    session.star(ids[1])
    session.star(ids[0])

    dock.build(_gallery(tmp_path / "gallery"), tmp_path / "index")
    qtbot.waitUntil(lambda: dock.index is not None and not runner.busy, timeout=WAIT_MS * 4)
    assert "3 records" in dock.index_label.text() and dock.search_button.isEnabled()
    assert "3 photos indexed" in dock.status.text()

    found: list[dict] = []
    dock.hits_found.connect(found.append)
    dock.top.setValue(2)
    assert dock.mode.currentText() == "fused" and not dock.diverse.isEnabled()  # the default
    dock.mode.setCurrentText("min")
    assert dock.diverse.isEnabled()
    dock.search()
    qtbot.waitUntil(lambda: dock.result is not None and not runner.busy, timeout=WAIT_MS * 4)
    assert dock.table.rowCount() == 2 and found and found[0]["candidates"] == [ids[1], ids[0]]
    assert dock.table.item(0, 0).data(ID_ROLE) in (ids[0], ids[1])
    assert not dock.table.item(0, 0).icon().isNull()  # the matched candidate's thumbnail
    assert float(dock.table.item(0, 2).text()) <= float(dock.table.item(1, 2).text())
    picked: list[str] = []
    dock.candidate_selected.connect(picked.append)
    dock.table.selectRow(0)
    assert picked and picked[0] in ids

    dock.open_index(tmp_path / "nothing-here")
    qtbot.waitUntil(lambda: not runner.busy, timeout=WAIT_MS)
    assert "not a face index" in dock.status.text()
    assert runner.shutdown()


def test_fused_search_with_one_faces_candidates(qtbot, tmp_path: Path) -> None:
    runner = TaskRunner()
    session = Session()  # the installed face-8 and face-8-det
    dock = FaceSearchDock(runner, session)
    qtbot.addWidget(dock)
    torch.manual_seed(1)
    lr = torch.rand(3, 8, 8)
    for _ in range(3):
        session.add_candidate(Candidate(image=torch.rand(3, 64, 64), lr=lr.clone(), z=None,
                                        recipe={"kind": "sample", "model": "face-8", "domain": "face"}, l1=0.0,
                                        lr_psnr=40.0))
    dock.build(_gallery(tmp_path / "gallery"), tmp_path / "index")
    qtbot.waitUntil(lambda: dock.index is not None and not runner.busy, timeout=WAIT_MS * 4)
    dock.source.setCurrentText("All face candidates")
    dock.search().cancel()  # cancelled before the gallery is degraded: nothing is written or shown
    qtbot.waitUntil(lambda: not runner.busy, timeout=WAIT_MS * 8)
    assert dock.result is None and "cancelled" in dock.status.text()
    assert not (tmp_path / "index" / "degraded").exists()
    dock.search()
    qtbot.waitUntil(lambda: dock.result is not None and not runner.busy, timeout=WAIT_MS * 8)
    assert dock.result["mode"] == "fused" and dock.table.rowCount() == 3
    assert any("degraded" in n for n in dock.result["notes"])
    assert list((tmp_path / "index" / "degraded").glob("face-8-det-*.npy"))

    session.add_candidate(Candidate(image=torch.rand(3, 64, 64), lr=torch.rand(3, 8, 8), z=None,
                                    recipe={"kind": "sample", "model": "face-8", "domain": "face"}, l1=0.0,
                                    lr_psnr=40.0))
    dock.result = None
    dock.search()  # candidates of two faces: ranked by min, and the status says why
    qtbot.waitUntil(lambda: dock.result is not None and not runner.busy, timeout=WAIT_MS * 4)
    assert dock.result["mode"] == "min" and "more than one input" in dock.status.text()
    assert runner.shutdown()


def test_cancelled_indexing_writes_nothing(qtbot, tmp_path: Path) -> None:
    runner = TaskRunner()
    dock = FaceSearchDock(runner, Session(models_root=tmp_path / "no-models"))
    qtbot.addWidget(dock)
    task = dock.build(_gallery(tmp_path / "gallery", 4), tmp_path / "index")
    task.cancel()
    qtbot.waitUntil(lambda: not runner.busy, timeout=WAIT_MS * 4)
    assert "cancelled" in dock.status.text() and dock.index is None
    assert not (tmp_path / "index").exists() or not any((tmp_path / "index").iterdir())
    assert runner.shutdown()


def test_window_has_the_face_search_dock(make_window, gui_models: Path) -> None:
    w = make_window(gui_models)
    menus = [a.menu() for a in w.menuBar().actions() if a.menu() is not None]
    assert any(w.face_search_dock.toggleViewAction() in m.actions() for m in menus)
