"""Searches and cases: a search recorded in the case (manifest + audit log + report), and
``varsr-search faces|plates query ... --case CASE`` reading the case's candidates."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from core import case as K
from core.case.report import build_report, describe
from core.case.search import (
    SEARCH_NOTICE,
    case_face_candidates,
    case_plate_cells,
    face_entry,
    plate_entry,
    summary_line,
)
from core.cli.search import main
from core.search.embedders import load_embedder
from core.search.gallery import build_index, load_index
from core.workbench import session as S

FACE = {"kind": "sample", "model": "face-8", "domain": "face", "weights_sha256": "a" * 64, "lr_size": [8, 8],
        "hr_size": [64, 64], "scale": 8}
PLATE = {"kind": "row", "model": "plate-char", "domain": "plate-char", "weights_sha256": "b" * 64,
         "lr_size": [2, 4], "hr_size": [8, 16], "scale": 4}


def _photo(path: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    a = np.clip(rng.integers(40, 220, 3) + rng.normal(0, 25, (56, 48, 3)), 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(a).save(path)
    return path


@pytest.fixture(scope="module")
def embedder():
    torch.set_num_threads(1)
    return load_embedder()


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory: pytest.TempPathFactory, embedder) -> Path:
    """Three gallery photos (no face detector: whole images), indexed with the bundled embedder."""
    root = tmp_path_factory.mktemp("gallery")
    for i, name in enumerate(["ann", "ben", "cat"]):
        _photo(root / "photos" / f"{name}.png", i)
    build_index(root / "photos", root / "index", embedder, detector=lambda _img: None)
    return root / "index"


def _face(seed: int) -> S.Candidate:
    g = torch.Generator().manual_seed(seed)
    return S.Candidate(image=torch.rand(3, 64, 64, generator=g), lr=torch.rand(3, 8, 8, generator=g), z=None,
                       recipe=dict(FACE, seed=seed, index=0), l1=1.0, lr_psnr=40.0)


def _row(seed: int, cells: int = 3) -> S.Candidate:
    g = torch.Generator().manual_seed(seed)
    return S.Candidate(image=torch.rand(1, 16, 8 * cells, generator=g), lr=torch.rand(1, 4, 2 * cells, generator=g),
                       z=None, recipe=dict(PLATE, choices=[seed] * cells, cells=[{"seed": i} for i in range(cells)]),
                       l1=1.0, lr_psnr=40.0)


@pytest.fixture
def case(tmp_path: Path) -> K.Case:
    """A case with four face candidates (two shortlisted) and a set of four 3-character plate rows (one starred)."""
    session = S.Session(tmp_path / "no-models")
    c = K.Case.create(tmp_path / "CASE-7", session, "Examiner B")
    faces = session.add_set("faces", [_face(i) for i in range(4)])
    rows = session.add_set("rows", [_row(10 + i) for i in range(4)])
    session.star(faces.candidate_ids[2])
    session.star(faces.candidate_ids[0])
    session.star(rows.candidate_ids[1])
    c.save()
    return c


def _registry(tmp_path: Path) -> Path:
    reg = tmp_path / "registry.csv"
    reg.write_text("plate,owner\nAB1,x\nZZZ,y\nAB12,z\n7Q2,w\n", encoding="utf-8")
    return reg


# -- recorded in the case ----------------------------------------------------------------------------------
def test_face_search_is_recorded_survives_reopen_and_is_in_the_report(case: K.Case, index_dir: Path,
                                                                      embedder, tmp_path: Path) -> None:
    from core.search.faces import search_frames

    s = case.session
    ids = [e.candidate_id for e in s.shortlist][:2]  # the two faces
    frames = torch.stack([s.candidates[i].image for i in ids])
    index = load_index(index_dir)
    out = search_frames(index, frames, ids, embedder, top=2).to_dict()
    out.update(top=2, diverse=None, source="shortlist", candidates_offered=ids)
    rec = case.record_search(face_entry(out))
    assert rec["id"] == "search-1" and rec["kind"] == "faces" and rec["utc"].endswith("+00:00")
    q = rec["query"]
    assert q["index"] == {"name": "index", "manifest_sha256": index.manifest_sha256}
    assert len(index.manifest_sha256) == 64
    assert q["embedder"] == {"name": "dlib-face-resnet", "weights_sha256": embedder.version}
    assert (q["mode"], q["k"], q["top"], q["candidates"]) == ("min", None, 2, ids)
    assert [h["rank"] for h in rec["hits"]] == [1, 2] and rec["hits"][0]["candidate"] in ids
    assert rec["hits"][0]["photo"] in ("ann.png", "ben.png", "cat.png") and len(rec["hits"][0]["photo_sha256"]) == 64
    assert rec["hits"][0]["distance"] <= rec["hits"][1]["distance"]
    last = case.log.entries()[-1]
    assert last["action"] == "search_run" and last["details"]["hits"] == rec["hits"]
    assert "face search search-1" in describe(last) and "via candidate" in describe(last)

    case.save()
    text = (case.folder / K.MANIFEST).read_text()
    assert str(tmp_path) not in text  # the gallery is named, never located
    reopened = K.open_case(case.folder)
    assert reopened.audit_check.ok and reopened.searches == [rec]
    rec2 = reopened.record_search(face_entry(out))
    assert rec2["id"] == "search-2"
    html = build_report(reopened).html()
    assert "6. Database searches" in html and SEARCH_NOTICE in html and "search-2" in html
    assert rec["hits"][0]["record_id"] in html and "matched candidate" in html


def test_plate_search_is_recorded(case: K.Case, tmp_path: Path) -> None:
    from core.search.plate_registry import load_registry
    from core.search.plates import load_plate_classifier, position_probabilities, search_plate

    cells, info, inputs = case_plate_cells(case.folder)
    reg = load_registry(_registry(tmp_path))
    result = search_plate(position_probabilities(load_plate_classifier(), cells, **inputs), reg, top=5)
    out = {**result.to_dict(), "top": 5, "classifier": {"name": "plate-char.safetensors", "sha256": "c" * 64},
           "candidates": {k: info[k] for k in ("rows", "k")}}
    rec = case.record_search(plate_entry(out))
    q = rec["query"]
    assert q["registry"]["name"] == "registry.csv" and q["registry"]["sha256"] == reg.sha256
    assert q["candidates"] == {"rows": [case.session.shortlist[2].candidate_id], "k": [1, 1, 1]}
    assert len(rec["strings"]) == 5 and {h["kind"] for h in rec["hits"]} >= {"ranked"}
    assert all(h["record_id"] in ("AB1", "ZZZ", "7Q2") for h in rec["hits"])  # AB12 is of another length
    assert "plate search search-1" in summary_line(rec)
    case.save()
    reopened = K.open_case(case.folder)
    assert reopened.searches[0]["hits"] == rec["hits"]
    assert "Plate registry search" in build_report(reopened).html()


def test_old_cases_without_searches_open(case: K.Case) -> None:
    m = json.loads((case.folder / K.MANIFEST).read_text())
    del m["searches"]
    (case.folder / K.MANIFEST).write_text(json.dumps(m))
    reopened = K.open_case(case.folder)
    assert reopened.searches == [] and not reopened.warnings
    assert "No face gallery or plate registry search" in build_report(reopened).html()


def test_malformed_searches_are_reported_not_fatal(case: K.Case) -> None:
    m = json.loads((case.folder / K.MANIFEST).read_text())
    m["searches"] = "not a list"
    (case.folder / K.MANIFEST).write_text(json.dumps(m))
    reopened = K.open_case(case.folder)
    assert reopened.searches == [] and any("searches are malformed" in w for w in reopened.warnings)
    reopened.searches = [{"id": "search-1", "kind": "plates", "query": 3, "hits": [None, {"kind": "x"}],
                          "strings": "?", "notes": 5}]
    assert "search-1" in build_report(reopened).html()  # a damaged record never stops the report
    assert reopened.record_search({"kind": "faces", "query": {}, "hits": []})["id"] == "search-2"


# -- case candidates as a query ------------------------------------------------------------------------------
def test_case_candidates(case: K.Case) -> None:
    ids, frames, info = case_face_candidates(case.folder)
    short = [e.candidate_id for e in case.session.shortlist]
    assert ids == short[:2] and frames.shape == (2, 3, 64, 64) and info["selection"] == "shortlist"
    torch.testing.assert_close(frames[0], case.session.candidates[ids[0]].image)
    ids, _, _ = case_face_candidates(case.folder, "all")
    assert len(ids) == 4
    cells, info, _ = case_plate_cells(case.folder, "all")
    assert [tuple(c.shape) for c in cells] == [(4, 1, 16, 8)] * 3 and info["k"] == [4, 4, 4]
    row = case.session.candidates[info["rows"][1]]
    torch.testing.assert_close(cells[2][1], row.image[:, :, 16:24])
    cells, info, _ = case_plate_cells(case.folder, set_id="S2")
    assert info["selection"] == "set S2" and len(info["rows"]) == 4


def test_cli_faces_query_from_a_case(case: K.Case, index_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    short = [e.candidate_id for e in case.session.shortlist]
    capsys.readouterr()
    assert main(["faces", "query", str(index_dir), "--case", str(case.folder), "--top", "2"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["candidates"] == short[:2] and out["case"]["case"] == "CASE-7" and len(out["hits"]) == 2
    assert main(["faces", "query", str(index_dir), "--case", str(case.folder), "--all", "--record"]) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert len(out["candidates"]) == 4 and out["recorded_as"] == "search-1" and "recorded as search-1" in captured.err
    reopened = K.open_case(case.folder)
    assert reopened.audit_check.ok and reopened.searches[0]["query"]["source"] == "case all"
    assert reopened.searches[0]["query"]["candidates"] == out["candidates"]


def test_cli_plates_query_from_a_case(case: K.Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    reg = _registry(tmp_path)
    capsys.readouterr()
    assert main(["plates", "query", str(reg), "--case", str(case.folder), "--set", "S2", "--top", "3",
                 "--record"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["input"]["k"] == [4, 4, 4] and len(out["strings"]) == 3 and out["recorded_as"] == "search-1"
    rec = K.open_case(case.folder).searches[0]
    assert rec["kind"] == "plates" and rec["query"]["registry"]["name"] == "registry.csv"
    assert len(rec["query"]["classifier"]["sha256"]) == 64 and rec["query"]["candidates"]["set"] == "S2"


def test_cli_case_errors_are_one_line(case: K.Case, index_dir: Path, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    empty = K.Case.create(tmp_path / "EMPTY", S.Session(tmp_path / "no-models"), "C")
    cands = tmp_path / "cands"
    _photo(cands / "c.png", 5)
    reg = _registry(tmp_path)
    cases = [
        (["faces", "query", str(index_dir), "--all"], "--all needs --case"),
        (["faces", "query", str(index_dir)], "give a folder of candidates or --case"),
        (["faces", "query", str(index_dir), str(cands), "--case", str(case.folder)], "not both"),
        (["faces", "query", str(index_dir), "--case", str(tmp_path / "nope")], "no such case folder"),
        (["faces", "query", str(index_dir), "--case", str(empty.folder)], "no shortlisted face candidates"),
        (["faces", "query", str(index_dir), "--case", str(index_dir)], "not a case folder"),
        (["plates", "query", str(reg), "--case", str(empty.folder), "--all"], "has no plate rows"),
        (["plates", "query", str(reg), "--case", str(case.folder), "--set", "S9"], "no candidate set 'S9'"),
        (["plates", "query", str(reg), "--set", "S2", "--image", str(cands / "c.png")], "--set needs --case"),
    ]
    for argv, words in cases:
        capsys.readouterr()
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert err.startswith("varsr-search: error:") and words in err and "\n" not in err, (argv, err)


def test_fused_query_of_a_case_is_recorded_with_what_its_score_is(index_dir: Path, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from core.case.search import FUSED_SCORE

    session = S.Session()  # the installed face-8 and face-8-det
    c = K.Case.create(tmp_path / "CASE-F", session, "Examiner F")
    lr = torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(3))
    faces = session.add_set("faces", [S.Candidate(image=torch.rand(3, 64, 64), lr=lr.clone(), z=None,
                                                  recipe=dict(FACE, seed=i, index=0), l1=1.0, lr_psnr=40.0)
                                      for i in range(3)])
    session.set_consistency_operator("camera")  # the analyst's condition: the gallery gets its optics
    for cid in faces.candidate_ids:
        session.star(cid)
    c.save()
    capsys.readouterr()
    assert main(["faces", "query", str(index_dir), "--case", str(c.folder), "--mode", "fused", "--top", "3",
                 "--record"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["mode"] == "fused" and len(out["hits"]) == 3 and any("sigma 0.6" in n for n in out["notes"])
    reopened = K.open_case(c.folder)
    rec = reopened.searches[-1]
    assert rec["query"]["mode"] == "fused" and rec["query"]["distance"] == FUSED_SCORE
    assert "<th>fused score</th>" in build_report(reopened).html()  # not called a distance
