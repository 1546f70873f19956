"""Face geometry for search: where a face is in a photo, and how it becomes an embedder's input chip.

Two kinds of input reach an embedder:

* **Gallery photos**: MTCNN (:mod:`core.search.face_detect`) gives the eye centres; the photo is warped
  (rotation, scale, shift) so the eyes land where the embedder's training chips had them.
* **Candidates**: 64x64 images in the canonical frame of :mod:`core.model.faces`, eyes at (19.5, 18.6) and
  (44.5, 18.6). Their eyes are known, so the *same* warp applies: the frame is mapped to the chip
  by the similarity that sends the canonical eyes to the chip's eyes.

dlib's chip (``get_face_chip_details(shape, 150, 0.25)``) puts its mean face shape, padded by 0.25 on
every side, into 150x150 px. The eye centres of that mean shape (means of landmarks 36-41 and 42-47)
land at about (48.1, 47.1) and (101.0, 47.1) px: 52.9 px apart, against 25 px in the 64 px frame. So
the frame is enlarged 2.117 times to a 135.5 px square whose top-left corner sits at (6.8, 7.7) of
the chip; the ~7 px border the frame does not cover is filled by repeating its edge pixels. (A plain
64 -> 150 resize would make the eyes 58.6 px apart, 11% larger than the network was trained on.)
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from core.model.faces import FRAME, LEFT_EYE, RIGHT_EYE, warp_similarity
from core.search.face_detect import Face

Point = tuple[float, float]

# dlib's 68-point mean face shape (dlib/image_transforms/... get_face_chip_details), eye landmarks
# 36-41 (image left) and 42-47 (image right), in [0, 1] units of the unpadded shape.
_DLIB_EYE_L_X = (0.121737, 0.187122, 0.265825, 0.334606, 0.260918, 0.182743)
_DLIB_EYE_R_X = (0.645647, 0.714428, 0.793132, 0.858516, 0.79751, 0.719335)
_DLIB_EYE_Y = (0.216423, 0.178758, 0.179852, 0.231733, 0.245099, 0.244077)
DLIB_PADDING = 0.25


def dlib_chip_eyes(size: int = 150, padding: float = DLIB_PADDING) -> tuple[Point, Point]:
    """Eye centres of dlib's face chip of ``size`` px (continuous coordinates, pixel centres at +0.5)."""

    def place(v: float) -> float:
        return (v + padding) / (1 + 2 * padding) * size + 0.5

    y = place(sum(_DLIB_EYE_Y) / 6)
    return (place(sum(_DLIB_EYE_L_X) / 6), y), (place(sum(_DLIB_EYE_R_X) / 6), y)


def frame_eyes(size: int) -> tuple[Point, Point]:
    """The canonical eye centres in a frame of ``size`` px (core.model.faces)."""
    f = size / FRAME
    return (LEFT_EYE[0] * f, LEFT_EYE[1] * f), (RIGHT_EYE[0] * f, RIGHT_EYE[1] * f)


def warp_eyes(img: Image.Image, src: tuple[Point, Point], dst: tuple[Point, Point], size: int) -> Image.Image:
    """A ``size`` x ``size`` RGB image in which the source eye centres ``src`` land on ``dst``.

    A similarity (rotation, uniform scale, shift); areas outside the source repeat its edge pixels.
    Large shrinks are box-filtered first so the result is not aliased.
    """
    img = img.convert("RGB") if img.mode != "RGB" else img
    (l_src, r_src), (l_dst, r_dst) = (complex(*src[0]), complex(*src[1])), (complex(*dst[0]), complex(*dst[1]))
    if abs(r_src - l_src) <= 0 or abs(r_dst - l_dst) <= 0:
        raise ValueError("the two eye positions must differ")
    k = max(1, int(abs(r_src - l_src) / abs(r_dst - l_dst) // 2))
    if k > 1:  # shrinking more than 2x: reduce first (box filter), then warp
        img = img.reduce(k)
        l_src, r_src = l_src / k, r_src / k
    return warp_similarity(img, ((l_src.real, l_src.imag), (r_src.real, r_src.imag)), dst, size)


def frame_to_chip(frame: Image.Image, chip_eyes: tuple[Point, Point], size: int) -> Image.Image:
    """A canonical-frame image (any size) mapped to an embedder chip with eyes at ``chip_eyes``."""
    return warp_eyes(frame, frame_eyes(frame.width), chip_eyes, size)


def whole_image_as_frame(img: Image.Image) -> Image.Image:
    """The fallback when no face is found: the image padded to a square (edge pixels), taken as the frame."""
    img = img.convert("RGB") if img.mode != "RGB" else img
    w, h = img.size
    if w == h:
        return img
    side = max(w, h)
    left, top = (side - w) // 2, (side - h) // 2
    return Image.fromarray(np.pad(np.asarray(img), ((top, side - h - top), (left, side - w - left), (0, 0)),
                                  mode="edge"))


def eye_distance(face: Face) -> float:
    return math.dist(face.left_eye, face.right_eye)
