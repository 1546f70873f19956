"""Combining what several frames say about one plate row.

Each frame ``f`` of a row gives per-position class probabilities ``P_f,i`` (the mean softmax over
its candidates, :func:`core.plates.reading.read_row`). The frames are independent noisy views of
the same characters, so they are combined as a **weighted product**:

    log P_i(c) = sum_f w_f log max(P_f,i(c), 1e-6)  (renormalised over c)

with ``w_f`` in [0, 1] a per-frame quality relative to the best frame (a dropped frame has
``w = 0``). The floor keeps one frame's slip from ruling a class out. Strings and registry
plates are then ranked from the combined ``P_i`` exactly as for one frame. A single frame is
returned unchanged. The product treats frames as independent, so the combined probabilities are
sharper than they deserve; the rankings are the output.

Quality estimates (:data:`QUALITIES`): ``uniform``; ``confidence`` (the frame's mean top-class
probability, how sure the reader is of its cells); ``sharpness`` (mean squared gradient of the
stretched row, high for a crisp frame, lowered by motion blur); ``track`` (the tracker's NCC
score, given by the caller). Every combined result records which frames went in and their
weights (:class:`Combined`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import VarSRError
from core.plates.reading import RowReading

FLOOR = 1e-6
QUALITIES = ("uniform", "confidence", "sharpness", "track")
#: The quality the batch weights frames by (see docs/VIDEO.md for how the choices measured).
#: Measured best on 200 held-out plates at 2x4 px per character, camera-like clips (python -m
#: core.video.plate_eval): 8 frames' candidates + bicubic readings reach the registry top 10 for 11.0 %
#: weighted by sharpness against 9.0 % by confidence (4.5 % for one frame).
DEFAULT_QUALITY = "sharpness"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


@dataclass
class Combined:
    """Combined per-position probabilities and what went into them."""

    probs: np.ndarray  # (n, K)
    frames: list[dict[str, Any]] = field(default_factory=list)  # per frame: id, quality, weight (+ caller's details)
    quality: str = "uniform"

    def record(self) -> dict[str, Any]:
        return {"combine": "weighted product", "floor": FLOOR, "quality": self.quality, "frames": self.frames}


def row_prior(probs: Sequence[np.ndarray], weights: Sequence[float] | np.ndarray | None = None) -> np.ndarray:
    """The reader's class bias on this row: the (weighted) mean distribution over frames and positions, ``(K,)``."""
    w = np.ones(len(probs)) if weights is None else np.asarray(weights, dtype=np.float64)
    m = sum(wf * np.asarray(p, dtype=np.float64).mean(0) for wf, p in zip(w, probs, strict=True)) / w.sum()
    m = np.clip(np.asarray(m), FLOOR, 1.0)
    return m / m.sum()


def combine_probs(probs: Sequence[np.ndarray], weights: Sequence[float] | None = None,
                  debias: bool = False) -> np.ndarray:
    """The weighted product of per-frame ``(n, K)`` distributions, renormalised per position.

    ``debias``: each frame's distribution is divided by the row's prior (:func:`row_prior`) before
    the product and the prior is multiplied back once, ``P ∝ prior · prod_f (P_f / prior)^w_f``, so
    a class the reader favours on every cell of every frame is not counted once per frame.

    The log of the product is then divided by the total weight (a tempered product): frames of one
    clip are far from independent (17 near-identical frames multiplied as independent evidence read
    every position at P = 1, wrong ones included), so the combined distribution keeps the confidence
    of one frame. Dividing every position by the same constant leaves every ranking of strings and
    registry plates exactly as the plain product gives it."""
    if not probs:
        raise ValueError("no frame to combine")
    w = np.ones(len(probs)) if weights is None else np.asarray(weights, dtype=np.float64)
    if len(w) != len(probs) or (w < 0).any() or not (w > 0).any():
        raise ValueError("weights must be one non-negative number per frame, not all zero")
    shapes = {p.shape for p in probs}
    if len(shapes) != 1:
        raise ValueError(f"frames disagree on the number of positions or classes: {sorted(shapes)}")
    if len(probs) == 1:
        return np.asarray(probs[0], dtype=np.float64)
    lp = sum(wf * np.log(np.clip(np.asarray(p, dtype=np.float64), FLOOR, 1.0)) for wf, p in zip(w, probs, strict=True))
    lp = np.asarray(lp)
    if debias:
        lpr = np.log(row_prior(probs, w))
        lp = lp - (w.sum() - 1.0) * lpr[None, :]
    lp = lp / w.sum()
    lp -= lp.max(-1, keepdims=True)
    q = np.exp(lp)
    return q / q.sum(-1, keepdims=True)


def sharpness(row: np.ndarray) -> float:
    """Mean squared gradient of a grey row stretched to its 2-98 % range (0 for a flat row)."""
    g = np.asarray(row, dtype=np.float64)
    lo, hi = np.percentile(g, [2, 98])
    if hi - lo < 1e-6:
        return 0.0
    g = (g - lo) / (hi - lo)
    gy = np.diff(g, axis=0) if g.shape[0] > 1 else np.zeros((1, 1))
    gx = np.diff(g, axis=1) if g.shape[1] > 1 else np.zeros((1, 1))
    return float((gy**2).mean() + (gx**2).mean())


def confidence(probs: np.ndarray) -> float:
    """The mean top-class probability over positions."""
    return float(np.asarray(probs).max(-1).mean())


def qualities(kind: str, probs: Sequence[np.ndarray], rows: Sequence[np.ndarray] | None = None,
              scores: Sequence[float] | None = None) -> list[float]:
    """Per-frame quality of ``kind`` (see the module docstring)."""
    if kind == "uniform":
        return [1.0] * len(probs)
    if kind == "confidence":
        return [confidence(p) for p in probs]
    if kind == "sharpness":
        if rows is None:
            raise ValueError("sharpness needs the frames' rows")
        return [sharpness(r) for r in rows]
    if kind == "track":
        if scores is None:
            raise ValueError("track quality needs the tracker's scores")
        return [max(0.0, float(s)) for s in scores]
    raise ValueError(f"unknown quality {kind!r}; known: {', '.join(QUALITIES)}")


def relative_weights(quality: Sequence[float], dropped: Sequence[bool] | None = None) -> list[float]:
    """Qualities divided by the best kept frame's (dropped frames 0); all equal when none is positive."""
    q = np.asarray(quality, dtype=np.float64)
    keep = np.ones(len(q), bool) if dropped is None else ~np.asarray(dropped, bool)
    if not keep.any():
        raise ValueError("every frame is dropped")
    best = q[keep].max() if keep.any() else 0.0
    w = np.where(keep, q / best if best > 0 else 1.0, 0.0)
    return [round(float(v), 6) for v in w]


def combine(probs: Sequence[np.ndarray], ids: Sequence[str], quality: str = "confidence",
            rows: Sequence[np.ndarray] | None = None, scores: Sequence[float] | None = None,
            dropped: Sequence[bool] | None = None, details: Sequence[dict[str, Any]] | None = None) -> Combined:
    """Combine frames' per-position probabilities, weighted by ``quality``; records ids, qualities and weights."""
    q = qualities(quality, probs, rows, scores)
    w = relative_weights(q, dropped)
    frames = [{"id": str(i), "quality": round(float(qq), 6), "weight": ww, **(dict(details[j]) if details else {})}
              for j, (i, qq, ww) in enumerate(zip(ids, q, w, strict=True))]
    return Combined(combine_probs(probs, w), frames, quality)


def frame_images(path: Path) -> list[Path]:
    """The frames of one plate row: ``path`` itself for a file, else the folder's images sorted by name."""
    if not path.is_dir():
        return [path]
    files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                   and not p.name.startswith("."))
    if not files:
        raise VarSRError(f"{path.name}: the folder holds no frame images ({', '.join(IMAGE_SUFFIXES)})")
    return files


def read_frames(images: Sequence[Any], ids: Sequence[str], read: Callable[[Any, bool | None], RowReading],
                first: RowReading | None = None, quality: str = DEFAULT_QUALITY) -> tuple[RowReading, list[dict]]:
    """Read every frame of one row with ``read(image, invert)`` and combine them.

    All frames are read in one polarity: each chooses its own, and frames in the minority are read
    again in the majority's (ties: the first frame's). ``first`` is frame 0's reading when the
    caller already has it. Returns the combined reading (its ``extra["combined"]`` is the record)
    and the per-frame list (id, quality, weight, polarity, cell bounds)."""
    readings = [first if first is not None else read(images[0], None)]
    readings += [read(im, None) for im in images[1:]]
    votes = sum(1 if r.inverted else -1 for r in readings)
    inv = readings[0].inverted if votes == 0 else votes > 0
    readings = [r if r.inverted == inv else read(im, inv) for r, im in zip(readings, images, strict=True)]
    details = [{"inverted": r.inverted, "bounds": [round(b, 4) for b in r.bounds]} for r in readings]
    comb = combine([r.probs for r in readings], ids, quality, rows=[np.asarray(im) for im in images],
                   details=details)
    out = RowReading(comb.probs, list(readings[0].classes), inv, readings[0].bounds, readings[0].method,
                     readings[0].k, readings[0].confidence, extra={"combined": comb.record()})
    return out, comb.frames
