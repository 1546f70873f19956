"""Diverse pick: k of N candidates that cover the most distinct identities (farthest-point selection).

Samples of one input often repeat an identity; a shortlist of k near-duplicates wastes k - 1 slots.
Greedy farthest-point selection in embedding space starts from the most typical candidate (the
medoid: smallest total distance to the others) and then repeatedly adds the candidate farthest
from everything chosen so far. It is the classic 2-approximation of the k-center problem: every
unpicked candidate is within the returned ``radius`` of a picked one, and no set of k picks can do
better than half that.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.search.errors import SearchError
from core.search.rank import distances


@dataclass
class DiversePick:
    """Chosen indices (in pick order), each pick's distance to the earlier picks, and the cover radius."""

    indices: list[int]
    gaps: list[float]
    radius: float


def farthest_point_pick(embeddings: np.ndarray, k: int, first: int | None = None) -> DiversePick:
    """Pick ``k`` rows of ``embeddings`` ``(N, D)``; ``first`` forces the starting row (default: medoid).

    Exact duplicates are only picked once every distinct embedding has been picked.
    """
    e = np.asarray(embeddings, dtype=np.float32)
    if e.ndim != 2 or len(e) == 0:
        raise SearchError("no candidates to pick from")
    n = len(e)
    if not 1 <= k:
        raise SearchError(f"k must be at least 1, not {k}")
    k = min(k, n)
    d = distances(e, e)
    np.fill_diagonal(d, 0.0)
    start = int(np.argmin(d.sum(1))) if first is None else int(first)
    if not 0 <= start < n:
        raise SearchError(f"first must be a candidate index below {n}")
    picked, gaps = [start], [0.0]
    nearest = d[start].copy()
    nearest[start] = -1.0
    for _ in range(k - 1):
        nxt = int(np.argmax(nearest))  # ties: the lowest index
        gaps.append(float(nearest[nxt]))
        picked.append(nxt)
        nearest = np.minimum(nearest, d[nxt])
        nearest[picked] = -1.0
    rest = np.setdiff1d(np.arange(n), picked)
    radius = float(d[np.ix_(rest, picked)].min(1).max()) if len(rest) else 0.0
    return DiversePick(picked, gaps, radius)
