"""core.video.face_eval on real CelebA: two probes, two candidates per frame (skipped without ../shared/data)."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
pytestmark = [pytest.mark.data,
              pytest.mark.skipif(not (SHARED_DATA / "celeba" / "img_align_celeba").is_dir(),
                                 reason="../shared/data/celeba absent")]


def test_face_clip_evaluation_runs_on_two_probes(tmp_path: Path) -> None:
    import torch

    from core.video.face_eval import FRAMES, METHODS, evaluate, markdown

    torch.set_num_threads(1)
    cache = Path(__file__).resolve().parents[1] / ".cache" / "search-eval"  # the identity evaluation's index
    res = evaluate(SHARED_DATA, k=2, limit=2, cache_dir=cache, log=None)
    assert res["probes"] == 2 and res["records"] > 100 and res["temperature"] > 0
    for m in METHODS:
        for f in (*FRAMES, "best"):
            assert 1 <= res["summary"][f"{m}/{f}"]["median_rank"] <= res["records"]
    assert "| det | 8 |" in markdown(res)
