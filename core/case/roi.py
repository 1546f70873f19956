"""The region of interest drawn on the report's picture of an original: the box, the plate's quad, or the
face frame the eye clicks align (turned with the eye line), each as an outline on the rendered picture."""

from __future__ import annotations

import json
import math
from typing import Any

from PIL import Image, ImageDraw

from core.workbench.evidence import faces_module, region_from_dict

#: Outline colours: a dark edge under a bright line, visible on any picture.
EDGE, LINE = (0, 0, 0), (255, 214, 0)


def region_outline(region: dict[str, Any] | None) -> list[tuple[float, float]] | None:
    """The corners of a recorded region in the original's pixel coordinates (None: the whole image, or an
    eye region without the face frame's geometry)."""
    r = region_from_dict(region)
    if r is None:
        return None
    if r.kind == "box" and r.box:
        x0, y0, x1, y1 = r.box
        return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
    if r.kind == "quad" and r.quad:
        return [(float(p[0]), float(p[1])) for p in r.quad]
    faces = faces_module()
    if r.kind != "eyes" or not r.eyes or faces is None:
        return None
    (lx, ly), (rx, ry) = r.eyes
    (cl, cy), (cr, _) = faces.LEFT_EYE, faces.RIGHT_EYE
    s = math.dist((lx, ly), (rx, ry)) / (cr - cl)
    a = math.atan2(ry - ly, rx - lx)
    mx, my, cx = (lx + rx) / 2, (ly + ry) / 2, (cl + cr) / 2
    out = []
    for px, py in ((0, 0), (faces.FRAME, 0), (faces.FRAME, faces.FRAME), (0, faces.FRAME)):
        dx, dy = (px - cx) * s, (py - cy) * s
        out.append((mx + dx * math.cos(a) - dy * math.sin(a), my + dx * math.sin(a) + dy * math.cos(a)))
    return out


def regions_of(case: Any, sha: str) -> list[dict[str, Any]]:
    """The regions worth marking on original ``sha``: the one on screen and those of the shortlisted
    candidates made from it (each once)."""
    s = case.session
    found: list[dict[str, Any]] = []
    if s.evidence is not None and s.evidence.sha256 == sha and s.region is not None:
        found.append(s.region.to_dict())
    for e in s.shortlist:
        c = s.candidates.get(e.candidate_id)
        src = (c.recipe.get("source") or {}) if c is not None else {}
        if (src.get("evidence") or {}).get("sha256") == sha and isinstance(src.get("region"), dict):
            found.append(src["region"])
    unique = {json.dumps(r, sort_keys=True): r for r in found if region_outline(r)}
    return list(unique.values())


def mark_regions(picture: Image.Image, size: tuple[int, int], regions: list[dict[str, Any]]) -> Image.Image:
    """``picture`` (the original of ``size`` pixels, rendered at any scale) with each region outlined."""
    out = picture.convert("RGB")
    sx, sy = out.width / max(1, size[0]), out.height / max(1, size[1])
    draw = ImageDraw.Draw(out)
    for r in regions:
        pts = region_outline(r)
        if not pts:
            continue
        xy = [(x * sx, y * sy) for x, y in pts]
        draw.line([*xy, xy[0]], fill=EDGE, width=4, joint="curve")
        draw.line([*xy, xy[0]], fill=LINE, width=2, joint="curve")
    return out


def describe_regions(regions: list[dict[str, Any]]) -> str:
    """A caption line: which regions are outlined."""
    def fmt(v: Any) -> Any:
        return [fmt(x) for x in v] if isinstance(v, list) else round(float(v), 1)

    parts = [f"{r.get('kind')} {json.dumps(fmt(r.get(str(r.get('kind')))))}" for r in regions]
    return "Region of interest outlined in yellow: " + "; ".join(parts)


def region_inset(original: Image.Image, regions: list[dict[str, Any]], box: int = 160,
                 min_scale: float = 0.0) -> Image.Image | None:
    """The neighbourhood of the regions (half their size again on each side), enlarged to ``box`` pixels
    with the outlines drawn; None when there is no region or it would not be enlarged ``min_scale`` times."""
    pts = [p for r in regions for p in region_outline(r) or []]
    if not pts:
        return None
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    w, h = max(xs) - min(xs), max(ys) - min(ys)
    m = max(w, h, 4) / 2
    x0, y0 = max(0, math.floor(min(xs) - m)), max(0, math.floor(min(ys) - m))
    x1, y1 = min(original.width, math.ceil(max(xs) + m)), min(original.height, math.ceil(max(ys) + m))
    if x1 <= x0 or y1 <= y0:
        return None
    crop = original.convert("RGB").crop((x0, y0, x1, y1))
    k = max(1, min(box // crop.width, box // crop.height))
    big = crop.resize((crop.width * k, crop.height * k), Image.Resampling.NEAREST)
    if big.width > box or big.height > box:
        big.thumbnail((box, box), Image.Resampling.LANCZOS)
    if big.width / crop.width < min_scale:
        return None
    shifted = [{**r, **_shift(r, -x0, -y0)} for r in regions]
    return mark_regions(big, crop.size, shifted)


def _shift(region: dict[str, Any], dx: float, dy: float) -> dict[str, Any]:
    kind = str(region.get("kind"))
    v = region.get(kind) or []
    if kind == "box":
        return {"box": [v[0] + dx, v[1] + dy, v[2] + dx, v[3] + dy]}
    return {kind: [[p[0] + dx, p[1] + dy] for p in v]}
