"""core.video.face_eval: filming a face into frames and fusing frames' det and candidates (no data needed)."""

from __future__ import annotations

import numpy as np
import torch

from core.search.identity_eval import Gallery
from core.video.face_eval import (
    BLURRED,
    FRAMES,
    OCCLUDED,
    clip_ranks,
    film,
    frame_seeds,
    markdown,
    probe_ranks,
    summary,
)


def gallery() -> Gallery:
    # records a, b, c on a line at x = 0, 10, 20; the truth is b (index 1)
    return Gallery(np.array([[0.0, 0], [10.0, 0], [20.0, 0]], dtype=np.float32), np.array([0, 1, 2]), ["a", "b", "c"])


def test_film_makes_distinct_seeded_frames() -> None:
    torch.manual_seed(0)
    hr = torch.rand(3, 64, 64)
    seeds = frame_seeds(7, 3)
    assert seeds[0] == 10 and len(seeds) == max(FRAMES)  # frame 0 is the single-frame evaluation's probe
    lr = film(hr, (16, 16), seeds)
    assert lr.shape == (16, 3, 16, 16)
    assert len({f.numpy().tobytes() for f in lr}) == 16
    assert torch.equal(lr, film(hr, (16, 16), seeds)) and BLURRED and OCCLUDED


def test_frames_fuse_by_min_and_oracle_frame() -> None:
    g = gallery()
    # det: frame 0 lands near a (truth rank 2), frame 1 on b; later frames near c
    e_det = np.array([[3.0, 0]] + [[10.0, 0]] + [[19.0, 0]] * 14, dtype=np.float32)
    e_c = np.repeat(e_det[:, None], 2, axis=1)
    e_c[0, 1] = [11.0, 0]  # frame 0's second candidate already finds b
    r = clip_ranks(e_det, e_c, g, truth=1)
    assert r["det/1"] == 2 and r["det/2"] == 1 and r["det/16"] == 1  # min over frames keeps the good frame
    assert r["min/1"] == 1 and r["det+min/1"] == 1
    assert r["det/best"] == 1 and r["min/best"] == 1
    assert r["mean/16"] == 2  # the mean of all candidates drifts towards c
    assert set(k.split("/")[1] for k in r) == {*(str(f) for f in FRAMES), "best"}


def test_fused_frames_add_the_degraded_gallery() -> None:
    g = gallery()
    e_det = np.array([[4.0, 0]] * 16, dtype=np.float32)  # det alone: a (4 away) beats b, the truth (6 away)
    e_c = np.repeat(e_det[:, None], 2, axis=1)
    degraded = np.array([[0.0, 9], [4.0, 0], [20.0, 9]], dtype=np.float32)  # b, degraded, looks like the probes
    r = clip_ranks(e_det, e_c, g, truth=1, degraded=degraded)
    assert r["det/8"] == 2 and r["fused/8"] == 1 and r["fused/best"] == 1
    assert "fused/1" not in clip_ranks(e_det, e_c, g, truth=1)  # no degraded gallery, no fused rows


class FakeModel:
    def generate(self, lr: torch.Tensor, z: object) -> torch.Tensor:
        return lr

    def sample(self, lr: torch.Tensor, n: int, seed: int = 0, temperature: float = 1.0) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        return lr[:, None] + 0.01 * temperature * torch.randn(lr.shape[0], n, *lr.shape[1:], generator=g)


class FakeEmbedder:
    def embed_frames(self, x: torch.Tensor) -> np.ndarray:
        return np.stack([x.mean((1, 2, 3)).numpy() * 20, np.zeros(len(x))], 1).astype(np.float32)


def test_probe_ranks_and_summary_with_fakes() -> None:
    lr = torch.full((16, 3, 4, 4), 0.5)  # embeds at x = 10: record b
    lr[0] = 0.1  # the first frame looks like a
    r = probe_ranks(FakeModel(), FakeModel(), FakeEmbedder(), lr, gallery(), 1, k=3, seed=0, temperature=1.0)
    assert r["det/1"] == 2 and r["det/8"] == 1 and r["min/8"] == 1
    s = summary([r, {**r, "det/8": 30, "min/8": 30}])
    assert s["det/8"]["top10"] == 50.0 and s["det/1"]["top10"] == 100.0
    assert s["det/8"]["ratio_8_to_1"] == 0.5 and s["det/8"]["p_vs_1_frame"] == 1.0
    table = markdown({"summary": s, "k": 3})
    assert "| det | 8 |" in table and "0.50x" in table and "16 fr." in table
