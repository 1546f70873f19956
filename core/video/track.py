"""Following a marked region through neighbouring frames by normalised cross-correlation (torch).

The analyst marks a box in one frame (an *anchor*); :func:`track_region` finds it in the frames
around by matching the anchor's template (the box widened by ``context`` on every side, in luma)
inside a search window around the position predicted from the last two frames (constant
velocity). The match is the peak of the zero-mean normalised cross-correlation (``score`` in
[-1, 1]; 1 is a perfect match up to brightness and contrast), refined to sub-pixel by a parabola
through the peak and its neighbours. The template is always the anchor's, never the last match,
so errors do not accumulate; a correction is a new anchor, and frames are tracked from the
nearest anchor. Scale and rotation are not followed: on an approaching car, add anchors.

A :class:`Track` keeps every frame's box, score and how it was made (``marked``, ``corrected``,
``tracked``), and which frames the analyst dropped; it is plain JSON for the case's recipe.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

#: Below this score a tracked frame is flagged as doubtful (the analyst should check or drop it).
LOW_SCORE = 0.6
LUMA = (0.299, 0.587, 0.114)
#: Frames read at a time when tracking backwards (each block is decoded forwards).
BLOCK = 16


@dataclass(frozen=True)
class Box:
    """A box in frame pixels: top-left corner (x, y), width and height (sub-pixel)."""

    x: float
    y: float
    w: float
    h: float

    def moved(self, dx: float, dy: float) -> Box:
        return Box(self.x + dx, self.y + dy, self.w, self.h)

    def crop(self, image: np.ndarray) -> np.ndarray:
        """The box's pixels (rounded to whole pixels, clipped to the image)."""
        hh, ww = image.shape[:2]
        x0, y0 = max(0, int(round(self.x))), max(0, int(round(self.y)))
        x1, y1 = min(ww, int(round(self.x + self.w))), min(hh, int(round(self.y + self.h)))
        return image[y0:y1, x0:x1]


@dataclass
class TrackPoint:
    """One frame of a track."""

    frame: int
    box: Box
    score: float
    source: str  # marked | corrected | tracked
    dropped: bool = False

    @property
    def doubtful(self) -> bool:
        return self.source == "tracked" and self.score < LOW_SCORE


@dataclass
class Track:
    """A region followed through frames (see the module docstring)."""

    points: dict[int, TrackPoint] = field(default_factory=dict)
    context: float = 0.5
    radius: float = 0.0

    def anchors(self) -> dict[int, Box]:
        return {i: p.box for i, p in self.points.items() if p.source in ("marked", "corrected")}

    def drop(self, frame: int, dropped: bool = True) -> None:
        """Leave a frame out of (or put it back into) what is combined."""
        self.points[frame].dropped = dropped

    def used(self) -> list[TrackPoint]:
        """The frames that are not dropped, in order."""
        return [self.points[i] for i in sorted(self.points) if not self.points[i].dropped]

    def to_json(self) -> dict[str, Any]:
        return {"context": self.context, "radius": self.radius,
                "points": [{**asdict(self.points[i]), "box": asdict(self.points[i].box)} for i in sorted(self.points)]}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Track:
        pts = {int(p["frame"]): TrackPoint(int(p["frame"]), Box(**p["box"]), float(p["score"]), str(p["source"]),
                                           bool(p.get("dropped", False))) for p in d["points"]}
        return cls(pts, float(d.get("context", 0.5)), float(d.get("radius", 0.0)))


def to_luma(image: np.ndarray) -> torch.Tensor:
    """``(H, W)`` float32 luma of an RGB ``(H, W, 3)`` or grey ``(H, W)`` image."""
    a = torch.from_numpy(np.ascontiguousarray(image)).float()
    if a.dim() == 3:
        a = a @ torch.tensor(LUMA)
    return a


def ncc_map(search: torch.Tensor, template: torch.Tensor) -> torch.Tensor:
    """Zero-mean normalised cross-correlation of ``template (th, tw)`` at every valid place in
    ``search (H, W)``: ``(H - th + 1, W - tw + 1)`` in [-1, 1] (0 where the window is flat)."""
    th, tw = template.shape
    n = th * tw
    s = search.double() - search.double().mean()
    t0 = template.double() - template.double().mean()
    nt = torch.sqrt((t0 * t0).sum())
    h, w = s.shape
    if n <= 64:  # small templates: a direct convolution
        num = F.conv2d(s[None, None], t0[None, None])[0, 0]
    else:  # large ones: correlation through the FFT (no wrap-around in the valid part)
        spec = torch.fft.rfft2(s) * torch.conj(torch.fft.rfft2(t0, s=(h, w)))
        num = torch.fft.irfft2(spec, s=(h, w))[: h - th + 1, : w - tw + 1]
    ii = F.pad(s, (1, 0, 1, 0)).cumsum(0).cumsum(1)
    ii2 = F.pad(s * s, (1, 0, 1, 0)).cumsum(0).cumsum(1)

    def window(a: torch.Tensor) -> torch.Tensor:
        return a[th:, tw:] - a[:-th, tw:] - a[th:, :-tw] + a[:-th, :-tw]

    var = (window(ii2) - window(ii) ** 2 / n).clamp_min(0)
    den = torch.sqrt(var) * nt
    out = torch.where(den > 1e-6 * max(1.0, float(nt)) ** 2, num / den.clamp_min(1e-12), torch.zeros_like(num))
    return out.clamp(-1, 1).float()


def _subpixel(m: torch.Tensor, y: int, x: int) -> tuple[float, float]:
    """Parabola vertex through the peak and its two neighbours on each axis (offsets in [-0.5, 0.5])."""
    def vertex(a: float, b: float, c: float) -> float:
        d = a - 2 * b + c
        return 0.0 if d >= 0 else max(-0.5, min(0.5, 0.5 * (a - c) / d))

    h, w = m.shape
    dy = vertex(float(m[y - 1, x]), float(m[y, x]), float(m[y + 1, x])) if 0 < y < h - 1 else 0.0
    dx = vertex(float(m[y, x - 1]), float(m[y, x]), float(m[y, x + 1])) if 0 < x < w - 1 else 0.0
    return dy, dx


def _window(image: np.ndarray, x0: int, y0: int, x1: int, y1: int) -> torch.Tensor:
    """Luma of ``image[y0:y1, x0:x1]``; where that reaches past the frame, its edge pixels repeated (so a
    region near the edge keeps its whole template and may move towards the edge)."""
    hh, ww = image.shape[:2]
    cx0, cy0, cx1, cy1 = max(0, min(ww - 1, x0)), max(0, min(hh - 1, y0)), max(1, min(ww, x1)), max(1, min(hh, y1))
    a = to_luma(image[cy0:max(cy0 + 1, cy1), cx0:max(cx0 + 1, cx1)])
    pads = (max(0, cx0 - x0), max(0, x1 - max(cx0 + 1, cx1)), max(0, cy0 - y0), max(0, y1 - max(cy0 + 1, cy1)))
    if any(pads):
        a = F.pad(a[None, None], pads, mode="replicate")[0, 0]
    return a[: y1 - y0, : x1 - x0]


class _Template:
    """The anchor's template: its box widened by ``context`` (whole pixels) in the anchor frame."""

    def __init__(self, image: np.ndarray, box: Box, context: float) -> None:
        pad = max(2, int(math.ceil(context * min(box.w, box.h))))
        x0, y0 = int(math.floor(box.x)) - pad, int(math.floor(box.y)) - pad
        x1, y1 = int(math.ceil(box.x + box.w)) + pad, int(math.ceil(box.y + box.h)) + pad
        self.origin = (x0, y0)
        self.box = box
        self.pixels = _window(image, x0, y0, x1, y1)

    def find(self, image: np.ndarray, predicted: Box, radius: float) -> tuple[Box, float]:
        """The box in ``image`` whose surroundings match best within ``radius`` px of ``predicted``."""
        th, tw = self.pixels.shape
        hh, ww = image.shape[:2]
        # where the template's top-left would be for the predicted box
        px = self.origin[0] + (predicted.x - self.box.x)
        py = self.origin[1] + (predicted.y - self.box.y)
        r = int(math.ceil(radius))
        sx0, sy0 = int(math.floor(px)) - r, int(math.floor(py)) - r
        sx1, sy1 = int(math.ceil(px)) + tw + r, int(math.ceil(py)) + th + r
        # the box itself must stay at least partly inside the frame
        sx0, sy0 = max(sx0, -tw + 1), max(sy0, -th + 1)
        sx1, sy1 = min(sx1, ww + tw - 1), min(sy1, hh + th - 1)
        if sx1 - sx0 < tw or sy1 - sy0 < th:
            return predicted, -1.0
        m = ncc_map(_window(image, sx0, sy0, sx1, sy1), self.pixels)
        k = int(torch.argmax(m))
        y, x = divmod(k, m.shape[1])
        dy, dx = _subpixel(m, y, x)
        tx, ty = sx0 + x + dx, sy0 + y + dy
        return self.box.moved(tx - self.origin[0], ty - self.origin[1]), float(m[y, x])


def _forward(get_frame: Callable[[int], np.ndarray], indices: list[int]) -> Iterator[tuple[int, np.ndarray]]:
    for i in indices:
        yield i, get_frame(i)


def _backward(get_frame: Callable[[int], np.ndarray], indices: list[int],
              block: int = BLOCK) -> Iterator[tuple[int, np.ndarray]]:
    """Frames in decreasing order, read in increasing blocks (a clip decodes forward, not backward)."""
    for b in range(0, len(indices), block):
        chunk = sorted(indices[b:b + block])
        images = [get_frame(i) for i in chunk]
        yield from reversed(list(zip(chunk, images, strict=True)))


def track_region(get_frame: Callable[[int], np.ndarray], anchors: dict[int, Box], frames: Iterable[int],
                 context: float = 0.5, radius: float | None = None) -> Track:
    """Track the anchors' region through ``frames`` (see the module docstring).

    ``get_frame(i)`` returns frame ``i`` as an RGB or grey array (e.g. ``lambda i: clip.frame(i).image``;
    frames are asked for in runs of increasing index, so a clip decodes each once when stepping).
    ``anchors`` maps frame index to the analyst's box (the first one is ``marked``, later ones
    ``corrected``). ``radius``: the search reach around the prediction, default the larger of 8 px and
    half the box's longer side. Each frame is tracked from the nearest anchor, outward, frame by frame.
    """
    if not anchors:
        raise ValueError("no anchor: mark the region in one frame first")
    wanted = sorted(set(frames) | set(anchors))
    first = min(anchors)
    track = Track(context=context)
    keys = sorted(anchors)
    for a in keys:
        track.points[a] = TrackPoint(a, anchors[a], 1.0, "marked" if a == first else "corrected")
    # each non-anchor frame belongs to its nearest anchor (ties to the earlier one)
    owner: dict[int, list[int]] = {a: [] for a in keys}
    for i in wanted:
        if i not in anchors:
            owner[min(keys, key=lambda a: (abs(a - i), a))].append(i)
    for a in keys:
        box = anchors[a]
        reach = radius if radius is not None else max(8.0, 0.5 * max(box.w, box.h))
        track.radius = reach
        tpl = _Template(get_frame(a), box, context)
        after = [i for i in owner[a] if i > a]
        before = sorted((i for i in owner[a] if i < a), reverse=True)
        for side in (_forward(get_frame, after), _backward(get_frame, before)):
            prev2, prev = box, box
            for i, image in side:
                pred = prev.moved(prev.x - prev2.x, prev.y - prev2.y)
                found, score = tpl.find(image, pred, reach)
                track.points[i] = TrackPoint(i, found, round(score, 6), "tracked")
                prev2, prev = prev, found
    track.points = dict(sorted(track.points.items()))
    return track
