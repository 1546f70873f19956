"""Plate characters to train on: real and rendered, cut as real rows are cut, never a measured plate.

The pool behind the plate reader (``tools/train_plate_reader.py``) and the ``plate-*`` models
(data kind ``plate-real-chars``):

- OpenALPR ``train-ocr`` ``train`` split (character crops and sheets);
- UC3M-LP ``train`` split cut at its character boxes, once exactly and ``uc3m_copies`` more times
  with random margins (-4 % to +12 % of the height per side); a train plate whose text could be a
  held-out plate (UC3M-LP ``val``, OpenALPR end-to-end, the Argentine plates) is left out;
- characters cut from plates drawn by :mod:`core.plates.render` (cached per size and seed);
- optionally *row cells* (:func:`row_cells`, :func:`rendered_row_cells`): the same train rows and
  rendered plates boxed as an analyst boxes a row and cut into equal cells the way the app and the
  batch cut them (:func:`core.plates.reading.cut_cells`), so a cell holds what a real reading sees:
  a glyph off centre, slices of its neighbours, a group gap, the plate's edge.

The ``test`` split is the held-out UC3M-LP ``val`` characters, cut exactly. Every character is
grey, stretched, dark on light and padded to ``size`` by :func:`core.plates.prep.prepare_char`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from core.data.imageset import ImageSet
from core.data.plates import CLASSES, load_plate_chars
from core.plates.prep import prepare_char, stretch, to_grey
from core.plates.real import MASK, Box, PlateRow, exclude_compatible, load_argentina, load_endtoend, load_uc3m
from core.plates.render import random_style, random_text, render_chars, render_plate


def row_chars(rows: Sequence[PlateRow], size: tuple[int, int], rng: np.random.Generator,
              copies: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Each known character of ``rows`` cut exactly once and ``copies`` more times with random
    margins: uint8 ``(N, h, w)``, class indices and the plate each came from."""
    images, labels, groups = [], [], []
    for row in rows:
        h, w = row.image.shape
        for i in row.known:
            x0, y0, x1, y1 = row.box(i)
            bh = y1 - y0
            for k in range(copies + 1):
                m = np.zeros(4) if k == 0 else rng.uniform(-0.04, 0.12, 4) * bh
                xa, ya = max(0, math.floor(x0 - m[0])), max(0, math.floor(y0 - m[1]))
                xb, yb = min(w, math.ceil(x1 + m[2])), min(h, math.ceil(y1 + m[3]))
                images.append(prepare_char(row.image[ya:yb, xa:xb], size, invert=False))
                labels.append(CLASSES.index(row.text[i]))
                groups.append(row.group)
    if not images:
        return np.zeros((0, size[1], size[0]), np.uint8), np.zeros(0, np.int64), []
    return np.stack(images), np.array(labels, dtype=np.int64), groups


def cells_of_row(grey: np.ndarray, text: str, boxes: Sequence[Box], inverted: bool, size: tuple[int, int],
                 rng: np.random.Generator, jitter_share: float = 0.3) -> tuple[list[np.ndarray], list[int]]:
    """One boxed row of ``grey`` cut into ``len(text)`` cells as the app cuts it.

    The row box is the union of ``boxes`` widened on each side by a random -2 % to 12 % of the
    character height (an analyst's box); the crop is stretched as a whole and made dark on light;
    the cells are equal, or (``jitter_share`` of rows) their cuts moved by up to 15 % of a cell (an
    imperfect or hand-dragged split). Each cell is stretched to its own percentiles, as the reader
    sees it. Returns the cells (uint8 ``(h, w)``) and class indices of the known positions.
    """
    from core.plates.reading import cut_cells, equal_bounds

    n = len(text)
    h, w = grey.shape
    ch = float(np.median([b[3] - b[1] for b in boxes]))
    m = rng.uniform(-0.02, 0.12, 4) * ch
    x0 = max(0, math.floor(min(b[0] for b in boxes) - m[0]))
    y0 = max(0, math.floor(min(b[1] for b in boxes) - m[1]))
    x1 = min(w, math.ceil(max(b[2] for b in boxes) + m[2]))
    y1 = min(h, math.ceil(max(b[3] for b in boxes) + m[3]))
    if x1 - x0 < n or y1 - y0 < 2:
        return [], []
    g = stretch(grey[y0:y1, x0:x1])
    if inverted:
        g = 255.0 - g
    bounds = equal_bounds(n)
    if rng.random() < jitter_share:
        bounds = sorted(min(1.0, max(0.0, b + rng.uniform(-0.15, 0.15) / n)) for b in bounds)
    cells = cut_cells(g, bounds, size)[:, 0].numpy() * 255.0
    images, labels = [], []
    for i, c in enumerate(text):
        if c != MASK:
            images.append(stretch(cells[i]).round().astype(np.uint8))
            labels.append(CLASSES.index(c))
    return images, labels


def row_cells(rows: Sequence[PlateRow], size: tuple[int, int], rng: np.random.Generator,
              copies: int = 2) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``copies`` boxings of each row of ``rows`` cut into cells (:func:`cells_of_row`): uint8
    ``(N, h, w)``, class indices and the plate each came from. Unknown boxes are filled in by the
    row's character pitch; a row with no box is skipped."""
    from core.plates.evaluate import fill_boxes
    from core.plates.heldout import row_inverted

    images: list[np.ndarray] = []
    labels: list[int] = []
    groups: list[str] = []
    for row in rows:
        try:
            boxes = fill_boxes(row)
        except ValueError:
            continue
        inv = row_inverted(row)
        for _ in range(copies):
            x, y = cells_of_row(row.image, row.text, boxes, inv, size, rng)
            images += x
            labels += y
            groups += [row.group] * len(x)
    if not images:
        return np.zeros((0, size[1], size[0]), np.uint8), np.zeros(0, np.int64), []
    return np.stack(images), np.array(labels, dtype=np.int64), groups


def rendered_row_cells(n: int, size: tuple[int, int], seed: int, cache: Path | None) -> tuple[np.ndarray, np.ndarray]:
    """About ``n`` row cells of plates drawn by :mod:`core.plates.render` (cached like :func:`rendered`)."""
    path = cache / f"rendered-rowcells-{n}-{seed}-{size[0]}x{size[1]}.npz" if cache else None
    if path is not None and path.is_file():
        with np.load(path, allow_pickle=False) as d:
            return d["x"], d["y"]
    rng = np.random.default_rng(seed + 7919)
    images: list[np.ndarray] = []
    labels: list[int] = []
    while len(images) < n:
        plate = render_plate(random_text(rng), random_style(rng), rng)
        grey = to_grey(plate.image)
        x, y = cells_of_row(grey, plate.text, plate.boxes, plate.row_light_on_dark(grey), size, rng)
        images += x
        labels += y
    x_arr, y_arr = np.stack(images[:n]), np.array(labels[:n], dtype=np.int64)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, x=x_arr, y=y_arr)
    return x_arr, y_arr


def rendered(n: int, size: tuple[int, int], seed: int, cache: Path | None) -> tuple[np.ndarray, np.ndarray]:
    """``n`` characters cut from rendered plates (cached as plain ``.npz`` under ``cache``)."""
    path = cache / f"rendered-{n}-{seed}-{size[0]}x{size[1]}.npz" if cache else None
    if path is not None and path.is_file():
        with np.load(path, allow_pickle=False) as d:
            return d["x"], d["y"]
    x, y = render_chars(n, size, seed)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, x=x, y=y)
    return x, y


def held_out_rows(root: Path) -> list[PlateRow]:
    """Every real plate that is measured: UC3M-LP ``val``, OpenALPR end-to-end, the Argentine plates."""
    rows = list(load_uc3m(root / "uc3m-lp", "val"))
    if (root / "openalpr-endtoend").is_dir():
        rows += load_endtoend(root / "openalpr-endtoend")[0]
    if (root / "fast-plate-ocr-ar").is_dir():
        rows += load_argentina(root / "fast-plate-ocr-ar")[0]
    return rows


def load_plate_training_chars(root: str | Path, split: str = "train", size: tuple[int, int] = (8, 16),
                              limit: int | None = None, rendered_n: int = 30000, uc3m_copies: int = 2,
                              seed: int = 0, cache_dir: Path | None = None, row_copies: int = 0,
                              rendered_row_cells_n: int = 0) -> ImageSet:
    """The pool above as an :class:`ImageSet` (``root``: the ``plates`` data folder); ``row_copies``
    boxings of each one-row UC3M-LP train plate and ``rendered_row_cells_n`` rendered cells are added
    as row cells (train split only)."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    if split not in ("train", "test", "val"):
        raise ValueError(f"plate-real-chars has the splits train and test, not {split!r}")
    parts: list[tuple[str, np.ndarray, np.ndarray, list[str]]] = []
    if split == "train":
        alpr = load_plate_chars(root / "openalpr-train-ocr", "train", size, sheets=True)
        parts.append(("openalpr", alpr.images[:, 0].numpy(), alpr.labels.numpy(), list(alpr.groups)))
        train_rows = exclude_compatible(load_uc3m(root / "uc3m-lp", "train"), held_out_rows(root))
        parts.append(("uc3m", *row_chars(train_rows, size, rng, uc3m_copies)))
        if rendered_n > 0:
            rx, ry = rendered(rendered_n, size, seed, cache_dir)
            parts.append(("rendered", rx, ry, [f"rendered:{seed}:{i}" for i in range(len(rx))]))
        if row_copies > 0:
            one_row = [r for r in train_rows if r.one_row]
            parts.append(("uc3m-row-cells", *row_cells(one_row, size, rng, row_copies)))
        if rendered_row_cells_n > 0:
            cx, cy = rendered_row_cells(rendered_row_cells_n, size, seed, cache_dir)
            parts.append(("rendered-row-cells", cx, cy, [f"rendered-row:{seed}:{i}" for i in range(len(cx))]))
    else:
        parts.append(("uc3m-val", *row_chars(load_uc3m(root / "uc3m-lp", "val"), size, rng, 0)))
    x = np.concatenate([p[1] for p in parts])
    y = np.concatenate([p[2] for p in parts])
    ids = [f"{name}:{i}" for name, px, _, _ in parts for i in range(len(px))]
    groups = [g for p in parts for g in p[3]]
    if limit is not None:
        keep = np.random.default_rng(seed).permutation(len(x))[:limit]
        x, y = x[keep], y[keep]
        ids, groups = [ids[i] for i in keep], [groups[i] for i in keep]
    return ImageSet(images=torch.from_numpy(np.ascontiguousarray(x))[:, None], labels=torch.from_numpy(y),
                    classes=list(CLASSES), ids=ids, groups=groups,
                    source=f"plate-real-chars:{split}:" + "+".join(f"{p[0]}={len(p[1])}" for p in parts))
