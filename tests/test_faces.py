"""The canonical face frame: eye alignment geometry, and that facenet-pytorch's MTCNN runs here."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from core.model.faces import (
    FRAME,
    LEFT_EYE,
    RIGHT_EYE,
    align_by_eyes,
    canonical_box_for_eyes,
    crop_fractional,
    fractional_box,
    native_frame_size,
)

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CELEBA_IMAGES = SHARED_DATA / "celeba" / "img_align_celeba"


def dots(size: tuple[int, int], points: list[tuple[float, float]], radius: float) -> Image.Image:
    """Black RGB image with a white disc (red channel) / second disc (green channel) at each point."""
    im = Image.new("RGB", size)
    d = ImageDraw.Draw(im)
    colours = [(255, 0, 0), (0, 255, 0)]
    for (x, y), c in zip(points, colours, strict=True):
        d.ellipse((x - radius, y - radius, x + radius, y + radius), fill=c)
    return im


def centroid(channel: np.ndarray) -> tuple[float, float]:
    """Intensity-weighted centroid (x, y) in continuous pixel coordinates (centres at +0.5)."""
    w = channel.astype(np.float64)
    ys, xs = np.mgrid[: w.shape[0], : w.shape[1]]
    return float((w * (xs + 0.5)).sum() / w.sum()), float((w * (ys + 0.5)).sum() / w.sum())


def assert_eyes_on_canonical(out: Image.Image, size: int) -> None:
    a = np.asarray(out)
    f = size / FRAME
    for ch, eye in ((0, LEFT_EYE), (1, RIGHT_EYE)):
        cx, cy = centroid(a[:, :, ch])
        assert math.dist((cx, cy), (eye[0] * f, eye[1] * f)) < 1.0, (ch, cx, cy, eye)


@pytest.mark.parametrize(
    ("src_size", "left", "right", "radius", "size"),
    [
        ((200, 160), (70.0, 90.0), (130.0, 90.0), 4, 64),  # level eyes, shrink
        ((200, 160), (60.5, 100.2), (128.3, 70.7), 4, 64),  # tilted about 23 degrees
        ((120, 120), (80.0, 40.0), (40.0, 60.0), 3, 64),  # upside-down-ish face: left eye on the right
        ((200, 200), (90.0, 100.0), (105.0, 100.0), 1.5, 64),  # enlarge (eyes 15 px apart)
        ((2400, 1800), (900.0, 800.0), (1500.0, 850.0), 30, 64),  # big source: reduce-first path
        ((200, 160), (70.0, 90.0), (130.0, 90.0), 4, 128),  # other output size
        ((40, 30), (8.0, 10.0), (32.0, 12.0), 2, 64),  # the frame reaches far outside the source
    ],
)
def test_align_by_eyes_puts_the_eyes_on_the_canonical_points(src_size, left, right, radius, size) -> None:
    im = dots(src_size, [left, right], radius)
    out = align_by_eyes(im, left, right, size)
    assert out.size == (size, size) and out.mode == "RGB"
    assert_eyes_on_canonical(out, size)


def test_tiny_crop_gives_the_frame_at_its_own_scale() -> None:
    # An ~8x8 face: eyes 3 px apart. The native frame is 64 * 3 / 19 = 10 px.
    left, right = (3.0, 4.5), (6.0, 4.5)
    assert native_frame_size(left, right) == round(FRAME * 3 / (RIGHT_EYE[0] - LEFT_EYE[0]))
    x0, y0, x1, y1 = canonical_box_for_eyes(left, right)
    side = x1 - x0
    assert y1 - y0 == pytest.approx(side)
    for eye, can in ((left, LEFT_EYE), (right, RIGHT_EYE)):
        assert (eye[0] - x0) / side * FRAME == pytest.approx(can[0])
        assert (eye[1] - y0) / side * FRAME == pytest.approx(can[1])
    tiny = Image.fromarray(np.random.default_rng(0).integers(0, 256, (9, 9, 3), dtype=np.uint8))
    n = native_frame_size(left, right)
    assert align_by_eyes(tiny, left, right, n).size == (n, n)
    assert align_by_eyes(tiny, left, right, 8).size == (8, 8)
    assert align_by_eyes(tiny.convert("L"), left, right, 8).mode == "L"


def test_fractional_box_round_trips_the_eye_fractions() -> None:
    box = fractional_box((0.3916, 0.5148), (0.6123, 0.5148), 89, 109)
    w, h = 89, 109
    side_px = (box[2] - box[0]) * w
    assert (box[3] - box[1]) * h == pytest.approx(side_px)
    assert (0.3916 * w - box[0] * w) / side_px * FRAME == pytest.approx(LEFT_EYE[0])
    assert (0.5148 * h - box[1] * h) / side_px * FRAME == pytest.approx(LEFT_EYE[1])


def test_crop_fractional_pads_outside_with_edge_pixels() -> None:
    im = Image.new("RGB", (20, 20), (10, 200, 30))
    out = np.asarray(crop_fractional(im, (-0.5, -0.25, 1.5, 1.75), 16))
    assert out.shape == (16, 16, 3)
    assert (np.abs(out.astype(int) - [10, 200, 30]) <= 1).all()


def test_same_eye_twice_is_an_error() -> None:
    im = Image.new("RGB", (10, 10))
    with pytest.raises(ValueError):
        align_by_eyes(im, (5, 5), (5, 5))
    with pytest.raises(ValueError):
        canonical_box_for_eyes((1, 1), (1, 1))


def test_canonical_frame_is_symmetric() -> None:
    assert LEFT_EYE[1] == RIGHT_EYE[1]
    assert (LEFT_EYE[0] + RIGHT_EYE[0]) / 2 == FRAME / 2  # so horizontal flips keep the frame


# -- MTCNN (facenet-pytorch) ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def mtcnn():
    facenet = pytest.importorskip("facenet_pytorch")
    return facenet.MTCNN(keep_all=False, device="cpu")


def test_mtcnn_runs_on_a_synthetic_image(mtcnn) -> None:
    """facenet-pytorch 2.5.3's MTCNN constructs and detects with this torch / numpy (always runs)."""
    rng = np.random.default_rng(0)
    im = Image.fromarray(rng.integers(0, 256, (160, 160, 3), dtype=np.uint8))
    ImageDraw.Draw(im).ellipse((40, 30, 120, 130), fill=(200, 160, 140))
    boxes, probs, landmarks = mtcnn.detect(im, landmarks=True)
    if boxes is not None:  # a face-like blob may or may not be found; the shapes must be right
        assert np.asarray(boxes, dtype=float).shape[1] == 4
        assert np.asarray(landmarks[0], dtype=float).shape == (5, 2)
        assert len(probs) == len(boxes)


@pytest.mark.data
@pytest.mark.skipif(not CELEBA_IMAGES.is_dir(), reason="real data not present at ../shared/data/celeba")
def test_mtcnn_finds_a_real_face_and_the_celeba_box_frames_it(mtcnn) -> None:
    from core.data.celeba import CELEBA_BOX
    from core.images import load_image

    im = load_image(sorted(CELEBA_IMAGES.glob("*.jpg"))[0], "RGB")
    up = 3
    boxes, probs, landmarks = mtcnn.detect(im.resize((im.width * up, im.height * up)), landmarks=True)
    assert boxes is not None and float(np.max(probs)) > 0.9
    lm = np.asarray(landmarks[int(np.argmax(probs))], dtype=float) / up
    # Map the detected eyes through the hard-coded CelebA box into the 64x64 frame.
    x0, y0 = CELEBA_BOX[0] * im.width, CELEBA_BOX[1] * im.height
    s = FRAME / ((CELEBA_BOX[2] - CELEBA_BOX[0]) * im.width)
    for (ex, ey), can in zip(lm[:2], (LEFT_EYE, RIGHT_EYE), strict=True):
        assert math.dist(((ex - x0) * s, (ey - y0) * s), can) < 4.0  # one face, not the median
