"""core.video.track: NCC tracking with sub-pixel peaks, anchors, drops and JSON round trips."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from core.video.synthetic import moving_square, square_position
from core.video.track import Box, Track, ncc_map, track_region


def test_ncc_map_is_one_at_the_template_and_ignores_gain() -> None:
    g = torch.Generator().manual_seed(0)
    img = torch.rand(30, 40, generator=g)
    tpl = img[10:18, 12:24] * 3 + 5
    m = ncc_map(img, tpl)
    assert m.shape == (23, 29)
    y, x = divmod(int(m.argmax()), m.shape[1])
    assert (y, x) == (10, 12) and float(m[y, x]) == pytest.approx(1.0, abs=1e-5)
    assert float(ncc_map(torch.ones(10, 10), torch.rand(3, 3, generator=g)).abs().max()) == 0.0


def test_tracks_a_moving_square_both_ways() -> None:
    frames = moving_square(20)
    x, y = square_position(10)
    track = track_region(lambda i: frames[i], {10: Box(x, y, 12, 12)}, range(2, 20))
    assert sorted(track.points) == list(range(2, 20))
    for i, p in track.points.items():
        tx, ty = square_position(i)
        assert abs(p.box.x - tx) < 0.6 and abs(p.box.y - ty) < 0.6, (i, p)
        assert p.score > 0.6 and not p.doubtful
    assert track.points[10].source == "marked"


def _shifted(base: torch.Tensor, dx: float, dy: float) -> np.ndarray:
    """``base`` translated by a sub-pixel (dx, dy) with bilinear resampling."""
    h, w = base.shape
    theta = torch.tensor([[[1.0, 0.0, -2 * dx / w], [0.0, 1.0, -2 * dy / h]]])
    grid = F.affine_grid(theta, [1, 1, h, w], align_corners=False)
    return F.grid_sample(base[None, None], grid, align_corners=False, padding_mode="border")[0, 0].numpy()


def test_sub_pixel_motion() -> None:
    g = torch.Generator().manual_seed(1)
    base = F.avg_pool2d(torch.rand(1, 1, 96, 128, generator=g) * 255, 5, 1, 2)[0, 0]  # smooth texture
    shifts = [(0.3 * i, -0.2 * i) for i in range(8)]
    frames = [_shifted(base, dx, dy) for dx, dy in shifts]
    track = track_region(lambda i: frames[i], {0: Box(50, 40, 20, 10)}, range(8))
    for i, (dx, dy) in enumerate(shifts):
        p = track.points[i]
        assert abs(p.box.x - (50 + dx)) < 0.2 and abs(p.box.y - (40 + dy)) < 0.2, (i, p.box)


def test_corrections_drops_and_json() -> None:
    frames = moving_square(20)
    x, y = square_position(2)
    x2, y2 = square_position(17)
    track = track_region(lambda i: frames[i], {2: Box(x, y, 12, 12), 17: Box(x2, y2, 12, 12)}, range(20))
    assert track.points[17].source == "corrected" and set(track.anchors()) == {2, 17}
    for i in (15, 16, 18, 19):
        assert abs(track.points[i].box.x - square_position(i)[0]) < 0.6
    track.drop(5)
    assert 5 not in [p.frame for p in track.used()] and len(track.used()) == 19
    back = Track.from_json(track.to_json())
    assert back.to_json() == track.to_json()
    with pytest.raises(ValueError, match="anchor"):
        track_region(lambda i: frames[i], {}, range(3))


def test_tracking_a_decoded_clip(tmp_path) -> None:
    pytest.importorskip("av")
    from core.video import open_clip
    from core.video.synthetic import write_clip

    frames = moving_square(20)
    path = write_clip(tmp_path / "a.mp4", frames, gop=6)
    x, y = square_position(12)
    with open_clip(path) as clip:
        track = track_region(lambda i: clip.frame(i).image, {12: Box(x, y, 12, 12)}, range(3, 20))
    for i, p in track.points.items():
        assert abs(p.box.x - square_position(i)[0]) < 0.75 and abs(p.box.y - square_position(i)[1]) < 0.75


def test_tracks_towards_the_frame_edge() -> None:
    """A region whose template context reaches past the frame's edge still follows motion towards it."""
    size, box = (96, 64), 24
    frames = moving_square(12, size, box)
    x, y = square_position(5, size, box)  # x = 9: half the template's context lies outside the frame
    track = track_region(lambda i: frames[i], {5: Box(x, y, box, box)}, range(12))
    for i, p in track.points.items():
        tx, ty = square_position(i, size, box)
        assert abs(p.box.x - tx) < 0.6 and abs(p.box.y - ty) < 0.6 and p.score > 0.6, (i, p)
