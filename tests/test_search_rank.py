"""Ranking records against candidates (min vs knn, several photos per record, numpy vs faiss) and diverse picks."""

from __future__ import annotations

import numpy as np
import pytest

from core.search import rank as rank_mod
from core.search.diverse import farthest_point_pick
from core.search.errors import SearchError
from core.search.rank import RecordTable, distances, faiss_available, rank


def unit(*v: float) -> np.ndarray:
    a = np.asarray(v, dtype=np.float32)
    return a / np.linalg.norm(a)


def test_distances_are_euclidean() -> None:
    rng = np.random.default_rng(0)
    q, g = rng.normal(size=(5, 8)).astype(np.float32), rng.normal(size=(7, 8)).astype(np.float32)
    want = np.linalg.norm(q[:, None] - g[None], axis=-1)
    assert np.allclose(distances(q, g), want, atol=1e-5)


def test_min_and_knn_modes_rank_differently() -> None:
    """A: one candidate nearly on it, the rest far. B: every candidate moderately close."""
    query = np.array([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]], np.float32)
    a = np.array([0.1, 0.0], np.float32)  # 0.1 from candidate 0, ~3.9 from 1 and 2
    b = np.array([1.3, 1.3], np.float32)  # ~1.84, ~3.0, ~3.0
    far = np.array([10.0, 10.0], np.float32)
    gallery = np.stack([far, a, b])
    ids = ["far", "A", "B"]
    by_min = rank(query, gallery, ids, mode="min", top=3)
    assert [h.record_id for h in by_min] == ["A", "B", "far"]
    assert by_min[0].candidate == 0 and by_min[0].distance == pytest.approx(0.1, abs=1e-5)
    assert by_min[0].row == 1
    by_knn = rank(query, gallery, ids, mode="knn", k=3, top=3)
    assert [h.record_id for h in by_knn] == ["B", "A", "far"]
    d_b = np.linalg.norm(query - b, axis=1)
    assert by_knn[0].distance == pytest.approx(d_b.mean(), abs=1e-4)
    assert by_knn[0].candidate == int(np.argmin(d_b))
    assert by_knn[0].candidate_distances == pytest.approx(d_b.tolist(), abs=1e-4)
    # k=1 is the min mode
    assert [h.record_id for h in rank(query, gallery, ids, mode="knn", k=1)] == ["A", "B", "far"]


def test_a_record_is_as_close_as_its_closest_photo() -> None:
    query = np.stack([unit(1, 0, 0), unit(0, 1, 0)])
    gallery = np.stack([unit(0, 0, 1), unit(1, 0.05, 0), unit(-1, 0, 0), unit(0.5, 0.5, 0.7)])
    hits = rank(query, gallery, ["P", "P", "Q", "R"], top=5)
    assert [h.record_id for h in hits] == ["P", "R", "Q"]  # top is capped at the number of records
    assert hits[0].row == 1 and hits[0].candidate == 0
    assert hits[0].distance == pytest.approx(float(np.linalg.norm(query[0] - gallery[1])), abs=1e-5)


def test_chunked_scoring_matches_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(1)
    gallery = rng.normal(size=(500, 16)).astype(np.float32)
    ids = [f"r{i // 3}" for i in range(500)]  # three photos per record
    query = rng.normal(size=(6, 16)).astype(np.float32)
    whole = rank(query, gallery, ids, mode="knn", k=2, top=15)
    monkeypatch.setattr(rank_mod, "CHUNK", 7)
    chunked = rank(query, gallery, ids, mode="knn", k=2, top=15)
    assert [(h.record_id, h.row, h.candidate) for h in whole] == [(h.record_id, h.row, h.candidate) for h in chunked]
    assert np.allclose([h.distance for h in whole], [h.distance for h in chunked], atol=1e-5)


@pytest.mark.skipif(not faiss_available(), reason="faiss-cpu not installed")
def test_faiss_shortlist_is_exact_for_min_mode() -> None:
    rng = np.random.default_rng(2)
    gallery = rng.normal(size=(3000, 32)).astype(np.float32)
    ids = [f"r{i % 1200}" for i in range(3000)]  # 2-3 photos per record, interleaved
    query = rng.normal(size=(8, 32)).astype(np.float32)
    a = rank(query, gallery, ids, top=25, backend="numpy")
    b = rank(query, gallery, ids, top=25, backend="faiss")
    assert [(h.record_id, h.row, h.candidate) for h in a] == [(h.record_id, h.row, h.candidate) for h in b]
    assert np.allclose([h.distance for h in a], [h.distance for h in b], atol=1e-4)


def test_rank_rejects_bad_input() -> None:
    g = np.zeros((3, 4), np.float32)
    with pytest.raises(SearchError, match="mode"):
        rank(np.zeros((1, 4)), g, ["a", "b", "c"], mode="mean")
    with pytest.raises(SearchError, match="dimensions"):
        rank(np.zeros((1, 5)), g, ["a", "b", "c"])
    with pytest.raises(SearchError, match="no query"):
        rank(np.zeros((0, 4)), g, ["a", "b", "c"])
    with pytest.raises(SearchError, match="record ids"):
        rank(np.zeros((1, 4)), g, ["a", "b"])
    with pytest.raises(SearchError, match="backend"):
        rank(np.zeros((1, 4)), g, ["a", "b", "c"], backend="gpu")


def test_record_table_groups_rows() -> None:
    t = RecordTable(["b", "a", "b", "c"])
    assert list(t.names) == ["a", "b", "c"] and not t.single and t.max_photos == 2
    assert RecordTable(["x", "y"]).single


def test_diverse_pick_spreads_over_clusters() -> None:
    """Three identities, five near-duplicate samples each: a pick of 3 takes one of each."""
    rng = np.random.default_rng(3)
    centres = np.array([[0, 0, 0], [5, 0, 0], [0, 5, 0]], np.float32)
    emb = np.concatenate([c + 0.05 * rng.normal(size=(5, 3)) for c in centres]).astype(np.float32)
    pick = farthest_point_pick(emb, 3)
    assert sorted(i // 5 for i in pick.indices) == [0, 1, 2]
    assert pick.radius < 0.5 and pick.gaps[0] == 0.0 and min(pick.gaps[1:]) > 4.0
    assert farthest_point_pick(emb, 3).indices == pick.indices  # deterministic
    assert len(farthest_point_pick(emb, 99).indices) == 15  # k is capped at N
    assert farthest_point_pick(emb, 2, first=7).indices[0] == 7


def test_diverse_pick_is_far_more_spread_than_the_first_k() -> None:
    rng = np.random.default_rng(4)
    emb = np.concatenate([rng.normal(size=(12, 8)) * 0.1, rng.normal(size=(4, 8)) * 0.1 + 3]).astype(np.float32)
    k = 4
    pick = farthest_point_pick(emb, k).indices

    def min_gap(ix: list[int]) -> float:
        d = distances(emb[ix], emb[ix])
        return float(d[~np.eye(len(ix), dtype=bool)].min())

    assert any(i >= 12 for i in pick)
    assert min_gap(pick) > min_gap(list(range(k)))


def test_diverse_pick_takes_duplicates_last_and_checks_input() -> None:
    emb = np.array([[0, 0], [0, 0], [1, 0], [1, 0]], np.float32)
    assert sorted(farthest_point_pick(emb, 2).indices) in ([0, 2], [0, 3], [1, 2], [1, 3])
    with pytest.raises(SearchError):
        farthest_point_pick(np.zeros((0, 2)), 2)
    with pytest.raises(SearchError):
        farthest_point_pick(emb, 0)
