"""How a boxed character row is cut into cells: explicit edges and the row's polarity.

A :class:`CellGeometry` holds the ``n + 1`` cell edges (fractions of the row's width, increasing;
equal cells between 0 and 1 by default) and whether the row is inverted before the model (light
characters on a dark plate; the plate models and the reader expect dark on light).

In a recipe's ``source`` it is written as ``cells``: ``{"n", "bounds"}`` (the interior edges, as
recipes have always held them), ``"edges"`` (all ``n + 1``) only when the outer edges are not the
row's own, and ``"inverted": true`` only when the row is inverted, so a row cut into equal cells
writes exactly what it did before. A recipe without bounds means equal cells.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageOps

from core.errors import RecipeError, VarSRError
from core.jsonchecks import is_int, nums
from core.workbench.evidence import cut_at_edges

#: The narrowest a cell may be dragged to (a fraction of the row's width).
MIN_CELL = 0.01


def _equal_edges(n: int) -> tuple[float, ...]:
    # the interior edges exactly as core.workbench.evidence.equal_cells writes them (bit-identical replays)
    return (0.0, *(i / n for i in range(1, n)), 1.0)


@dataclass(frozen=True)
class CellGeometry:
    """The ``n + 1`` cell edges of a row (fractions of its width) and its polarity for the model."""

    edges: tuple[float, ...]
    inverted: bool = False

    def __post_init__(self) -> None:
        e = tuple(float(x) for x in self.edges)
        if len(e) < 2:
            raise VarSRError("a row has at least one cell (two edges)")
        object.__setattr__(self, "edges", e)

    @classmethod
    def equal(cls, n: int, inverted: bool = False) -> CellGeometry:
        """``n`` equal cells over the whole row."""
        return cls(_equal_edges(max(1, int(n))), inverted)

    @classmethod
    def from_bounds(cls, n: int, bounds: Sequence[float] | None, outer: tuple[float, float] = (0.0, 1.0),
                    inverted: bool = False) -> CellGeometry:
        """From interior ``bounds`` (none or empty: equal cells) and the outer edges."""
        n = max(1, int(n))
        lo, hi = float(outer[0]), float(outer[1])
        if bounds and len(bounds) == n - 1:
            inner = tuple(float(b) for b in bounds)
        else:  # lo + (hi - lo) * i / n is exactly i / n for the whole row
            inner = tuple(lo + (hi - lo) * i / n for i in range(1, n))
        return cls((lo, *inner, hi), inverted)

    @property
    def n(self) -> int:
        return len(self.edges) - 1

    @property
    def bounds(self) -> list[float]:
        """The interior edges (what recipes and cases have always recorded as ``bounds``)."""
        return list(self.edges[1:-1])

    @property
    def outer(self) -> tuple[float, float]:
        return self.edges[0], self.edges[-1]

    def to_info(self) -> dict[str, Any]:
        """The recipe's ``source.cells`` (see the module docstring)."""
        d: dict[str, Any] = {"n": self.n, "bounds": [float(b) for b in self.bounds]}  # exact: replayed
        if self.outer != (0.0, 1.0):
            d["edges"] = [float(e) for e in self.edges]
        if self.inverted:
            d["inverted"] = True
        return d

    @classmethod
    def from_info(cls, info: dict[str, Any] | None) -> CellGeometry:
        """The geometry a recipe's ``source.cells`` records (:class:`RecipeError` if it is malformed)."""
        info = info or {}
        if not check_info(info):
            raise RecipeError("a recipe's cells are malformed")
        n = int(info.get("n") or 1)
        inverted = bool(info.get("inverted", False))
        if info.get("edges"):
            return cls(tuple(float(e) for e in info["edges"]), inverted)
        bounds = [float(b) for b in info.get("bounds") or []]
        if bounds and len(bounds) != n - 1:  # as older versions replayed them: one more cell than bounds
            n = len(bounds) + 1
        return cls.from_bounds(n, bounds, inverted=inverted)

    def moved(self, i: int, x: float) -> CellGeometry:
        """Edge ``i`` moved to ``x``, kept at least :data:`MIN_CELL` from its neighbours and inside the row."""
        e = list(self.edges)
        lo = e[i - 1] + MIN_CELL if i > 0 else 0.0
        hi = e[i + 1] - MIN_CELL if i < self.n else 1.0
        e[i] = min(hi, max(lo, float(x)))
        return CellGeometry(tuple(e), self.inverted)

    def cut(self, crop: Image.Image) -> list[Image.Image]:
        """The crop cut at the edges (whole pixels), each cell inverted when the row is."""
        if self.n == 1 and self.outer == (0.0, 1.0):
            cells = [crop]
        else:
            cells = cut_at_edges(crop, self.edges)
        if self.inverted:
            cells = [ImageOps.invert(c if c.mode in ("L", "RGB") else c.convert("RGB")) for c in cells]
        return cells


#: From this many pixels per character up the reader's choice of polarity is trusted without a warning.
SURE_POLARITY_PX = 3.5


@dataclass(frozen=True)
class CellFit:
    """What :func:`fit_cells` found: the geometry, the reader's score of it and of equal cells."""

    geometry: CellGeometry
    score: float
    equal_score: float
    px_per_char: float = 0.0

    @property
    def polarity_unsure(self) -> bool:
        """Below :data:`SURE_POLARITY_PX` px per character the reader's polarity guess is often wrong (on
        708 held-out real rows with labelled polarity it is right for 70.6 % at 2x4, 87.4 % at 4x8):
        the analyst should check it."""
        return 0 < self.px_per_char < SURE_POLARITY_PX


def fit_cells(crop: Image.Image, n: int, reader: Any = None) -> CellFit:
    """Search the row's cell edges and polarity by the plate reader's confidence
    (:func:`core.plates.cells.search_bounds`; never scored below equal cells). Torch: run it in a worker."""
    import numpy as np

    from core.plates.cells import search_bounds
    from core.plates.reading import load_reader

    n = max(1, int(n))
    clf = reader if reader is not None else load_reader()
    found = search_bounds(clf, np.asarray(crop.convert("L")), n)
    edges = (float(found.left), *(float(b) for b in found.bounds), float(found.right))
    return CellFit(CellGeometry(edges, bool(found.inverted)), float(found.score), float(found.equal_score),
                   crop.size[0] / n)


def check_info(v: Any) -> bool:
    """Whether ``v`` is a well-formed ``source.cells`` (n, bounds, edges, inverted; each optional)."""
    if not isinstance(v, dict):
        return False
    n = v.get("n")
    edges = v.get("edges")
    return ((n is None or (is_int(n) and n >= 1)) and (v.get("bounds") is None or nums(v["bounds"]))
            and (edges is None or (nums(edges) and len(edges) >= 2 and (n is None or len(edges) == n + 1)
                                   and all(a < b for a, b in zip(edges[:-1], edges[1:], strict=False))))
            and (v.get("inverted") is None or isinstance(v["inverted"], bool)))
