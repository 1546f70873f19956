"""Cell boundaries that do not depend on an exact equal split.

:func:`search_bounds` starts from equal cells and moves each cut (and the two outer edges) by a
fraction of a cell width, keeping a move when the plate reader is surer of the two cells it
separates (the summed log of their top class probability, the cells read as bicubic upscales in
the polarity the reader prefers). Two passes of coordinate ascent over a small grid; no labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from core.nets.classifier import CharClassifier
from core.plates.prep import stretch, to_grey
from core.plates.reading import bicubic_up, choose_polarity, classify, cut_cells, equal_bounds, reader_temperature

STEPS = (-0.3, -0.15, 0.0, 0.15, 0.3)


@dataclass
class CellSearch:
    """The chosen interior boundaries and outer edges (fractions of the row's width) and the score."""

    bounds: list[float]
    left: float
    right: float
    score: float
    equal_score: float
    inverted: bool

    def apply(self, row: np.ndarray) -> tuple[np.ndarray, list[float]]:
        """The row cropped to ``left``-``right`` and the interior bounds relative to the crop."""
        w = row.shape[1]
        x0 = int(round(self.left * w))
        x1 = max(int(round(self.right * w)), x0 + 1)
        span = (x1 - x0) / w
        return row[:, x0:x1], [min(1.0, max(0.0, (b - x0 / w) / span)) for b in self.bounds]


def _cells(row: np.ndarray, edges: Sequence[float], cell: tuple[int, int]) -> torch.Tensor:
    """Cells between consecutive ``edges`` (fractions, including the outer two)."""
    left, right = edges[0], edges[-1]
    span = right - left
    inner = [(e - left) / span for e in edges[1:-1]]
    w = row.shape[1]
    x0, x1 = int(round(left * w)), max(int(round(right * w)), int(round(left * w)) + 1)
    return cut_cells(row[:, x0:x1], inner, cell)


def _score(clf: CharClassifier, cells: torch.Tensor, t: float) -> torch.Tensor:
    p = classify(clf, bicubic_up(cells, clf.info.size), t)
    return torch.log(p.max(1).values.clamp_min(1e-9))


def search_bounds(clf: CharClassifier, row: np.ndarray, n: int, steps: Sequence[float] = STEPS, passes: int = 2,
                  edge_steps: Sequence[float] = (0.0, 0.15, 0.3, 0.45, 0.6),
                  invert: bool | None = None) -> CellSearch:
    """Search cut positions for a row of ``n`` characters (see the module docstring).

    First the outer edges: every pair of inward trims in ``edge_steps`` (fractions of a cell) with
    equal cells between them; then each interior cut in turn by ``steps``, ``passes`` times.
    ``bounds`` are interior boundaries and ``left``/``right`` the outer edges, all fractions of the
    whole row's width; edges only move inwards (a cell never grows outside the analyst's box).
    :meth:`CellSearch.apply` crops the row to the edges and gives the bounds relative to the crop.
    """
    g = stretch(to_grey(row))
    h, w = g.shape
    cell = (max(1, round(w / n)), max(1, h))
    t = reader_temperature(clf)
    eq = equal_bounds(n)
    if invert is None:
        invert, _ = choose_polarity(clf, g, eq, cell, t)
    if invert:
        g = 255.0 - g
    unit = 1.0 / n
    equal_edges = [0.0, *eq, 1.0]
    equal_score = float(_score(clf, _cells(g, equal_edges, cell), t).sum())
    # 1. outer edges, equal cells between them
    trials = [(a * unit, 1.0 - b * unit) for a in edge_steps for b in edge_steps]
    batch = torch.cat([_cells(g, [lo + (hi - lo) * i / n for i in range(n + 1)], cell) for lo, hi in trials])
    scores = _score(clf, batch, t).view(len(trials), n).sum(1)
    lo, hi = trials[int(scores.argmax())]
    edges = [lo + (hi - lo) * i / n for i in range(n + 1)]
    unit = (hi - lo) / n
    # 2. each interior cut
    for _ in range(passes if n > 1 else 0):
        for i in range(1, n):
            opts = [e for e in (edges[i] + s * unit for s in steps)
                    if edges[i - 1] + 0.4 * unit < e < edges[i + 1] - 0.4 * unit]
            if len(opts) < 2:
                continue
            batch = torch.cat([_cells(g, [edges[i - 1], e, edges[i + 1]], cell) for e in opts])
            edges[i] = opts[int(_score(clf, batch, t).view(len(opts), 2).sum(1).argmax())]
    score = float(_score(clf, _cells(g, edges, cell), t).sum())
    if score < equal_score:  # never worse than the equal split by the reader's own measure
        edges, score = equal_edges, equal_score
    return CellSearch(edges[1:-1], edges[0], edges[-1], score, equal_score, bool(invert))
