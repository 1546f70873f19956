"""Held-out real characters and their accuracy: each known box of a :class:`PlateRow` cut exactly
(the analyst's clean, exactly segmented row) and prepared as the classifier reads it."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from core.data.plates import CLASSES
from core.nets.classifier import CharClassifier
from core.plates.prep import is_light_on_dark, prepare_char, stretch
from core.plates.real import PlateRow

_INDEX = {c: i for i, c in enumerate(CLASSES)}


def row_inverted(row: PlateRow) -> bool:
    """Whether a plate's character row is light on dark (decided on the union of its boxes)."""
    if "light_on_dark" in row.meta:
        return bool(row.meta["light_on_dark"])
    x0, y0, x1, y1 = (int(round(v)) for v in row.row_box())
    return is_light_on_dark(stretch(row.image[y0:y1, x0:x1]))


def cut_chars(rows: Sequence[PlateRow], size: tuple[int, int] = (8, 16), margin: float = 0.0,
              normalise: bool = True, invert: bool | None = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every known character of ``rows`` cut at its box (widened by ``margin`` x its height) and
    prepared at ``size``: images uint8 ``(N, 1, h, w)``, labels ``(N,)``, and each one's row index.
    ``invert``: invert every row (True), none (False) or as :func:`row_inverted` decides (None).
    ``normalise`` False only converts to grey, pads and resizes (how the first classifier was fed)."""
    images, labels, owner = [], [], []
    for r, row in enumerate(rows):
        inv = (row_inverted(row) if invert is None else invert) if normalise else False
        h, w = row.image.shape
        for i in row.known:
            x0, y0, x1, y1 = row.box(i)
            m = margin * (y1 - y0)
            xa, ya = max(0, math.floor(x0 - m)), max(0, math.floor(y0 - m))
            xb, yb = min(w, math.ceil(x1 + m)), min(h, math.ceil(y1 + m))
            crop = row.image[ya:yb, xa:xb]
            images.append(prepare_char(crop, size, invert=inv, restretch=normalise))
            labels.append(_INDEX[row.text[i]])
            owner.append(r)
    x = torch.from_numpy(np.stack(images))[:, None] if images else torch.zeros(0, 1, size[1], size[0],
                                                                              dtype=torch.uint8)
    return x, torch.tensor(labels, dtype=torch.long), torch.tensor(owner, dtype=torch.long)


def read_chars(classifier: CharClassifier, rows: Sequence[PlateRow], margin: float = 0.0,
               temperature: float = 1.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Read every known character of ``rows`` with the polarity the classifier is surer of.

    Each row is read as it is and inverted; the reading with the larger summed log of the top
    class probability wins (no label is used). Returns probabilities ``(N, K)`` (at
    ``temperature``), labels, row index per character and whether each row was inverted.
    """
    size = classifier.info.size
    x0, y, owner = cut_chars(rows, size, margin, invert=False)
    x1, _, _ = cut_chars(rows, size, margin, invert=True)
    with torch.inference_mode():
        classifier.eval()
        l0 = torch.cat([classifier(x0[i : i + 2048].float() / 255) for i in range(0, len(x0), 2048)])
        l1 = torch.cat([classifier(x1[i : i + 2048].float() / 255) for i in range(0, len(x1), 2048)])
    s0 = torch.zeros(len(rows)).index_add_(0, owner, F.log_softmax(l0, 1).max(1).values)
    s1 = torch.zeros(len(rows)).index_add_(0, owner, F.log_softmax(l1, 1).max(1).values)
    inverted = s1 > s0
    logits = torch.where(inverted[owner][:, None], l1, l0)
    return F.softmax(logits / temperature, 1), y, owner, inverted


@dataclass
class Accuracy:
    """Per-character and whole-plate accuracy with counts and standard errors."""

    char: float
    char_se: float
    n_chars: int
    plate: float
    plate_se: float
    n_plates: int

    def to_dict(self) -> dict[str, float | int]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in self.__dict__.items()}

    def __str__(self) -> str:
        return (f"chars {100 * self.char:.1f} % +- {100 * self.char_se:.1f} (n={self.n_chars}), "
                f"plates {100 * self.plate:.1f} % +- {100 * self.plate_se:.1f} (n={self.n_plates})")


def se(p: float, n: int) -> float:
    """Standard error of a proportion ``p`` over ``n`` items."""
    return math.sqrt(max(p * (1 - p), 0.0) / n) if n else float("nan")


def clustered_se(ok: torch.Tensor, owner: torch.Tensor) -> float:
    """Standard error of the mean of ``ok`` when items of one plate (``owner``) are correlated
    (the ratio estimator's cluster-robust error; larger than the binomial one)."""
    n = len(ok)
    plates = torch.unique(owner)
    if n == 0 or len(plates) < 2:
        return float("nan")
    p = float(ok.mean())
    resid = torch.zeros(int(owner.max()) + 1, dtype=torch.float64).index_add_(0, owner, ok.double() - p)[plates]
    return float(math.sqrt(float((resid**2).sum()) * len(plates) / (len(plates) - 1)) / n)


def accuracy(pred: torch.Tensor, labels: torch.Tensor, owner: torch.Tensor) -> Accuracy:
    """Character accuracy (standard error clustered by plate) and the share of plates with every
    known character right."""
    ok = (pred == labels).float()
    n = len(ok)
    plates = torch.unique(owner)
    per_plate = torch.stack([ok[owner == p].min() for p in plates]) if n else torch.zeros(0)
    c = float(ok.mean()) if n else float("nan")
    p = float(per_plate.mean()) if n else float("nan")
    return Accuracy(c, clustered_se(ok, owner), n, p, se(p, len(plates)), len(plates))
