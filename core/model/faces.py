"""The canonical face frame: where the eyes sit in the 64x64 HR image every face model uses.

Coordinates are continuous pixel coordinates: pixel ``(i, j)`` covers ``[i, i+1) x [j, j+1)``, so the
centre of the top-left pixel is ``(0.5, 0.5)``. "Left" and "right" mean the image's left and right
(the person's right eye is ``LEFT_EYE``), the same as MTCNN's landmark order.

The frame is the tight face crop of UTKFace's aligned chips (eyebrows to chin, eyes 25 px apart
at y = 18.6), so both training sets fill it with real pixels: a looser frame would have to pad
UTKFace's borders with invented pixels. In CelebA's official 178x218 images it is a ~101 px
square. Tighter framing also gives the inner face more of an 8x8 input's 64 pixels. See
``tools/measure_face_frames.py`` for how the data set boxes were measured.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

#: Side of the canonical HR face frame, in pixels.
FRAME = 64
#: Eye centres in the 64x64 frame, (x, y) in pixels.
LEFT_EYE: tuple[float, float] = (19.5, 18.6)
RIGHT_EYE: tuple[float, float] = (44.5, 18.6)

Point = tuple[float, float]
Box = tuple[float, float, float, float]


def eye_distance(size: int = FRAME) -> float:
    """Distance between the canonical eye centres in a frame of ``size`` pixels."""
    return (RIGHT_EYE[0] - LEFT_EYE[0]) * size / FRAME


def canonical_box_for_eyes(left_eye: Point, right_eye: Point) -> Box:
    """Source-image box ``(x0, y0, x1, y1)`` that the 64x64 frame covers for these eye centres.

    The box is axis-aligned (it ignores any tilt of the eye line, it uses only the eyes' distance
    and midpoint); it may extend beyond the image. Crop it at native resolution and resize it to
    any size to get the frame at that size; :func:`align_by_eyes` also corrects the tilt.
    """
    scale = math.dist(left_eye, right_eye) / eye_distance()
    if scale <= 0:
        raise ValueError("the two eye positions must differ")
    mx, my = (left_eye[0] + right_eye[0]) / 2, (left_eye[1] + right_eye[1]) / 2
    cx, cy = (LEFT_EYE[0] + RIGHT_EYE[0]) / 2, (LEFT_EYE[1] + RIGHT_EYE[1]) / 2
    x0, y0 = mx - cx * scale, my - cy * scale
    return (x0, y0, x0 + FRAME * scale, y0 + FRAME * scale)


def native_frame_size(left_eye: Point, right_eye: Point) -> int:
    """Side in pixels of the face frame at the source's own scale (at least 1)."""
    return max(1, round(FRAME * math.dist(left_eye, right_eye) / eye_distance()))


def fractional_box(left_eye: Point, right_eye: Point, width: int, height: int) -> Box:
    """:func:`canonical_box_for_eyes` for eyes given as fractions of a ``width`` x ``height`` image,
    returned as fractions of that image's size (what the data set loaders hard-code)."""
    x0, y0, x1, y1 = canonical_box_for_eyes(
        (left_eye[0] * width, left_eye[1] * height), (right_eye[0] * width, right_eye[1] * height)
    )
    return (x0 / width, y0 / height, x1 / width, y1 / height)


def crop_fractional(img: Image.Image, box: Box, size: int) -> Image.Image:
    """Crop ``box`` (fractions of the image size, may reach outside it) and resize to ``size`` squared.

    Parts outside the image are filled by repeating the edge pixels. Resampling is LANCZOS, which
    also filters properly when shrinking.
    """
    if img.mode not in ("L", "RGB"):
        img = img.convert("RGB")
    w, h = img.size
    x0, y0, x1, y1 = box[0] * w, box[1] * h, box[2] * w, box[3] * h
    pad_l, pad_t = max(0, math.ceil(-x0)), max(0, math.ceil(-y0))
    pad_r, pad_b = max(0, math.ceil(x1 - w)), max(0, math.ceil(y1 - h))
    if pad_l or pad_t or pad_r or pad_b:
        img = _pad_edge(img, pad_l, pad_t, pad_r, pad_b)
        x0, x1, y0, y1 = x0 + pad_l, x1 + pad_l, y0 + pad_t, y1 + pad_t
    return img.resize((size, size), Image.Resampling.LANCZOS, box=(x0, y0, x1, y1))


def align_by_eyes(img: Image.Image, left_eye: Point, right_eye: Point, size: int = FRAME) -> Image.Image:
    """The face frame at ``size`` x ``size``: rotate, scale and shift ``img`` so the given eye centres
    land on the canonical positions (scaled to ``size``).

    Works for any source scale, tiny crops included: pass ``size=native_frame_size(...)`` to get
    the frame at the source's own resolution, or the model's LR size directly. Shrinking is
    antialiased (the warp is done at the source scale, then resized with LANCZOS); areas outside
    the source are filled by repeating its edge pixels.
    """
    if size < 1:
        raise ValueError("size must be at least 1")
    if img.mode not in ("L", "RGB"):
        img = img.convert("RGB")
    d_src = math.dist(left_eye, right_eye)
    if d_src <= 0:
        raise ValueError("the two eye positions must differ")
    native = FRAME * d_src / eye_distance()
    # Shrink very large sources first (box filter by an integer factor) so the warp stays small.
    k = max(1, int(native // (4 * max(size, 16))))
    if k > 1:
        img = img.reduce(k)
        left_eye = (left_eye[0] / k, left_eye[1] / k)
        right_eye = (right_eye[0] / k, right_eye[1] / k)
        native /= k
    work = max(size, math.ceil(native))
    f = work / FRAME
    dst = ((LEFT_EYE[0] * f, LEFT_EYE[1] * f), (RIGHT_EYE[0] * f, RIGHT_EYE[1] * f))
    out = warp_similarity(img, (left_eye, right_eye), dst, work)
    return out if work == size else out.resize((size, size), Image.Resampling.LANCZOS)


def warp_similarity(img: Image.Image, src: tuple[Point, Point], dst: tuple[Point, Point], size: int) -> Image.Image:
    """A ``size`` x ``size`` image in which the points ``src`` land on ``dst`` (rotation, uniform scale,
    shift; bicubic); areas outside the source repeat its edge pixels. The points must differ."""
    # Similarity as complex numbers: out = a * (s - l_src) + l_dst  <=>  s = (out - l_dst) / a + l_src.
    l_src, r_src = complex(*src[0]), complex(*src[1])
    l_dst, r_dst = complex(*dst[0]), complex(*dst[1])
    inv = (r_src - l_src) / (r_dst - l_dst)  # 1 / a
    off = l_src - l_dst * inv
    # PIL AFFINE maps an output point (x, y) to the input point (a x + b y + c, d x + e y + f).
    coeffs = (inv.real, -inv.imag, off.real, inv.imag, inv.real, off.imag)
    pad = _edge_pad_for(img.size, coeffs, size)
    if pad:
        img = _pad_edge(img, pad, pad, pad, pad)
        coeffs = (coeffs[0], coeffs[1], coeffs[2] + pad, coeffs[3], coeffs[4], coeffs[5] + pad)
    return img.transform((size, size), Image.Transform.AFFINE, coeffs, resample=Image.Resampling.BICUBIC)


def _edge_pad_for(src_size: tuple[int, int], coeffs: tuple[float, ...], work: int) -> int:
    """Padding (pixels, all sides) so every output corner maps inside the padded source."""
    a, b, c, d, e, f = coeffs
    w, h = src_size
    need = 0.0
    for x, y in ((0, 0), (work, 0), (0, work), (work, work)):
        sx, sy = a * x + b * y + c, d * x + e * y + f
        need = max(need, -sx, -sy, sx - w, sy - h)
    return math.ceil(need) + 2 if need > -2 else 0


def _pad_edge(img: Image.Image, left: int, top: int, right: int, bottom: int) -> Image.Image:
    """Pad by repeating edge pixels (numpy ``edge`` mode)."""
    a = np.asarray(img)
    widths = ((top, bottom), (left, right)) + (((0, 0),) if a.ndim == 3 else ())
    return Image.fromarray(np.pad(a, widths, mode="edge"), img.mode)
