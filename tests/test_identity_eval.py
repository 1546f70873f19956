"""Identity-search evaluation: fusions, ranks and the paired test, on synthetic embeddings."""

from __future__ import annotations

import numpy as np
import pytest

from core.cli.search_eval import parse_pair
from core.errors import VarSRError
from core.search.identity_eval import (
    Gallery,
    fuse,
    mcnemar_p,
    method_ranks,
    record_distances,
    split_probes,
    summarise,
    to_markdown,
    true_rank,
)


def gallery() -> Gallery:
    # three records on a line; record "b" has two photos, the nearest at x = 2
    emb = np.array([[0.0, 0], [2.0, 0], [5.0, 0], [9.0, 0]], dtype=np.float32)
    return Gallery(emb, np.array([0, 1, 1, 2]), ["a", "b", "c"])


def test_record_distance_is_the_closest_photo() -> None:
    d = record_distances(np.array([[4.0, 0]], dtype=np.float32), gallery())
    assert np.allclose(d, [[4.0, 1.0, 5.0]])


def test_fusions_rank_records_as_documented() -> None:
    d = np.array([[0.1, 0.5, 0.9], [0.8, 0.2, 0.9], [0.7, 0.3, 0.05]])
    assert fuse(d, "min").argmin() == 2  # one lucky candidate wins under min
    assert fuse(d, "knn", k=2).argmin() == 1  # the record two candidates agree on wins under knn
    rrf = fuse(d, "rrf")
    assert rrf.argmin() == 1 and rrf.shape == (3,)
    weighted = fuse(d, "rrf", weights=np.array([10.0, 1, 1]))  # a heavy first query decides
    assert weighted.argmin() == 0
    with pytest.raises(ValueError):
        fuse(d, "max")


def test_true_rank_counts_ties_against_the_truth() -> None:
    assert true_rank(np.array([0.3, 0.1, 0.2]), 0) == 3
    assert true_rank(np.array([0.1, 0.1, 0.2]), 1) == 2


def test_method_ranks_and_summary() -> None:
    g = gallery()
    cands = np.array([[1.9, 0], [8.5, 0], [2.2, 0]], dtype=np.float32)
    r = method_ranks(np.array([0.2, 0], dtype=np.float32), cands, g, true_record=1)
    assert r["det"] == 2 and r["one"] == 1 and r["min"] == 1 and r["knn"] == 1
    assert set(r) == {"det", "one", "min", "knn", "mean", "rrf", "det+min", "det+rrf"}
    s = summarise(np.array([1, 5, 12, 60]))
    assert s["top1"] == 25.0 and s["top10"] == 50.0 and s["top20"] == 75.0 and s["top50"] == 75.0
    assert s["top10_se"] == pytest.approx(25.0)


def test_mcnemar_is_exact_and_symmetric() -> None:
    a = np.array([True] * 8 + [False] * 2)
    b = np.array([False] * 8 + [True] * 2)
    p = mcnemar_p(a, b)
    assert p == pytest.approx(2 * (1 + 10 + 45) / 1024) and p == mcnemar_p(b, a)
    assert mcnemar_p(a, a) == 1.0


def test_split_keeps_one_probe_per_identity_with_two_photos() -> None:
    probes, rest = split_probes(["x", "x", "y", "z", "z", "z"], ["3", "1", "2", "4", "6", "5"])
    assert probes == [1, 3] and sorted(rest) == [0, 2, 4, 5]


def test_pairs_and_markdown() -> None:
    assert parse_pair("new=runs/a/bundle:runs/b/bundle") == ("new", "runs/a/bundle", "runs/b/bundle", None)
    assert parse_pair("face-8:face-8-det") == ("face-8", "face-8", "face-8-det", None)
    assert parse_pair("face-16 T1=face-16@1:face-16-det") == ("face-16 T1", "face-16", "face-16-det", 1.0)
    for bad in ("x=face-16@hot:face-16-det", "x=face-16@11:face-16-det"):
        with pytest.raises(VarSRError):
            parse_pair(bad)
    with pytest.raises(VarSRError):
        parse_pair("face-8")
    m = {k: {**summarise(np.array([1, 30])), "p_vs_det_top10": 1.0}
         for k in ("bicubic", "det", "one", "min", "knn", "mean", "rrf", "det+min", "det+rrf")}
    res = {"probes": 2, "gallery_photos": 4, "records": 3, "n_candidates": 16, "seed": 0,
           "hr": summarise(np.array([1, 2])),
           "blocks": [{"label": "x", "varsr": "face-16", "det": "face-16-det", "lr_size": [16, 16],
                       "degradation": "camera", "methods": m}]}
    text = to_markdown(res)
    assert "degradation `camera`" in text and "| det + 16, RRF |" in text
