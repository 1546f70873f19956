"""Ranked strings of a product distribution (independent positions), exactly."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def top_strings(log_probs: np.ndarray, classes: Sequence[str], top: int = 10) -> list[tuple[str, float]]:
    """The ``top`` most probable strings of per-position log-probabilities ``(L, K)``, best first.

    A beam of ``top`` prefixes per position is exact for a product distribution (every prefix of
    a top-``top`` string is a top-``top`` prefix). Ties are broken by text.
    """
    beam: list[tuple[float, str]] = [(0.0, "")]
    for row in np.asarray(log_probs, dtype=np.float64):
        best = np.argsort(-row, kind="stable")[:top]
        cand = [(s + float(row[c]), t + classes[c]) for s, t in beam for c in best]
        cand.sort(key=lambda x: (-round(x[0], 9), x[1]))
        beam = cand[:top]
    return [(t, s) for s, t in beam]
