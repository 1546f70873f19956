"""Reading a boxed character row: polarity, cells, candidates, per-position probabilities.

The pipeline shared by :mod:`core.plates.evaluate` and :mod:`core.plates.batch`:

1. the row (grey, any size) is stretched to its 2-98 % percentiles;
2. it is cut into ``n`` cells (equal, at given boundaries, or searched: :func:`search_bounds`);
3. each cell is reduced with the area filter to the model's input (e.g. 2x4) and given ``k``
   candidates (``varsr``), one output (``det``) or its bicubic upscale (``bicubic``);
4. every 8x16 image is stretched like the reader's training characters and read by the plate
   reader; ``P_i`` is the mean softmax over cell ``i``'s images (candidates drawn at the model's
   calibrated ``sample_temperature`` unless a ``temperature`` is given);
5. the row is read both as it is and inverted; the reading whose bicubic cells the reader is
   surer of (summed log top probability) is kept (light-on-dark plates).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from core.data.common import resize
from core.nets.classifier import CharClassifier, default_path, load_classifier
from core.plates.prep import stretch, to_grey

READER = "plate-reader"
BICUBIC = "bicubic"
#: The candidates' and the bicubic upscale's per-position distributions, averaged (measured best).
FUSED = "varsr+bicubic"
#: Calibrated softmax temperature of the shipped reader (set from its JSON when present).
DEFAULT_TEMPERATURE = 1.0


def load_reader(path: str | Path | None = None) -> CharClassifier:
    """The plate reader (``resources/classifiers/plate-reader``), or the classifier at ``path``."""
    p = Path(path) if path else default_path(READER)
    if not p.is_file():
        p = default_path("plate-char")
    return load_classifier(p)


def reader_temperature(clf: CharClassifier) -> float:
    """The reader's calibrated temperature (``extra.temperature`` in its JSON), else 1."""
    return float(clf.info.extra.get("temperature", DEFAULT_TEMPERATURE))


#: Suffix of a reading's temperature table fitted on the polarity mixture's marginals.
MIX_KEY = "@mix"


def position_temperature(clf: CharClassifier, method: str, px_per_char: tuple[float, float],
                         mixture: bool = False) -> float:
    """The per-position temperature measured for ``method`` (varsr, det, bicubic) at the nearest
    measured pixels-per-character size (``extra.position_temperature`` in the reader's JSON:
    ``{"varsr": {"2x4": T, ...}, ...}``), else 1. A common temperature leaves every ranking as it
    is and only makes the shown probabilities honest. ``mixture``: the table fitted on the marginals
    of a row read both ways up (``<method>@mix``), else the method's own."""
    tables = clf.info.extra.get("position_temperature", {})
    table = (tables.get(method + MIX_KEY) if mixture else None) or tables.get(method, {})
    if not table:
        return 1.0
    sizes = {k: tuple(int(v) for v in k.split("x")) for k in table}
    best = min(sizes, key=lambda k: (abs(math.log(max(px_per_char[1], 0.5) / sizes[k][1])), sizes[k][1]))
    return float(table[best])


def model_method(model) -> str:
    """The reading a model gives: ``bicubic`` (no model), ``det`` (a deterministic one) or ``varsr``."""
    return BICUBIC if model is None else ("det" if model.config.deterministic else "varsr")


def equal_bounds(n: int) -> list[float]:
    """Interior boundaries (fractions of the width) of ``n`` equal cells."""
    return [i / n for i in range(1, n)]


def cut_cells(row: np.ndarray, bounds: Sequence[float], cell: tuple[int, int]) -> torch.Tensor:
    """Cut a grey row (uint8 or float 0-255) at ``bounds`` and area-resize each cell to ``cell`` = (w, h):
    ``(n, 1, h, w)`` floats in [0, 1]. Boundaries are sub-pixel: PIL's box resize takes fractional boxes."""
    img = Image.fromarray(np.clip(row, 0, 255).astype(np.float32), "F")
    width, height = img.size
    edges = [0.0, *(min(1.0, max(0.0, b)) for b in bounds), 1.0]
    out = []
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        x0, x1 = a * width, max(b * width, a * width + 0.25)
        out.append(np.asarray(img.resize(cell, Image.Resampling.BOX, box=(x0, 0.0, x1, float(height)))))
    return torch.from_numpy(np.stack(out) / 255.0).float()[:, None].clamp(0, 1)


def _hr_stretch(x: torch.Tensor) -> torch.Tensor:
    """Per-image 2-98 % stretch of ``(N, 1, H, W)`` in [0, 1] (as the reader's training characters)."""
    flat = x.flatten(1)
    lo = torch.quantile(flat, 0.02, dim=1)
    hi = torch.quantile(flat, 0.98, dim=1)
    span = (hi - lo).clamp_min(12 / 255)
    mid = torch.where(hi - lo < 12 / 255, (lo + hi) / 2, lo + span / 2)
    return ((x - mid.view(-1, 1, 1, 1)) / span.view(-1, 1, 1, 1) + 0.5).clamp(0, 1)


def classify(clf: CharClassifier, images: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Softmax ``(N, K)`` of the reader on ``(N, 1, H, W)`` images in [0, 1] (resized and stretched)."""
    w, h = clf.info.size
    x = images.float()
    if tuple(x.shape[-2:]) != (h, w):
        x = F.interpolate(x, size=(h, w), mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)
    x = _hr_stretch(x)
    clf.eval()
    with torch.inference_mode():
        logits = torch.cat([clf(x[i : i + 2048]) for i in range(0, len(x), 2048)])
    return F.softmax(logits / temperature, 1)


def bicubic_up(cells: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Cells ``(n, 1, h, w)`` upscaled bicubically to ``size`` = (w, h)."""
    return F.interpolate(cells, size=(size[1], size[0]), mode="bicubic", align_corners=False).clamp(0, 1)


@dataclass
class RowReading:
    """Per-position probabilities of one row (``probs (n, K)``) and how they were made."""

    probs: np.ndarray
    classes: list[str]
    inverted: bool
    bounds: list[float]
    method: str
    k: int
    confidence: float = 0.0  # mean log top probability of the bicubic cells that chose the polarity
    extra: dict = field(default_factory=dict)


def _candidates(model, lrs: torch.Tensor, k: int, seed: int, temperature: float | None) -> torch.Tensor:
    """``(n, k, 1, H, W)`` candidates (k = 1 for a deterministic model), drawn at ``temperature`` (None: the
    model's calibrated ``sample_temperature``, as the app draws them)."""
    t = float(model.config.sample_temperature) if temperature is None else temperature
    return model.sample(lrs, n=1 if model.config.deterministic else k, seed=seed, temperature=t)


def read_cells(clf: CharClassifier, cells: torch.Tensor, method: str, model=None, k: int = 16, seed: int = 0,
               temperature: float | None = None, reader_t: float = 1.0) -> np.ndarray:
    """``P_i`` for cells ``(n, 1, h, w)`` (already dark-on-light): mean softmax over each cell's images."""
    hr_size = clf.info.size
    if method == BICUBIC or model is None:
        return classify(clf, bicubic_up(cells, hr_size), reader_t).double().numpy()
    lw, lh = model.config.lr_size
    lrs = cells if tuple(cells.shape[-2:]) == (lh, lw) else F.interpolate(cells, size=(lh, lw), mode="area")
    lrs = lrs.mul(255).round().div(255)
    cands = _candidates(model, lrs, k, seed, temperature)  # (n, k, 1, H, W)
    n, kk = cands.shape[:2]
    p = classify(clf, cands.reshape(n * kk, *cands.shape[2:]), reader_t)
    return p.reshape(n, kk, -1).mean(1).double().numpy()


def polarity_scores(clf: CharClassifier, row: np.ndarray, bounds: Sequence[float], cell: tuple[int, int],
                    reader_t: float = 1.0) -> tuple[float, float]:
    """The reader's mean log top probability on the (stretched) row's bicubic cells read as it is and
    inverted: how sure it is of each polarity."""
    out = []
    for inv in (False, True):
        cells = cut_cells(255.0 - row if inv else row, bounds, cell)
        p = classify(clf, bicubic_up(cells, clf.info.size), reader_t)
        out.append(float(torch.log(p.max(1).values.clamp_min(1e-9)).mean()))
    return out[0], out[1]


def choose_polarity(clf: CharClassifier, row: np.ndarray, bounds: Sequence[float], cell: tuple[int, int],
                    reader_t: float = 1.0) -> tuple[bool, float]:
    """Whether to invert the (stretched) row, and the mean log top probability of the chosen reading:
    the reader is asked about both polarities' bicubic cells and the surer one wins."""
    as_is, inverted = polarity_scores(clf, row, bounds, cell, reader_t)
    return (True, inverted) if inverted > as_is else (False, as_is)


def polarity_weights(scores: tuple[float, float], n: int) -> tuple[float, float]:
    """Mixture weights of the two polarities from :func:`polarity_scores` of an ``n``-character row:
    proportional to the product of the positions' top probabilities (``exp(n * mean log)``).

    The reader is confident in both readings of a row and its surer polarity is often the wrong one
    (708 held-out real rows with labelled polarity: right for 70.6 % at 2x4 px per character, 87.4 %
    at 4x8); scoring a plate under both, weighted so, keeps the right one in play (2x4, bicubic:
    registry top 10 40.0 % in the chosen polarity, 44.6 % under the mixture;
    :func:`core.plates.evaluate.evaluate` with ``polarity="mix"``)."""
    a, b = n * scores[0], n * scores[1]
    m = max(a, b)
    ea, eb = math.exp(a - m), math.exp(b - m)
    return ea / (ea + eb), eb / (ea + eb)


def read_row(clf: CharClassifier, row: np.ndarray | Image.Image, n: int, method: str = "varsr", model=None,
             k: int = 16, seed: int = 0, temperature: float | None = None, bounds: Sequence[float] | None = None,
             invert: bool | None = None, cell: tuple[int, int] | None = None,
             reader_t: float | None = None) -> RowReading:
    """Read a boxed character row of ``n`` characters (see the module docstring).

    ``cell`` is the size each cell is cut to before the model (default: the row's own pixels per
    character, rounded); ``bounds`` None cuts equal cells; ``invert`` None chooses the polarity.
    """
    if not 1 <= n <= 32:
        raise ValueError(f"a row has 1-32 characters, not {n}")
    g = stretch(to_grey(row))
    h, w = g.shape
    if cell is None:
        cell = (max(1, round(w / n)), max(1, h))
    bounds = list(bounds) if bounds is not None else equal_bounds(n)
    reader_t = reader_temperature(clf) if reader_t is None else reader_t
    conf = 0.0
    if invert is None:
        invert, conf = choose_polarity(clf, g, bounds, cell, reader_t)
    cells = cut_cells(255.0 - g if invert else g, bounds, cell)
    probs = read_cells(clf, cells, method, model, k, seed, temperature, reader_t)
    kind = BICUBIC if method == BICUBIC else model_method(model)
    return RowReading(probs, list(clf.classes), bool(invert), bounds, kind, k if kind == "varsr" else 1, conf)


def reduce_row(row: np.ndarray, n: int, px: tuple[int, int]) -> np.ndarray:
    """A row reduced with the area filter so each of its ``n`` characters is ``px`` = (w, h) pixels (8-bit)."""
    img = Image.fromarray(to_grey(row), "L")
    return np.asarray(resize(img, (n * px[0], px[1])))


def entropy(p: np.ndarray) -> np.ndarray:
    """Entropy (nats) of each row of ``p``."""
    q = np.clip(p, 1e-12, 1)
    return -(q * np.log(q)).sum(-1)


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> tuple[float, list[dict]]:
    """ECE of the top class (equal-width confidence bins) and the reliability diagram's bins."""
    conf = probs.max(1)
    ok = probs.argmax(1) == labels
    edges = np.linspace(0, 1, bins + 1)
    ece, diagram = 0.0, []
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        m = (conf > a) & (conf <= b)
        if m.any():
            gap = abs(float(ok[m].mean()) - float(conf[m].mean()))
            ece += m.mean() * gap
            diagram.append({"bin": [round(float(a), 3), round(float(b), 3)], "n": int(m.sum()),
                            "confidence": round(float(conf[m].mean()), 4), "accuracy": round(float(ok[m].mean()), 4)})
    return float(ece), diagram


def temper(probs: np.ndarray, t: float) -> np.ndarray:
    """Per-position probabilities at temperature ``t``: ``P^(1/t)`` renormalised (t > 1 flattens)."""
    lp = np.log(np.clip(probs, 1e-12, 1)) / t
    lp -= lp.max(-1, keepdims=True)
    q = np.exp(lp)
    return q / q.sum(-1, keepdims=True)


def fit_temperature(probs: np.ndarray, labels: np.ndarray) -> float:
    """The temperature (grid 0.25-8, log-spaced) minimising the negative log-likelihood of ``labels``."""
    grid = np.exp(np.linspace(math.log(0.25), math.log(8.0), 97))
    idx = np.arange(len(labels))
    nll = [-np.log(np.clip(temper(probs, t)[idx, labels], 1e-12, 1)).mean() for t in grid]
    return float(grid[int(np.argmin(nll))])


def cross_fitted_ece(probs: np.ndarray, labels: np.ndarray, group: np.ndarray) -> tuple[float, float, float]:
    """ECE at T = 1, and the ECE when the temperature is fitted on one half of the plates (``group``
    even / odd) and measured on the other (both ways, weighted by size); returns those and the
    temperature fitted on all plates."""
    ece1 = expected_calibration_error(probs, labels)[0]
    a = group % 2 == 0
    total, n = 0.0, 0
    for fit, test in ((a, ~a), (~a, a)):
        if fit.sum() and test.sum():
            t = fit_temperature(probs[fit], labels[fit])
            total += expected_calibration_error(temper(probs[test], t), labels[test])[0] * int(test.sum())
            n += int(test.sum())
    return ece1, (total / n if n else float("nan")), fit_temperature(probs, labels)
