"""core.video.combine and frame folders in `varsr-search plates batch`."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from core.errors import VarSRError
from core.video.combine import combine, combine_probs, frame_images, relative_weights, sharpness


def _p(rows: list[list[float]]) -> np.ndarray:
    a = np.asarray(rows, dtype=np.float64)
    return a / a.sum(-1, keepdims=True)


def test_weighted_product() -> None:
    a = _p([[0.6, 0.3, 0.1], [0.2, 0.2, 0.6]])
    b = _p([[0.5, 0.4, 0.1], [0.1, 0.7, 0.2]])
    assert np.array_equal(combine_probs([a]), a)  # one frame is unchanged
    # the product tempered by the total weight: the confidence of one frame, the product's ranking
    both = combine_probs([a, b])
    want = (a * b) ** 0.5 / ((a * b) ** 0.5).sum(-1, keepdims=True)
    assert np.allclose(both, want)
    assert (np.argsort(both, -1) == np.argsort(a * b, -1)).all()
    assert np.allclose(combine_probs([a, b], [1.0, 0.0]), a)  # weight 0 = dropped
    half = combine_probs([a, b], [1.0, 0.5])
    assert np.allclose(half, (a * b**0.5) ** (1 / 1.5) / ((a * b**0.5) ** (1 / 1.5)).sum(-1, keepdims=True))
    # many identical frames do not make a position certain
    many = combine_probs([a] * 17)
    assert np.allclose(many, a)
    zero = _p([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # a slip never rules a class out
    assert (combine_probs([zero, b]) > 0).all()
    with pytest.raises(ValueError):
        combine_probs([a, b[:1]])
    with pytest.raises(ValueError):
        combine_probs([a, b], [0.0, 0.0])


def test_weights_and_record() -> None:
    assert relative_weights([2.0, 1.0, 4.0]) == [0.5, 0.25, 1.0]
    assert relative_weights([2.0, 1.0, 4.0], [False, False, True]) == [1.0, 0.5, 0.0]
    a = _p([[0.9, 0.1], [0.5, 0.5]])
    b = _p([[0.6, 0.4], [0.2, 0.8]])
    c = combine([a, b], ["f0", "f7"], "confidence", details=[{"time": 0.0}, {"time": 0.28}])
    assert [f["id"] for f in c.frames] == ["f0", "f7"] and c.frames[0]["weight"] == 1.0
    assert c.frames[1]["weight"] == pytest.approx(0.7 / 0.7, abs=1e-6) or c.frames[1]["weight"] < 1.0
    assert c.record()["frames"][1]["time"] == 0.28 and c.record()["quality"] == "confidence"
    with pytest.raises(ValueError, match="unknown quality"):
        combine([a], ["x"], "magic")


def test_sharpness_falls_with_blur() -> None:
    rng = np.random.default_rng(0)
    crisp = (rng.random((8, 32)) > 0.5) * 200.0 + 20
    blurred = (crisp + np.roll(crisp, 1, 1) + np.roll(crisp, 2, 1)) / 3
    assert sharpness(crisp) > sharpness(blurred) > 0
    assert sharpness(np.full((4, 4), 7.0)) == 0.0


def test_frame_images(tmp_path) -> None:
    f = tmp_path / "one.png"
    f.write_bytes(b"x")
    assert frame_images(f) == [f]
    d = tmp_path / "frames"
    d.mkdir()
    with pytest.raises(VarSRError, match="no frame images"):
        frame_images(d)
    for n in ("b.png", "a.jpg", "notes.txt", ".hidden.png"):
        (d / n).write_bytes(b"x")
    assert [p.name for p in frame_images(d)] == ["a.jpg", "b.png"]


def _rendered_row(text: str, px_h: int, seed: int, shift: float) -> Image.Image:
    from core.plates.render import PlateStyle, render_plate, shipped_fonts

    style = PlateStyle(font=str(shipped_fonts()[0]), fg=(10, 10, 10), bg=(235, 235, 225), spacing=0.25,
                       spacing_jitter=0.0, surround=(235, 235, 225))
    plate = render_plate(text, style, np.random.default_rng(0), finish=False)
    x0, y0, x1, y1 = plate.row_box()
    m = 0.05 * (y1 - y0) + shift
    img = Image.fromarray(plate.image).convert("L").crop((int(x0 - m), int(y0 - m), int(x1 + m) + 1, int(y1 + m) + 1))
    small = np.asarray(img.resize((len(text) * px_h // 2, px_h), Image.Resampling.BOX), dtype=np.float64)
    noisy = small + np.random.default_rng(seed).normal(0, 6, small.shape)
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8), "L")


def test_batch_reads_a_folder_of_frames(tmp_path) -> None:
    from core.plates.batch import run_batch

    frames = tmp_path / "row1"
    frames.mkdir()
    for i, shift in enumerate((0.0, 1.0, 2.0)):
        _rendered_row("AB1234", 16, i, shift).save(frames / f"f{2 - i}.png")
    single = tmp_path / "row2"
    single.mkdir()
    _rendered_row("AB1234", 16, 0, 0.0).save(single / "only.png")
    _rendered_row("AB1234", 16, 0, 0.0).save(tmp_path / "only.png")
    (tmp_path / "empty").mkdir()
    (tmp_path / "rows.csv").write_text("image,cells\nrow1,6\nrow2,6\nonly.png,6\nempty,6\n", encoding="utf-8")
    rng = np.random.default_rng(0)
    plates = ["AB1234"] + ["".join(rng.choice(list("ABCDEFGH0123456789"), 6)) for _ in range(30)]
    (tmp_path / "registry.csv").write_text("plate\n" + "\n".join(plates) + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    counts = run_batch(tmp_path / "registry.csv", tmp_path / "rows.csv", out, model="bicubic", search_cells=False)
    lines = [json.loads(t) for t in out.read_text(encoding="utf-8").splitlines()]
    assert counts == {"rows": 4, "read": 3, "errors": 1}
    multi = lines[0]
    assert [f["id"] for f in multi["frames"]] == ["f0.png", "f1.png", "f2.png"]
    assert max(f["weight"] for f in multi["frames"]) == 1.0 and all(f["weight"] > 0 for f in multi["frames"])
    # every frame is read in one polarity, the one most frames prefer (at 8x16 px per character the
    # reader reads this clean row the same either way up, so which one it prefers is not asserted)
    assert len({f["inverted"] for f in multi["frames"]}) == 1
    assert len(multi["strings"]) >= 10 and multi["registry"][0] == "AB1234"
    # one frame in a folder reads exactly as the image itself
    assert "frames" not in lines[1] and "frames" not in lines[2]
    assert lines[1]["strings"] == lines[2]["strings"] and lines[1]["registry"] == lines[2]["registry"]
    assert "no frame images" in lines[3]["error"]


def test_debiased_product_does_not_count_a_common_bias_per_frame() -> None:
    # every cell of every frame leans to class 0 (the reader's bias); position 1 is truly class 1
    a = _p([[0.5, 0.2, 0.3], [0.4, 0.45, 0.15]])
    frames = [a] * 8
    plain = combine_probs(frames)
    fair = combine_probs(frames, debias=True)
    assert plain[1].argmax() == 1 and fair[1].argmax() == 1
    assert fair[0, 0] < plain[0, 0]  # the bias is not multiplied eight times
    assert np.allclose(combine_probs([a], debias=True), a)
