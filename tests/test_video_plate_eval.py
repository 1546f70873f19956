"""core.video.plate_eval: filming a row into frames and the 1-to-16-frame summary (no data needed)."""

from __future__ import annotations

import numpy as np

from core.video.plate_eval import BLURRED, FRAMES, film, markdown, summarise


def test_film_makes_distinct_frames_of_the_right_size() -> None:
    rng = np.random.default_rng(0)
    scene = (rng.random((32, 7 * 16)) * 255).astype(np.uint8)
    frames = film(scene, 7, (2, 4), 16, seed=3)
    assert frames.shape == (16, 4, 14) and frames.dtype == np.uint8
    assert len({f.tobytes() for f in frames}) == 16  # sub-pixel motion, noise: every frame differs
    again = film(scene, 7, (2, 4), 16, seed=3)
    assert np.array_equal(frames, again)  # seeded
    assert BLURRED


def test_summary_and_table() -> None:
    keys = [f"varsr/{w}/{f}" for w in ("uniform", "confidence", "sharpness") for f in FRAMES]
    keys += ["varsr/best-confidence/1", "varsr/best-sharpness/1"]
    records = [{"ranks": {k: (1 if k.endswith("/8") or i % 4 == 0 else 50) for k in keys}} for i in range(20)]
    s = summarise(records, boot=200)
    assert s["varsr/uniform/8"]["top10"] == 1.0 and s["varsr/uniform/1"]["top10"] == 0.25
    assert s["varsr/uniform/8"]["ratio_to_1_frame"] == 4.0 and s["varsr/uniform/1"]["n"] == 20
    table = markdown({"summary": s})
    assert "| varsr | uniform | – | 25.0 ± 9.7 |" in table and "16 frames" in table


def test_frames_are_read_by_bicubic_without_a_model() -> None:
    from core.plates.reading import load_reader
    from core.video.plate_eval import read_frames_probs

    rng = np.random.default_rng(1)
    frames = film((rng.random((32, 5 * 16)) * 255).astype(np.uint8), 5, (2, 4), 3, seed=0)
    probs, inverted = read_frames_probs(load_reader(), frames, 5, (2, 4), {}, 4, 0, readers=("bicubic",))
    assert set(probs) == {"bicubic"} and probs["bicubic"].shape[:2] == (3, 5) and isinstance(inverted, bool)
    assert np.allclose(probs["bicubic"].sum(-1), 1.0, atol=1e-5)
