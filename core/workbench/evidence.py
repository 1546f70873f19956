"""Evidence and regions: the loaded image (only ever read), the analyst's region, the crop and its cells."""

from __future__ import annotations

import hashlib
import io
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from core.errors import RecipeError, VarSRError
from core.images import open_image, sha256_file, to_mode
from core.jsonchecks import is_num

Point = tuple[float, float]


@dataclass
class Evidence:
    """One loaded evidence image; the file itself is only ever read."""

    image: Image.Image
    sha256: str
    path: Path | None = None
    source: str = "file"
    #: How the pixels were made from the file (format, EXIF orientation applied, frames, notes).
    load_info: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.path.name if self.path else f"{self.source} image {self.sha256[:8]}"

    @property
    def notes(self) -> list[str]:
        """What the analyst should know about how the file was read (first frame only, rotated...)."""
        return list(self.load_info.get("notes", []))

    def to_dict(self) -> dict[str, Any]:
        d = {"path": str(self.path) if self.path else None, "source": self.source,
             "sha256": self.sha256, "size": list(self.image.size)}
        if self.load_info:
            d["load"] = dict(self.load_info)
        return d


def load_evidence(path: str | Path) -> Evidence:
    """Read an image file (never written to); :class:`ImageLoadError` when unreadable.

    The EXIF orientation applied, the frame used and any conversion are recorded in ``load_info``.
    """
    path = Path(path)
    loaded = open_image(path, "RGB")
    return Evidence(image=loaded.image, sha256=sha256_file(path), path=path.resolve(), source="file",
                    load_info=loaded.info())


def evidence_from_image(image: Image.Image, source: str = "clipboard") -> Evidence:
    """Evidence from an in-memory image (a paste); its hash is that of its lossless PNG encoding."""
    image = to_mode(image, "RGB")
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return Evidence(image=image, sha256=hashlib.sha256(buf.getvalue()).hexdigest(), source=source)


@dataclass(frozen=True)
class Region:
    """How the analyst's crop is taken from the evidence (image pixel coordinates).

    ``box``: an axis-aligned rectangle ``(x0, y0, x1, y1)``; ``eyes``: the two eye centres
    (image left, image right), aligned to the face models' frame; ``quad``: four corners
    (top-left, top-right, bottom-right, bottom-left) of a tilted plate, straightened.
    """

    kind: str
    box: tuple[float, float, float, float] | None = None
    eyes: tuple[Point, Point] | None = None
    quad: tuple[Point, Point, Point, Point] | None = None

    @staticmethod
    def from_box(x0: float, y0: float, x1: float, y1: float) -> Region:
        return Region("box", box=(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)))

    def moved(self, dx: float, dy: float) -> Region:
        """The region translated by ``(dx, dy)`` pixels: its box, eye centres or corners."""
        if self.kind == "box" and self.box:
            x0, y0, x1, y1 = self.box
            return Region("box", box=(x0 + dx, y0 + dy, x1 + dx, y1 + dy))
        if self.kind == "eyes" and self.eyes:
            (lx, ly), (rx, ry) = self.eyes
            return Region("eyes", eyes=((lx + dx, ly + dy), (rx + dx, ry + dy)))
        if self.kind == "quad" and self.quad:
            a, b, c, d = ((x + dx, y + dy) for x, y in self.quad)
            return Region("quad", quad=(a, b, c, d))
        raise VarSRError(f"incomplete region: {self.kind}")

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"kind": self.kind}
        for key in ("box", "eyes", "quad"):
            v = getattr(self, key)
            if v is not None:
                d[key] = json.loads(json.dumps(v))
        return d


#: The shape of each kind of region's coordinates: ``box`` 4 numbers, ``eyes`` 2 points, ``quad`` 4 points.
_REGION_SHAPES = {"box": (4,), "eyes": (2, 2), "quad": (4, 2)}


def region_from_dict(d: dict[str, Any] | None) -> Region | None:
    """The :class:`Region` a manifest or a recipe recorded (None for the whole image); :class:`RecipeError`
    (a :class:`core.errors.CaseError`) for an unknown kind or coordinates that are not finite numbers of
    the kind's shape."""
    if not d:
        return None
    if not isinstance(d, dict):
        raise RecipeError(f"a recorded region is not an object: {str(d)[:40]!r}")
    kind = d.get("kind")
    if kind in (None, "whole image"):
        return None
    if kind not in _REGION_SHAPES:
        raise RecipeError(f"a recorded region is of an unknown kind: {str(kind)[:40]!r}")

    def tup(v: Any, shape: tuple[int, ...]) -> Any:
        if not shape:
            if not is_num(v):
                raise RecipeError(f"a recorded {kind} region has an invalid coordinate: {str(v)[:40]!r}")
            return float(v)
        if not isinstance(v, list) or len(v) != shape[0]:
            raise RecipeError(f"a recorded {kind} region does not have its {kind}'s coordinates")
        return tuple(tup(x, shape[1:]) for x in v)

    return Region(str(kind), **{kind: tup(d.get(kind), _REGION_SHAPES[kind])})


def faces_module() -> Any | None:
    """``core.model.faces`` when it provides eye alignment, else None (the app then says so)."""
    try:
        from core.model import faces
    except ImportError:
        return None
    ok = all(hasattr(faces, n) for n in ("align_by_eyes", "native_frame_size", "canonical_box_for_eyes"))
    return faces if ok else None


#: A straightened quad may be at most this many times the image's longer side in either direction.
MAX_REGION_FACTOR = 4


def region_notes(image: Image.Image, region: Region) -> list[str]:
    """Check ``region`` against ``image``: :class:`VarSRError` when it cannot be cropped (invalid
    coordinates, empty, wholly outside the image, absurdly large); else notes for the analyst
    (e.g. a region reaching past the image's edge)."""
    w, h = image.size
    pts: list[Point] = []
    if region.kind == "box" and region.box:
        x0, y0, x1, y1 = region.box
        pts = [(x0, y0), (x1, y1)]
    elif region.kind == "eyes" and region.eyes:
        pts = list(region.eyes)
    elif region.kind == "quad" and region.quad:
        pts = list(region.quad)
    else:
        raise VarSRError(f"incomplete region: {region.kind}")
    try:
        coords = [float(v) for p in pts for v in p]
    except (TypeError, ValueError) as e:
        raise VarSRError(f"the {region.kind} region has invalid coordinates") from e
    if len(coords) != 2 * len(pts) or not all(math.isfinite(v) for v in coords):
        raise VarSRError(f"the {region.kind} region has invalid coordinates (not finite numbers)")
    xs, ys = coords[0::2], coords[1::2]
    if max(xs) <= 0 or max(ys) <= 0 or min(xs) >= w or min(ys) >= h:
        raise VarSRError("the selected region is empty or outside the image")
    inside = min(xs) >= 0 and min(ys) >= 0 and max(xs) <= w and max(ys) <= h
    if region.kind == "eyes":
        if not inside:
            raise VarSRError("both eyes must lie inside the image: place the eye markers on the face")
        if math.dist(*region.eyes) < 1:
            raise VarSRError("the two eye markers are on the same spot: place one on each eye")
        return []
    if region.kind == "quad":
        side = MAX_REGION_FACTOR * max(w, h)
        if max(xs) - min(xs) > side or max(ys) - min(ys) > side:
            raise VarSRError(f"the region is far larger than the image ({w}x{h}): draw it around the plate")
        return [] if inside else ["part of the region lies outside the image: that part is filled with black"]
    if not inside:
        return ["the region reaches past the image's edge: it is clipped to the image"]
    return []


def crop_region(image: Image.Image, region: Region) -> Image.Image:
    """The analyst's crop at the evidence's own resolution (see :func:`region_notes` for what is refused)."""
    region_notes(image, region)
    if region.kind == "box" and region.box:
        x0, y0, x1, y1 = (round(v) for v in region.box)
        x0, y0 = max(0, x0), max(0, y0)
        x1, y1 = min(image.width, x1), min(image.height, y1)
        if x1 - x0 < 1 or y1 - y0 < 1:
            raise VarSRError("the selected region is empty or outside the image")
        return image.crop((x0, y0, x1, y1))
    if region.kind == "eyes" and region.eyes:
        faces = faces_module()
        if faces is None:
            raise VarSRError("eye alignment needs core.model.faces (not installed): select the face with a box")
        left, right = region.eyes
        return faces.align_by_eyes(image, left, right, faces.native_frame_size(left, right))
    if region.kind == "quad" and region.quad:
        tl, tr, br, bl = region.quad
        w = max(1, round((math.dist(tl, tr) + math.dist(bl, br)) / 2))
        h = max(1, round((math.dist(tl, bl) + math.dist(tr, br)) / 2))
        data = (*tl, *bl, *br, *tr)  # PIL's QUAD order: upper-left, lower-left, lower-right, upper-right
        return image.transform((w, h), Image.Transform.QUAD, data, resample=Image.Resampling.BILINEAR)
    raise VarSRError(f"incomplete region: {region.kind}")


def equal_cells(n: int) -> list[float]:
    """Interior boundaries (fractions of the width) of ``n`` equal cells."""
    return [i / n for i in range(1, n)]


def split_cells(crop: Image.Image, bounds: list[float]) -> list[Image.Image]:
    """Cut a crop into a row of cells at the interior boundaries ``bounds`` (fractions of its width)."""
    return cut_at_edges(crop, [0.0, *bounds, 1.0])


def cut_at_edges(crop: Image.Image, edges: Sequence[float]) -> list[Image.Image]:
    """Cut a crop at ``edges`` (n + 1 fractions of its width, outer ones included; clamped to [0, 1], the
    interior ones sorted) into n cells of whole pixels."""
    e = [min(1.0, max(0.0, float(x))) for x in edges]
    edges = [e[0], *sorted(e[1:-1]), e[-1]]
    cells = []
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        x0, x1 = round(a * crop.width), round(b * crop.width)
        if x1 - x0 < 1:
            raise VarSRError("a character cell is narrower than one pixel: move its boundaries apart")
        cells.append(crop.crop((x0, 0, x1, crop.height)))
    return cells


_ASPECT_NOTE = re.compile(r"crop aspect (\d+x\d+) differs from the model's (\d+x\d+): it is stretched")


def merge_cell_notes(notes: list[str]) -> list[str]:
    """One line for the aspect notes of a row of cells, instead of one per distinct cell size."""
    sizes, model, out = [], "", []
    for n in notes:
        m = _ASPECT_NOTE.fullmatch(n)
        if m is None:
            out.append(n)
        else:
            sizes.append(m.group(1))
            model = m.group(2)
    if len(sizes) > 1:
        out.insert(0, f"cell aspects {', '.join(sizes)} differ from the model's {model}: they are stretched "
                      "(drag the cell boundaries, or check the number of characters)")
    elif sizes:
        out.insert(0, f"cell aspect {sizes[0]} differs from the model's {model}: it is stretched")
    return out

