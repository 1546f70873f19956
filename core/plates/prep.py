"""Character and row preparation shared by training and reading: grey, contrast stretch, polarity.

The character classifier and the ``plate-char`` models see dark glyphs on a light background
(the OpenALPR crops are binarised that way). Real plates are coloured, dim, or light on dark; each
crop is therefore stretched to its own 2-98 % percentiles and, when its majority (Otsu) class is
dark, inverted, before it is padded to the cell aspect and resized.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from core.data.common import resize
from core.data.plates import pad_to_aspect


def to_grey(a: np.ndarray | Image.Image) -> np.ndarray:
    """A uint8 grey array ``(H, W)`` from a PIL image or an array (grey, RGB or RGBA)."""
    if isinstance(a, Image.Image):
        return np.asarray(a.convert("L"))
    a = np.asarray(a)
    if a.ndim == 3:
        return np.asarray(Image.fromarray(a[..., :3].astype(np.uint8), "RGB").convert("L"))
    return a.astype(np.uint8)


def otsu(a: np.ndarray) -> float:
    """Otsu's threshold of a grey array (the level that best splits it into two classes)."""
    hist = np.bincount(np.clip(a, 0, 255).astype(np.uint8).ravel(), minlength=256).astype(np.float64)
    total = hist.sum()
    if total == 0:
        return 128.0
    levels = np.arange(256)
    w0 = np.cumsum(hist)
    m0 = np.cumsum(hist * levels)
    w1 = total - w0
    mean0 = m0 / np.maximum(w0, 1e-9)
    mean1 = (m0[-1] - m0) / np.maximum(w1, 1e-9)
    between = w0 * w1 * (mean0 - mean1) ** 2
    between[(w0 == 0) | (w1 == 0)] = -1
    return float(np.argmax(between)) + 0.5


def stretch(a: np.ndarray, lo: float = 2.0, hi: float = 98.0, min_range: float = 12.0) -> np.ndarray:
    """Contrast-stretch ``a`` so its ``lo``/``hi`` percentiles become 0/255 (float32); an almost
    flat image (range below ``min_range``) is only shifted, never amplified into noise."""
    a = a.astype(np.float32)
    p0, p1 = np.percentile(a, [lo, hi])
    span = max(float(p1 - p0), min_range)
    mid = (p0 + p1) / 2 if p1 - p0 < min_range else p0 + span / 2
    return np.clip((a - mid) / span * 255.0 + 127.5, 0, 255)


def is_light_on_dark(a: np.ndarray, ring: float = 0.12) -> bool:
    """Whether a character row (or character) has light glyphs on a dark background.

    The background is the Otsu class that holds most of the crop's outer ring (``ring`` of the
    height on each side), where an analyst's box leaves margin; when the ring is split almost
    evenly (a box tight on the glyphs), the larger class of the whole crop decides.
    """
    a = np.asarray(a, dtype=np.float32)
    h, w = a.shape
    t = otsu(a)
    r = max(1, round(ring * h))
    frame = np.concatenate([a[:r].ravel(), a[-r:].ravel(), a[:, :r].ravel(), a[:, -r:].ravel()])
    dark = float((frame < t).mean())
    if abs(dark - 0.5) < 0.1:
        dark = float((a < t).mean())
    return dark > 0.5


def normalize_row(a: np.ndarray | Image.Image, invert: bool | None = None) -> tuple[np.ndarray, bool]:
    """A row (or cell) as uint8 dark-on-light, stretched; returns it and whether it was inverted
    (``invert`` None: decided by :func:`is_light_on_dark`)."""
    g = stretch(to_grey(a))
    if invert is None:
        invert = is_light_on_dark(g)
    if invert:
        g = 255.0 - g
    return g.round().astype(np.uint8), bool(invert)


def prepare_char(crop: np.ndarray | Image.Image, size: tuple[int, int] = (8, 16), invert: bool | None = False,
                 restretch: bool = True) -> np.ndarray:
    """One character crop as the classifier's input: uint8 ``(h, w)`` at ``size`` = (w, h).

    Stretched to its own percentiles, inverted if ``invert`` (None: decided from the crop), padded to
    the aspect of ``size`` with its background and resized with the area filter.
    """
    g = to_grey(crop)
    if g.shape[0] < 1 or g.shape[1] < 1:
        raise ValueError(f"empty character crop of shape {g.shape}")
    if restretch:
        g, _ = normalize_row(g, invert)
    elif invert:
        g = 255 - g
    padded = pad_to_aspect(g, size[0] / size[1])
    return np.asarray(resize(Image.fromarray(padded, "L"), size))
