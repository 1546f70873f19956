"""Licence-plate characters: OpenALPR ``*/chars/*`` crops, Tesseract ``*/input/*.tif`` + ``.box`` sheets,
and optional font-rendered synthetic characters.

All are grey, dark glyphs on a light background (the OpenALPR crops are binarised that way), padded
to the output aspect with their background and resized to ``size`` = (width, height).

Each id starts with its origin: ``chars:`` (cut from plates), ``sheet:`` (a training sheet),
``rendered:`` (a sheet rendered from a font, :data:`RENDERED_SHEETS`) or ``synthetic:``; see
:func:`plate_origin`.
"""

from __future__ import annotations

import functools
import logging
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from core.data.common import DataWarning, decode_all, image_files, require_dir, resize, stack, warn_skip
from core.data.imageset import ImageSet
from core.data.split import check_split, in_split
from core.errors import DataError, ImageLoadError
from core.images import load_image

log = logging.getLogger(__name__)

#: One class set for all plates: digits then upper-case letters.
CLASSES = list("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_CLASS_INDEX = {c: i for i, c in enumerate(CLASSES)}
#: Sheet name prefixes that are rendered from a font, not cut from plates.
RENDERED_SHEETS = ("leu.germany.",)
#: Font files used for synthetic characters when ``fonts`` is None (searched under FONT_DIRS).
DEFAULT_FONT = re.compile(r"^(RG2014[A-Z]+|DejaVuSans(Condensed|Mono)?(-Bold)?)\.ttf$")
FONT_DIRS = (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"), Path.home() / ".fonts")
#: ``fonts`` entry meaning Pillow's built-in scalable font (needs no font package).
PIL_DEFAULT_FONT = "default"

# OpenALPR crops are named <char>-<n>-<source image>: the source names the plate.
_CHAR_NAME = re.compile(r"^(.)-(\d+)-(.+)$")


@dataclass(frozen=True)
class _Item:
    id: str
    group: str
    label: int
    load: Callable[[], np.ndarray]


def plate_origin(item_id: str) -> str:
    """ "chars", "sheet", "rendered" or "synthetic": where a plate character came from."""
    return item_id.split(":", 1)[0]


def pad_to_aspect(a: np.ndarray, aspect: float, background: float | None = None) -> np.ndarray:
    """Pad a grey image (H, W) evenly to ``aspect`` = width / height with its background.

    By default the background is the median of the border pixels; as plate characters are dark on
    light, a dark median (a glyph touching most of the border, about 2% of the OpenALPR crops) is
    replaced by the crop's 95th percentile.
    """
    h, w = a.shape
    if background is None:
        border = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])
        background = float(np.median(border))
        if background < 128:
            background = max(background, float(np.percentile(a, 95)))
    if w / h > aspect:
        extra = round(w / aspect) - h
        pads = ((extra // 2, extra - extra // 2), (0, 0))
    else:
        extra = round(h * aspect) - w
        pads = ((0, 0), (extra // 2, extra - extra // 2))
    if extra <= 0:
        return a
    return np.pad(a, pads, constant_values=round(background))


def normalize_char(a: np.ndarray, size: tuple[int, int], background: float | None = None) -> np.ndarray:
    """A grey character crop padded to the aspect of ``size`` = (width, height) and resized to it."""
    if a.ndim != 2 or a.shape[0] < 1 or a.shape[1] < 1:
        raise ValueError(f"empty or non-grey character crop of shape {a.shape}")
    padded = pad_to_aspect(a, size[0] / size[1], background)
    return np.asarray(resize(Image.fromarray(padded, "L"), size))


def _union_near_duplicates(keys: Sequence[str]) -> dict[str, str]:
    """Map each key to a representative, joining keys of equal length that differ in one character
    (one plate saved under two OCR readings, e.g. ``10_DWG1072`` and ``10_DWGD072``)."""
    parent = {k: k for k in keys}

    def find(k: str) -> str:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    seen: dict[str, str] = {}
    for k in keys:
        for p in range(len(k)):
            sig = f"{len(k)}:{k[:p]}\0{k[p + 1 :]}"
            other = seen.setdefault(sig, k)
            a, b = find(k), find(other)
            if a != b:
                parent[max(a, b)] = min(a, b)
    return {k: find(k) for k in keys}


@functools.lru_cache(maxsize=1)
def _sheet(path: Path) -> tuple[np.ndarray, float]:
    """A sheet as a grey array and its background (median of all pixels); cached for its boxes."""
    a = np.asarray(load_image(path, "L"))
    return a, float(np.median(a))


def _read_box(path: Path) -> list[tuple[str, int, int, int, int, int]]:
    """Tesseract box lines ``char left bottom right top page`` (origin at the bottom-left)."""
    boxes = []
    for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 6:
            raise ValueError(f"line {n}: expected 'char left bottom right top page', found {line[:60]!r}")
        try:
            boxes.append((parts[0], *map(int, parts[1:])))
        except ValueError as e:
            raise ValueError(f"line {n}: coordinates must be integers") from e
    return boxes


def _char_items(
    root: Path, chars_dir: Path, size: tuple[int, int], split: str
) -> tuple[list[_Item], list[str], list[Path], int]:
    """Items of one ``chars/`` folder in the split, all its labels in order (to recognise a sheet
    made of them), the sheets found inside it and how many files were skipped."""
    country = chars_dir.parent.name
    named: list[tuple[Path, str, str]] = []
    sheets: list[Path] = []
    skipped = 0
    for f in image_files(chars_dir):
        if f.with_suffix(".box").is_file():
            sheets.append(f)
            continue
        m = _CHAR_NAME.match(f.stem)
        if not m:
            if in_split(f"plate:{country}/{f.stem}", split):
                warn_skip(f, "not named <char>-<n>-<source>")
                skipped += 1
            continue
        named.append((f, m[1].upper(), m[3]))
    labels = [c for _, c, _ in named]
    rep = _union_near_duplicates(sorted({src for _, _, src in named}))
    items, other = [], 0
    for f, c, src in named:
        group = f"plate:{country}/{rep[src]}"
        if not in_split(group, split):
            continue
        if c not in _CLASS_INDEX:
            other += 1
            continue

        def load(f: Path = f) -> np.ndarray:
            return normalize_char(np.asarray(load_image(f, "L")), size)

        items.append(_Item(f"chars:{f.relative_to(root).as_posix()}", group, _CLASS_INDEX[c], load))
    if other:
        warnings.warn(f"{chars_dir}: skipped {other} characters outside 0-9 A-Z", DataWarning, stacklevel=2)
    return items, labels, sheets, skipped + other


def _sheet_items(
    root: Path, tif: Path, size: tuple[int, int], split: str, chars_labels: dict[Path, list[str]]
) -> tuple[list[_Item], int]:
    """Items of one Tesseract sheet in the split and how many boxes (or the sheet) were skipped."""
    rel = tif.relative_to(root).as_posix()
    group = f"sheet:{rel}"
    box_path = tif.with_suffix(".box")
    if not box_path.is_file():
        warn_skip(tif, "no .box file next to it")
        return [], 1
    try:
        boxes = _read_box(box_path)
    except ValueError as e:
        warn_skip(box_path, str(e))
        return [], 1
    country = tif.parent.parent
    if [b[0].upper() for b in boxes] == chars_labels.get(country):
        # OpenALPR builds a country's sheet from its chars/ crops: the same characters again.
        log.info("%s: the %s/chars crops combined into a sheet; not read twice", rel, country.name)
        return [], 0
    if not in_split(group, split):
        return [], 0
    try:
        _sheet(tif)
    except ImageLoadError as e:
        warn_skip(tif, str(e))
        return [], 1
    origin = "rendered" if tif.name.startswith(RENDERED_SHEETS) else "sheet"
    items, skipped = [], 0
    for k, (c, left, bottom, right, top, page) in enumerate(boxes):
        c = c.upper()
        if c not in _CLASS_INDEX or page != 0:
            skipped += 1
            continue

        def load(box: tuple[int, int, int, int] = (left, bottom, right, top)) -> np.ndarray:
            a, bg = _sheet(tif)
            h, w = a.shape
            x0, y0, x1, y1 = box[0], h - box[3], box[2], h - box[1]  # flip y: box origin is bottom-left
            if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
                raise ValueError(f"box {box} lies outside the {w}x{h} sheet")
            return normalize_char(a[y0:y1, x0:x1], size, bg)

        items.append(_Item(f"{origin}:{rel}#{k}", group, _CLASS_INDEX[c], load))
    if skipped:
        warnings.warn(
            f"{box_path}: skipped {skipped} boxes outside 0-9 A-Z or page 0", DataWarning, stacklevel=2
        )
    return items, skipped


def find_fonts() -> list[Path]:
    """Default fonts for synthetic characters (DejaVu Sans, roadgeek RG2014*) under :data:`FONT_DIRS`."""
    found = {
        p.name: p for d in FONT_DIRS if d.is_dir() for p in d.rglob("*.ttf") if DEFAULT_FONT.match(p.name)
    }
    return [found[k] for k in sorted(found)]


def _font(spec: str, px: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    if spec == PIL_DEFAULT_FONT:
        return ImageFont.load_default(size=px)
    return ImageFont.truetype(spec, px)


def render_synthetic(
    n: int, size: tuple[int, int], fonts: Sequence[str | Path], seed: int = 0
) -> tuple[list[np.ndarray], list[int]]:
    """``n`` augmented font-rendered characters (dark on light, binarised like the OpenALPR crops),
    deterministic from ``seed``: random font, class, rotation, condensing to about the output aspect,
    stroke weight, margins, blur and noise."""
    rng = np.random.default_rng(seed)
    specs = [str(f) for f in fonts]
    cache: dict[str, ImageFont.FreeTypeFont | ImageFont.ImageFont] = {}
    out, labels = [], []
    for _ in range(n):
        spec = specs[int(rng.integers(len(specs)))]
        if spec not in cache:
            cache[spec] = _font(spec, 48)
        font = cache[spec]
        label = int(rng.integers(len(CLASSES)))
        canvas = Image.new("L", (96, 96), 255)
        ImageDraw.Draw(canvas).text((48, 48), CLASSES[label], fill=0, font=font, anchor="mm")
        weight = int(rng.choice([0, 0, 1, 1, 2]))  # stroke weight: plate fonts are bold
        if weight:
            canvas = canvas.filter(ImageFilter.MinFilter(2 * weight + 1))
        canvas = canvas.rotate(float(rng.uniform(-5, 5)), Image.Resampling.BICUBIC, fillcolor=255)
        a = np.asarray(canvas)
        ys, xs = np.nonzero(a < 128)
        if len(xs) == 0:
            continue
        x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
        gw, gh = x1 - x0, y1 - y0
        # Margins like tight plate crops: small, uneven, sometimes cutting a pixel of the glyph.
        mx0, mx1 = (rng.uniform(-0.03, 0.12, 2) * gw).round().astype(int)
        my0, my1 = (rng.uniform(-0.03, 0.08, 2) * gh).round().astype(int)
        crop = canvas.crop((int(x0 - mx0), int(y0 - my0), int(x1 + mx1), int(y1 + my1)))
        # Plate fonts are condensed: squeeze wide glyphs to about the output aspect (not 1 or I).
        aspect, jitter = crop.width / crop.height, rng.uniform(0.8, 1.1)
        new_aspect = min(aspect, size[0] / size[1] * jitter) if aspect > 0.35 else aspect * jitter
        crop = crop.resize((max(1, round(crop.height * new_aspect)), crop.height), Image.Resampling.BICUBIC)
        blur = float(rng.uniform(0, 1.2))
        if blur > 0.3:
            crop = crop.filter(ImageFilter.GaussianBlur(blur))
        c = np.asarray(crop).astype(np.float32)
        c = np.where(c < rng.uniform(100, 160), 0.0, 255.0)  # binarised
        c += rng.normal(0, rng.uniform(0, 12), c.shape)
        out.append(normalize_char(np.clip(c, 0, 255).round().astype(np.uint8), size, 255.0))
        labels.append(label)
    return out, labels


def load_plate_chars(
    root: str | Path,
    split: str = "train",
    size: tuple[int, int] = (8, 16),
    limit: int | None = None,
    sheets: bool = True,
    synthetic: int = 0,
    fonts: Sequence[str | Path] | None = None,
    seed: int = 0,
) -> ImageSet:
    """Plate characters as grey images of ``size`` = (width, height), classes 0-9 A-Z.

    ``root`` holds country folders (``gb/``, ``br/``, ...) with ``chars/`` crops named
    ``<char>-<n>-<source>`` (label = first character, upper-cased; characters outside the class set
    are skipped and counted) and, if ``sheets``, ``input/*.tif`` sheets with Tesseract ``.box`` files.

    Split groups: a crop's plate (its ``<source>``, joined with names one character apart, which are
    the same plate read twice), and a whole sheet for sheet characters. A sheet that is a country's
    ``chars/`` crops combined (same labels in the same order, as OpenALPR builds them) is not read
    again. ``limit`` keeps the first N real characters of the split (crops, then sheets, in sorted
    order); ``synthetic`` adds that many rendered characters to the train (and "all") split only,
    from ``fonts`` (font files, or "default" for Pillow's own; None: :func:`find_fonts`).
    """
    check_split(split)
    root = require_dir(
        root, "an OpenALPR train-ocr folder with <country>/chars/ and/or <country>/input/*.tif"
    )
    size = (int(size[0]), int(size[1]))
    chars_dirs = sorted(p for p in root.glob("*/chars") if p.is_dir())
    tifs = (
        sorted(p for p in root.glob("*/input/*") if p.suffix.lower() in (".tif", ".tiff")) if sheets else []
    )
    if not chars_dirs and not tifs:
        raise DataError(
            f"{root}: expected <country>/chars/ folders or <country>/input/*.tif sheets (OpenALPR layout)"
        )
    items: list[_Item] = []
    skipped = 0
    chars_labels: dict[Path, list[str]] = {}
    for d in chars_dirs:
        got, labels, inner, bad = _char_items(root, d, size, split)
        items += got
        skipped += bad
        chars_labels[d.parent] = labels
        tifs += inner if sheets else []
    for tif in tifs:
        got, bad = _sheet_items(root, tif, size, split, chars_labels)
        items += got
        skipped += bad
    arrays, kept, bad = decode_all(items, lambda it: it.load(), limit, "plate chars", name=lambda it: it.id)
    _sheet.cache_clear()
    chosen = [items[i] for i in kept]
    labels = [it.label for it in chosen]
    ids = [it.id for it in chosen]
    groups = [it.group for it in chosen]
    if synthetic > 0 and split in ("train", "all"):
        font_list = list(fonts) if fonts is not None else find_fonts()
        missing = [f for f in font_list if f != PIL_DEFAULT_FONT and not Path(f).is_file()]
        if missing:
            warnings.warn(f"font files not found, not used: {missing}", DataWarning, stacklevel=2)
        font_list = [f for f in font_list if f not in missing]
        if not font_list:
            warnings.warn(
                "no font found for synthetic plate characters: none added", DataWarning, stacklevel=2
            )
        else:
            syn, syn_labels = render_synthetic(synthetic, size, font_list, seed)
            arrays += syn
            labels += syn_labels
            ids += [f"synthetic:{seed}:{i}" for i in range(len(syn))]
            groups += [f"synthetic:{seed}:{i}" for i in range(len(syn))]
    return ImageSet(
        images=stack(arrays, 1, size[1], size[0]),
        labels=torch.tensor(labels, dtype=torch.int64),
        classes=list(CLASSES),
        ids=ids,
        groups=groups,
        skipped=skipped + bad,
        source=f"plate-chars:{split}",
    )
