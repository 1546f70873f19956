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


def mixture_log_prob(components: Sequence[tuple[float, np.ndarray]], codes: np.ndarray) -> np.ndarray:
    """``log sum_c w_c prod_i P_ci(s_i)`` for strings given as class codes ``(N, L)``, under components
    ``(w_c, log_probs_c (L, K))`` (e.g. a row read as it is and inverted:
    :func:`core.plates.reading.polarity_weights`)."""
    codes = np.asarray(codes, dtype=np.int64).reshape(-1, len(components[0][1]))
    pos = np.arange(codes.shape[1])[None, :]
    return np.logaddexp.reduce([np.log(max(w, 1e-300)) + np.asarray(lp, dtype=np.float64)[pos, codes].sum(1)
                                for w, lp in components], axis=0)


def mixture_top_strings(components: Sequence[tuple[float, np.ndarray]], classes: Sequence[str],
                        top: int = 10) -> list[tuple[str, float]]:
    """The ``top`` most probable strings under a mixture of product distributions, best first.

    Exact: a string in the mixture's top ``top`` is in some component's top ``top`` (else ``top``
    strings beat it in every component, hence in the mixture), so each component's top strings are
    pooled and rescored. A single component is its own beam (:func:`top_strings`).
    """
    if len(components) == 1:
        return top_strings(components[0][1], classes, top)
    pool = sorted({t for _, lp in components for t, _ in top_strings(lp, classes, top)})
    if not pool:
        return []
    where = {c: i for i, c in enumerate(classes)}
    scores = mixture_log_prob(components, np.array([[where[c] for c in t] for t in pool]))
    ranked = sorted(zip(pool, scores.tolist(), strict=True), key=lambda x: (-round(x[1], 9), x[0]))
    return ranked[:top]
