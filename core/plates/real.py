"""Real whole plates with their text, for training and held-out measurement, split by plate.

Three layouts of ``../shared/data/plates`` (see its README):

- ``uc3m-lp/``: Spanish crops with a box per visible character (two characters a plate are greyed
  out and written ``*``); official ``train``/``val`` splits.
- ``openalpr-endtoend/``: colour crops around a plate with its text and plate box.
- ``fast-plate-ocr-ar/``: grey Argentine plate crops with their text.

Each becomes a :class:`PlateRow`: the grey image, the text, and per-character boxes (given, or
found by :func:`segment_chars` when the crop has none; a plate whose characters cannot be found
one-to-one is left out and counted).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.data.plates import CLASSES
from core.errors import DataError
from core.images import load_image
from core.plates.prep import otsu, stretch, to_grey

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels of the row's image
MASK = "*"


@dataclass
class PlateRow:
    """One real plate: grey image, its text (``*`` for an unknown character) and character boxes."""

    id: str
    text: str
    image: np.ndarray  # uint8 (H, W)
    boxes: list[Box | None]  # one per character of ``text``; None where unknown (masked)
    group: str  # split group: plates with this group are the same plate
    source: str
    meta: dict = field(default_factory=dict)

    def box(self, i: int) -> Box:
        """The box of position ``i``; ValueError where it is unknown."""
        b = self.boxes[i]
        if b is None:
            raise ValueError(f"{self.id}: position {i} has no box")
        return b

    @property
    def one_row(self) -> bool:
        """False for UC3M-LP's two-row plates (types B and C), whose characters are not one row."""
        return self.meta.get("type") not in ("B", "C")

    @property
    def known(self) -> list[int]:
        """Positions whose character and box are known."""
        return [i for i, (c, b) in enumerate(zip(self.text, self.boxes, strict=True)) if c != MASK and b is not None]

    def row_box(self, pad: float = 0.0) -> Box:
        """The union of the known boxes, widened by ``pad`` x the median character height."""
        bs = [b for b in self.boxes if b is not None]
        x0, y0 = min(b[0] for b in bs), min(b[1] for b in bs)
        x1, y1 = max(b[2] for b in bs), max(b[3] for b in bs)
        m = pad * float(np.median([b[3] - b[1] for b in bs]))
        h, w = self.image.shape
        return (max(0.0, x0 - m), max(0.0, y0 - m), min(float(w), x1 + m), min(float(h), y1 + m))


def _compatible(a: str, b: str, min_known: int = 4) -> bool:
    """Two masked texts could be the same plate: same length, agreeing wherever both are known."""
    if len(a) != len(b):
        return False
    both = [(x, y) for x, y in zip(a, b, strict=True) if MASK not in (x, y)]
    return len(both) >= min_known and all(x == y for x, y in both)


def exclude_compatible(rows: Sequence[PlateRow], held: Iterable[PlateRow]) -> list[PlateRow]:
    """``rows`` without any plate that could be one of ``held`` (by text), to keep a split by plate."""
    by_len: dict[int, list[str]] = {}
    for r in held:
        by_len.setdefault(len(r.text), []).append(r.text)
    return [r for r in rows if not any(_compatible(r.text, t) for t in by_len.get(len(r.text), []))]


def _read_csv(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        raise DataError(f"{path}: labels file not found")
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def load_uc3m(root: str | Path, split: str = "val", limit: int | None = None) -> list[PlateRow]:
    """UC3M-LP crops of one official split (``train`` or ``val``) with their character boxes."""
    root = Path(root)
    rows = []
    for rec in _read_csv(root / "labels.csv"):
        if rec["split"] != split:
            continue
        text = rec["text"].upper()
        chars = json.loads(rec["chars"])
        boxes: list[Box | None] = []
        it = iter(chars)
        for c in text:
            if c == MASK:
                boxes.append(None)
                continue
            ch, x0, y0, x1, y1 = next(it)
            if ch.upper() != c:
                raise DataError(f"{rec['file']}: box character {ch} does not match the text {text}")
            boxes.append((float(x0), float(y0), float(x1), float(y1)))
        if any(c not in CLASSES and c != MASK for c in text):
            continue
        image = to_grey(load_image(root / rec["file"], "L"))
        photo = Path(rec["file"]).name.split("_", 1)[0]
        rows.append(PlateRow(f"uc3m:{rec['file']}", text, image, boxes, f"uc3m:{photo}", "uc3m-lp",
                             {"type": Path(rec["file"]).stem.split("_", 1)[1][:1]}))
        if limit and len(rows) >= limit:
            break
    return rows


def _components(fg: np.ndarray) -> list[tuple[int, int, int, int, int]]:
    """Connected components (4-neighbour) of a boolean image as ``(x0, y0, x1, y1, area)``
    (scipy's labelling when installed, else a union-find in Python)."""
    try:
        from scipy import ndimage
    except ImportError:  # pragma: no cover - scipy comes with the dev extras
        return _components_py(fg)
    lab, _ = ndimage.label(fg)
    out = []
    for i, sl in enumerate(ndimage.find_objects(lab), start=1):
        if sl is not None:
            area = int((lab[sl] == i).sum())
            out.append((sl[1].start, sl[0].start, sl[1].stop, sl[0].stop, area))
    return out


def _components_py(fg: np.ndarray) -> list[tuple[int, int, int, int, int]]:
    h, w = fg.shape
    parent = np.arange(h * w)
    idx = np.arange(h * w).reshape(h, w)

    def find(i: int) -> int:
        root = i
        while parent[root] != root:
            root = parent[root]
        while parent[i] != root:
            parent[i], i = root, parent[i]
        return root

    for a, b in ((idx[:, :-1][fg[:, :-1] & fg[:, 1:]], idx[:, 1:][fg[:, :-1] & fg[:, 1:]]),
                 (idx[:-1][fg[:-1] & fg[1:]], idx[1:][fg[:-1] & fg[1:]])):
        for i, j in zip(a.tolist(), b.tolist(), strict=True):
            ri, rj = find(i), find(j)
            if ri != rj:
                parent[max(ri, rj)] = min(ri, rj)
    ys, xs = np.nonzero(fg)
    out: dict[int, list[int]] = {}
    for y, x in zip(ys.tolist(), xs.tolist(), strict=True):
        r = find(y * w + x)
        b = out.get(r)
        if b is None:
            out[r] = [x, y, x + 1, y + 1, 1]
        else:
            b[0], b[1], b[2], b[3], b[4] = min(b[0], x), min(b[1], y), max(b[2], x + 1), max(b[3], y + 1), b[4] + 1
    return [(v[0], v[1], v[2], v[3], v[4]) for v in out.values()]


def segment_chars(image: np.ndarray, n: int, min_height: float = 0.3) -> tuple[list[Box], bool] | None:
    """Find ``n`` character boxes in a grey plate image, left to right, or None.

    Both polarities are tried: the image is stretched and thresholded (Otsu), components of
    character height (at least ``min_height`` of the image, aspect 0.1-1.2, not touching the
    top/bottom edge) are kept, and the largest set of ``n`` of them with similar heights and
    tops (one row) is returned with whether the glyphs were light on dark.
    """
    g = stretch(to_grey(image))
    h, w = g.shape
    best: tuple[float, list[Box], bool] | None = None
    for light in (False, True):
        t = otsu(g)
        fg = g > t if light else g < t
        comps = []
        for x0, y0, x1, y1, area in _components(fg):
            bw, bh = x1 - x0, y1 - y0
            if bh < min_height * h or bh > 0.95 * h or not 0.1 <= bw / bh <= 1.2:
                continue
            if y0 <= 0 or y1 >= h or area < 0.15 * bw * bh:
                continue
            comps.append((x0, y0, x1, y1))
        if len(comps) < n:
            continue
        heights = np.array([c[3] - c[1] for c in comps], dtype=float)
        # One row: the n components whose heights are closest to a common height, ranked by height.
        for ref in sorted(set(heights.tolist()), reverse=True):
            near = [c for c, hh in zip(comps, heights, strict=True) if abs(hh - ref) <= 0.15 * ref]
            if len(near) < n:
                continue
            tops = np.array([c[1] for c in near], dtype=float)
            med = np.median(tops)
            near = [c for c, t0 in zip(near, tops, strict=True) if abs(t0 - med) <= 0.3 * ref]
            if len(near) != n:
                continue
            near.sort(key=lambda c: c[0])
            if any(b[0] < a[2] - 1 for a, b in zip(near[:-1], near[1:], strict=True)):
                continue
            score = ref
            if best is None or score > best[0]:
                best = (score, [(float(c[0]), float(c[1]), float(c[2]), float(c[3])) for c in near], light)
            break
    return None if best is None else (best[1], best[2])


def _segmented(rid: str, text: str, image: np.ndarray, group: str, source: str, meta: dict,
               crop: Box | None = None) -> PlateRow | None:
    if crop is not None:
        x0, y0, x1, y1 = (int(round(v)) for v in crop)
        image = image[max(0, y0) : y1, max(0, x0) : x1]
    found = segment_chars(image, len(text))
    if found is None:
        return None
    boxes, light = found
    return PlateRow(rid, text, image, list(boxes), group, source, {**meta, "light_on_dark": light})


def load_endtoend(root: str | Path) -> tuple[list[PlateRow], int]:
    """OpenALPR end-to-end plates (cut to their plate box, characters found by :func:`segment_chars`)
    and how many could not be segmented one-to-one."""
    root = Path(root)
    rows, failed = [], 0
    for rec in _read_csv(root / "labels.csv"):
        text = rec["text"].upper()
        if any(c not in CLASSES for c in text):
            failed += 1
            continue
        img = to_grey(load_image(root / rec["file"], "L"))
        x, y, w, h = (float(rec[k]) for k in "xywh")
        row = _segmented(f"endtoend:{rec['file']}", text, img, f"text:{text}", "openalpr-endtoend",
                         {"country": rec["country"]}, (x, y, x + w, y + h))
        failed += row is None
        rows += [row] if row is not None else []
    return rows, failed


def load_argentina(root: str | Path) -> tuple[list[PlateRow], int]:
    """fast-plate-ocr Argentine plates (characters found by :func:`segment_chars`) and how many failed."""
    root = Path(root)
    rows, failed = [], 0
    for rec in _read_csv(root / "labels.csv"):
        text = rec["text"].upper()
        img = to_grey(load_image(root / rec["file"], "L"))
        row = _segmented(f"ar:{rec['file']}", text, img, f"text:{text}", "fast-plate-ocr-ar", {})
        failed += row is None
        rows += [row] if row is not None else []
    return rows, failed
