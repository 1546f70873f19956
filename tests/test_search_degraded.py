"""Degraded-gallery matching: gallery photos reduced and restored as the probe was, its cache, and the
fused record score."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from core.search.degraded import (
    CACHE_DIR,
    degraded_embeddings,
    fused_record_scores,
    gallery_frames,
    record_distances,
    spec_for,
    standardise,
)
from core.search.errors import SearchCancelled, SearchError
from core.search.faces import DegradedQuery, degraded_query, search_fused
from core.search.gallery import build_index, load_index
from core.search.rank import RecordTable
from core.workbench.candidates import Candidate
from tests.helpers.gallery import FakeEmbedder, no_face, photo


class FrameEmbedder(FakeEmbedder):
    """The fake embedder, also for canonical frames (as the real ones embed candidates)."""

    def embed_frames(self, frames: torch.Tensor) -> np.ndarray:
        return self.embed_chips([self.frame_chip(f) for f in frames])


class MeanDet:
    """A stand-in deterministic model: restores an LR face as its block means enlarged (nearest)."""

    class config:  # noqa: N801 - mimics ModelConfig's attributes
        name, domain, latent_dim, scale, hr_size = "fake-det", "face", 0, 4, (16, 16)

    weights_sha256 = "abc"

    def generate(self, lr: torch.Tensor, z: None) -> torch.Tensor:
        return torch.nn.functional.interpolate(lr, scale_factor=4, mode="nearest")


@pytest.fixture
def index(tmp_path: Path):
    g = tmp_path / "gallery"
    for name, colour in (("ann", (200, 40, 40)), ("ben", (40, 200, 40)), ("cat", (40, 40, 200))):
        photo(g / f"{name}.png", colour)
    build_index(g, tmp_path / "idx", FrameEmbedder(), detector=no_face)
    return load_index(tmp_path / "idx")


def test_record_distances_take_each_records_closest_photo() -> None:
    table = RecordTable(["b", "a", "b"])  # records sorted: a, b
    photos = np.array([[5.0, 0], [1.0, 0], [2.0, 0]], np.float32)
    d = record_distances(np.zeros((1, 2), np.float32), photos, table)
    np.testing.assert_allclose(d, [[1.0, 2.0]])


def test_standardise_and_a_constant_row() -> None:
    z = standardise(np.array([1.0, 2.0, 3.0]))
    assert abs(z.mean()) < 1e-9 and abs(z.std() - 1) < 1e-9
    assert not standardise(np.ones(4)).any()


def test_fused_score_lets_the_degraded_gallery_decide_a_tie() -> None:
    table = RecordTable(["a", "b", "c"])
    photos = np.array([[0.0, 0], [0.0, 1], [0.0, 5]], np.float32)
    det = np.array([1.0, 0.5], np.float32)  # a and b equally close to det
    cands = np.array([[1.0, 0.5], [1.0, 0.5]], np.float32)
    degraded = np.array([[3.0, 3], [1.0, 0.5], [9.0, 9]], np.float32)  # b's degraded photo matches det
    s = fused_record_scores(det, cands, photos, degraded, table)
    assert np.argmin(s) == 1 and np.argmax(s) == 2
    with pytest.raises(SearchError, match="degraded embeddings"):
        fused_record_scores(det, cands, photos, degraded[:2], table)


def test_gallery_frames_follow_the_indexed_eyes(index) -> None:
    frames, missing = gallery_frames(index, [0, 1], 16)
    assert frames.shape == (2, 3, 16, 16) and missing == [] and 0 <= float(frames.min()) and float(frames.max()) <= 1
    # a red photo stays red in its frame
    assert float(frames[0, 0].mean()) > float(frames[0, 1].mean())


def test_degraded_embeddings_are_cached_and_reused(index) -> None:
    emb, det = FrameEmbedder(), MeanDet()
    seen: list[tuple[int, int]] = []
    first, notes = degraded_embeddings(index, det, emb, 0.0, progress=lambda i, n: seen.append((i, n)))
    assert first.shape == (3, FrameEmbedder.dim) and seen[-1] == (3, 3) and "computed for 3 of 3" in notes[0]
    cached = list((Path(index.folder) / CACHE_DIR).iterdir())
    assert {p.suffix for p in cached} == {".npy", ".json"}
    assert json.loads(next(p for p in cached if p.suffix == ".json").read_text())["spec"]["det_name"] == "fake-det"
    calls = emb.calls
    again, notes = degraded_embeddings(index, det, emb, 0.0)
    np.testing.assert_array_equal(first, again)
    assert emb.calls == calls and notes == []  # nothing recomputed
    blurred, _ = degraded_embeddings(index, det, emb, 0.6)  # another condition: its own cache
    assert emb.calls == calls + 3 and len(list((Path(index.folder) / CACHE_DIR).glob("*.npy"))) == 2
    assert not np.array_equal(blurred, first)


def test_degraded_embeddings_cancel_writes_nothing(index) -> None:
    with pytest.raises(SearchCancelled):
        degraded_embeddings(index, MeanDet(), FrameEmbedder(), 0.0, cancelled=lambda: True)
    assert not (Path(index.folder) / CACHE_DIR).exists()


def test_degraded_embeddings_refuse_a_latent_model_or_another_embedder(index) -> None:
    class Latent(MeanDet):
        class config(MeanDet.config):  # noqa: N801
            latent_dim = 16

    with pytest.raises(SearchError, match="deterministic face model"):
        spec_for(Latent(), 0.0, index)
    with pytest.raises(SearchError, match="built with"):
        degraded_embeddings(index, MeanDet(), FrameEmbedder("v2"), 0.0)


def test_search_fused_names_the_det_output_and_says_how(index) -> None:
    emb = FrameEmbedder()
    frames = torch.zeros(2, 3, 16, 16)
    frames[:, 1] = 0.8  # green candidates: ben
    query = DegradedQuery(frames[:1].clone(), MeanDet(), 0.0, "det.png")
    res = search_fused(index, frames, ["c0", "c1"], query, emb, top=2)
    out = res.to_dict()
    assert out["mode"] == "fused" and len(out["hits"]) == 2
    assert out["hits"][0]["record_id"].endswith("ben") and out["hits"][0]["candidate"] in ("c0", "c1", "det.png")
    assert any("degraded" in n for n in out["notes"])


def _cand(lr: torch.Tensor, model: str = "m") -> Candidate:
    return Candidate(image=torch.rand(3, 16, 16), lr=lr, z=None, recipe={"model": model, "domain": "face"},
                     l1=0.0, lr_psnr=40.0, scored_under="camera")


def test_degraded_query_needs_one_face_and_a_det_model(tiny_bundle: Path, tmp_path: Path) -> None:
    import core
    from core.model.bundle import save_bundle
    from core.model.varsr import VarSR
    from tests.conftest import tiny_config

    lr = torch.rand(3, 8, 8)
    with pytest.raises(SearchError, match="more than one input"):
        degraded_query([_cand(lr), _cand(torch.rand(3, 8, 8))])
    with pytest.raises(SearchError, match="deterministic baseline"):
        degraded_query([_cand(lr)], lambda _n: core.load_model(tiny_bundle))
    save_bundle(VarSR(tiny_config("face-8", latent_dim=0)), tiny_bundle.parent / "face-8-det")
    q = degraded_query([_cand(lr), _cand(lr.clone())], lambda _n: core.load_model(tiny_bundle))
    assert q.det_frames.shape == (1, 3, 64, 64) and q.det_model.config.latent_dim == 0
    assert q.sigma == pytest.approx(0.6)  # the camera operator's optics


def test_a_photo_gone_since_indexing_keeps_its_sharp_embedding_and_a_damaged_cache_is_redone(index) -> None:
    emb, det = FrameEmbedder(), MeanDet()
    index.photo_path(1).unlink()
    out, notes = degraded_embeddings(index, det, emb, 0.0)
    np.testing.assert_array_equal(out[1], index.embeddings[1])
    assert any("could not be read" in n for n in notes) and any("computed for 2 of 3" in n for n in notes)
    npy = next((Path(index.folder) / CACHE_DIR).glob("*.npy"))
    npy.write_bytes(npy.read_bytes()[:-8])  # truncated by a crash
    again, notes = degraded_embeddings(index, det, emb, 0.0)
    np.testing.assert_array_equal(again, out)
    assert any("computed for 2 of 3" in n for n in notes)


def test_fused_score_of_several_frames_averages_their_det_distances() -> None:
    table = RecordTable(["a", "b", "c"])
    photos = np.array([[0.0, 0], [0.0, 1], [0.0, 5]], np.float32)
    degraded = photos + 0.5
    cands = np.array([[0.0, 0.4]], np.float32)
    dets = np.array([[0.0, 0.2], [0.0, 1.4]], np.float32)
    two = fused_record_scores(dets, cands, photos, degraded, table)

    def mean_dist(q: np.ndarray, g: np.ndarray) -> np.ndarray:  # one photo per record here
        return np.linalg.norm(q[:, None] - g[None], axis=-1).mean(0)

    want = sum(standardise(mean_dist(q, g)) for q, g in ((dets, photos), (cands, photos), (dets, degraded)))
    np.testing.assert_allclose(two, want, rtol=1e-5)
    # the frames' mean distance, not the distance of their mean embedding
    assert not np.allclose(two, fused_record_scores(dets.mean(0), cands, photos, degraded, table))


def _video(lr: torch.Tensor, clip: str) -> Candidate:
    return Candidate(image=torch.rand(3, 16, 16), lr=lr, z=None, l1=0.0, lr_psnr=40.0,
                     recipe={"kind": "video-face", "model": "m", "domain": "face", "clip": {"sha256": clip}})


def test_degraded_query_takes_the_frames_of_one_tracked_clip(tiny_bundle: Path) -> None:
    import core
    from core.model.bundle import save_bundle
    from core.model.varsr import VarSR
    from tests.conftest import tiny_config

    save_bundle(VarSR(tiny_config("face-8", latent_dim=0)), tiny_bundle.parent / "face-8-det")
    load = lambda _n: core.load_model(tiny_bundle)  # noqa: E731
    f1, f2 = torch.rand(3, 8, 8), torch.rand(3, 8, 8)
    q = degraded_query([_video(f1, "clip"), _video(f1.clone(), "clip"), _video(f2, "clip")], load)
    assert q.det_frames.shape == (2, 3, 64, 64)  # one -det output per frame, not per candidate
    with pytest.raises(SearchError, match="more than one input"):
        degraded_query([_video(f1, "clip"), _video(f2, "other clip")], load)
    with pytest.raises(SearchError, match="more than one input"):
        degraded_query([_video(f1, "clip"), _cand(f2)], load)
