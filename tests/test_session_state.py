"""What the session holds beyond its candidates: the selection, the preview, plate rows' cells, the
shared model cache, and restoring saved work (core/workbench/session.py, core/workbench/catalogue.py)."""

from __future__ import annotations

from pathlib import Path

import torch

from core.workbench import session as S
from core.workbench.catalogue import ModelCache


def _cands(model, n: int = 4, seed: int = 0) -> list[S.Candidate]:
    return S.generate_candidates(model, torch.rand(3, 8, 8), n, seed)


def test_selection_and_preview_are_announced(tiny_face_model, tmp_path: Path) -> None:
    s = S.Session(tmp_path)
    seen: list[tuple] = []
    s.events.current_changed.connect(lambda c: seen.append(("current", c)))
    s.events.preview_changed.connect(lambda new, old: seen.append(("preview", new, old)))
    cset = s.add_set("a", _cands(tiny_face_model))
    a, b = (s.candidates[i] for i in cset.candidate_ids[:2])
    s.set_current(a)
    s.set_preview(b)
    s.set_current(b)  # a new selection drops the preview
    assert s.current is b and s.preview is None
    assert seen == [("current", a), ("preview", b, None), ("preview", None, b), ("current", b)]


def test_dropped_sets_take_their_rows_cells_and_selection(tiny_face_model, tmp_path: Path) -> None:
    s = S.Session(tmp_path, max_candidates=4)
    first = s.add_set("a", _cands(tiny_face_model))
    s.set_row_cells(first.candidate_ids[:1], [[s.candidates[first.candidate_ids[1]]]])
    s.set_current(s.candidates[first.candidate_ids[0]])
    assert s.cells_of(first.candidate_ids[0]) is not None
    s.add_set("b", _cands(tiny_face_model, seed=1))
    assert s.cells_of(first.candidate_ids[0]) is None and s.current is None and s.row_cells == {}


def test_restore_replaces_everything_and_continues_the_ids(tiny_face_model, tmp_path: Path) -> None:
    s = S.Session(tmp_path)
    s.add_set("old", _cands(tiny_face_model))
    cands = _cands(tiny_face_model, seed=5)
    for i, c in enumerate(cands):
        c.id = f"C{i + 10:04d}"
    cs = S.CandidateSet("S7", "restored", [c.id for c in cands])
    added: list[S.CandidateSet] = []
    s.events.candidates_added.connect(added.append)
    s.restore(evidence=None, region=None, domain="plate", n_cells=3, cell_bounds=None, model_override=None,
              sets=[(cs, cands)], shortlist=[S.ShortlistEntry(cands[0].id, "n")], next_candidate=14, next_set=8)
    assert list(s.candidates) == cs.candidate_ids and s.sets == [cs] and added == [cs]
    assert (s.domain, s.n_cells, s.note(cands[0].id)) == ("plate", 3, "n")
    assert (s.next_candidate_number, s.next_set_number) == (14, 8)
    assert s.add_set("new", _cands(tiny_face_model, 4, 1)).id == "S8" and "C0014" in s.candidates
    s.clear()
    assert s.candidates == {} and s.sets == [] and s.shortlist == [] and s.next_candidate_number == 1


def test_model_cache_loads_each_model_once(tiny_face_model) -> None:
    cache = ModelCache(tiny_face_model.bundle_path.parent)
    m = cache.load("face-8")
    assert cache.load("face-8") is m and list(cache) == ["face-8"]
    assert m.weights_sha256 == tiny_face_model.weights_sha256
