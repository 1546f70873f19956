"""A synthetic licence-plate renderer: whole plates with their text and a box per character.

Fonts that may be shipped (``resources/fonts/``, licences beside them), dark-on-light and
light-on-dark, coloured text and backgrounds, borders, bolts, state names above or below the
row, stickers and a coloured band beside it, uneven spacing with an optional group gap (space,
hyphen or dot), per-glyph condensing and stroke weight, slight perspective, then a camera-like
finish (reduced to a random character height, blur, uneven light, noise, JPEG). Every draw is
deterministic from a ``numpy.random.Generator``.

    plate = render_plate("AB123CD", rng=np.random.default_rng(0))
    plate.image   # uint8 RGB (H, W, 3); plate.boxes[i] = (x0, y0, x1, y1) of character i's ink

:func:`render_chars` cuts training characters out of rendered plates exactly as real ones are
cut (box, jittered margins, :func:`core.plates.prep.prepare_char`).
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from core.data.plates import CLASSES
from core.plates.prep import is_light_on_dark, prepare_char, stretch, to_grey

FONTS_DIR = Path(__file__).resolve().parents[2] / "resources" / "fonts"
Box = tuple[float, float, float, float]

DIGITS, LETTERS = CLASSES[:10], CLASSES[10:]
#: Plate formats (L letter, N digit, - group gap): common European, US, South American layouts.
FORMATS = ("LLLNNNN", "LLL-NNNN", "NNNN-LLL", "LL-NNN-LL", "LLNNNLL", "NLLL-NNN", "LLL-NNN", "NNN-LLL",
           "LL-NNNN", "L-NNNN-LL", "NNNNNNN", "LLLLLLL", "NNLLNNN", "LLL-NLNN", "NN-LL-NN", "LNNNLLL")
_WORDS = ("CALIFORNIA", "TEXAS", "FLORIDA", "NEW YORK", "OHIO", "ARIZONA", "ARGENTINA", "MERCOSUL",
          "BRASIL", "SAO PAULO", "SLOVENSKO", "ESPANA", "SUNSHINE STATE", "DMV.CA.GOV", "GRAND CANYON")


def shipped_fonts() -> list[Path]:
    """The renderer's fonts: every ``.ttf`` under ``resources/fonts/`` (sorted)."""
    return sorted(FONTS_DIR.glob("*.ttf"))


@lru_cache(maxsize=64)
def _font(path: str, px: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, px)


@lru_cache(maxsize=4096)
def _glyph(path: str, char: str, stroke: int) -> tuple[np.ndarray, float]:
    """A glyph's ink mask (float 0-1, tight) at 96 px and its top relative to the cap top, in cap heights."""
    font = _font(path, 96)
    cap_top, cap_bottom = font.getbbox("H", anchor="ls")[1], 0
    cap_h = cap_bottom - cap_top
    canvas = Image.new("L", (200, 200), 0)
    ImageDraw.Draw(canvas).text((50, 150), char, fill=255, font=font, anchor="ls", stroke_width=stroke,
                                stroke_fill=255)
    bbox = canvas.getbbox()
    if bbox is None:
        raise ValueError(f"font {path} has no glyph for {char!r}")
    mask = np.asarray(canvas.crop(bbox), dtype=np.float32) / 255.0
    return mask, (bbox[1] - 150 - cap_top) / cap_h


@dataclass
class PlateStyle:
    """How one plate looks (all sizes relative to the character height)."""

    font: str
    fg: tuple[int, int, int]
    bg: tuple[int, int, int]
    condense: float = 0.8  # glyph width scale
    stroke: int = 0  # extra stroke width at 96 px
    spacing: float = 0.15  # mean gap between glyphs / char height
    spacing_jitter: float = 0.05
    gap: str = " "  # group gap: " ", "-", "." or ""
    border: int = 0  # border thickness in px at 64 px character height (0: none)
    bolts: bool = False
    top_text: str = ""
    bottom_text: str = ""
    band: tuple[int, int, int] | None = None  # a coloured band left of the row (EU)
    sticker: tuple[int, int, int] | None = None
    surround: tuple[int, int, int] = (40, 40, 40)
    perspective: float = 0.0  # max corner displacement / plate height
    rotation: float = 0.0  # degrees
    extra: dict = field(default_factory=dict)

    @property
    def light_on_dark(self) -> bool:
        return _lum(self.fg) > _lum(self.bg)


def _lum(c: Sequence[int]) -> float:
    return 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]


def _colour(rng: np.random.Generator, lo: int, hi: int) -> tuple[int, int, int]:
    """A colour whose luminance lies in [lo, hi] (a random hue, moderately saturated)."""
    for _ in range(100):
        base = rng.uniform(lo, hi)
        sat = rng.choice([0.0, 0.0, rng.uniform(0.1, 0.6)])
        c = np.clip(base + sat * rng.normal(0, 90, 3), 0, 255)
        if lo <= _lum(c) <= hi:
            return (int(c[0]), int(c[1]), int(c[2]))
    return (int(lo), int(lo), int(lo))


def random_style(rng: np.random.Generator, fonts: Sequence[str | Path] | None = None) -> PlateStyle:
    """A random plate look: 70 % dark text on a light plate, 30 % light on dark."""
    fonts = [str(f) for f in (fonts if fonts is not None else shipped_fonts())]
    if not fonts:
        raise ValueError("no fonts for the plate renderer (resources/fonts/ is empty)")
    dark_on_light = rng.random() < 0.7
    contrast = rng.uniform(70, 200)
    if dark_on_light:
        bg = _colour(rng, 150, 255)
        fg = _colour(rng, 0, max(0.0, _lum(bg) - contrast))
    else:
        bg = _colour(rng, 0, 110)
        fg = _colour(rng, min(255.0, _lum(bg) + contrast), 255)
    deco = _colour(rng, 0, 255)
    return PlateStyle(
        font=fonts[int(rng.integers(len(fonts)))], fg=fg, bg=bg,
        condense=float(rng.uniform(0.55, 1.0)), stroke=int(rng.choice([0, 0, 1, 2, 3, 4])),
        spacing=float(rng.uniform(0.04, 0.35)), spacing_jitter=float(rng.uniform(0, 0.08)),
        gap=str(rng.choice([" ", " ", "-", ".", ""])), border=int(rng.choice([0, 0, 2, 3, 5])),
        bolts=bool(rng.random() < 0.35),
        top_text=str(rng.choice(_WORDS)) if rng.random() < 0.35 else "",
        bottom_text=str(rng.choice(_WORDS)) if rng.random() < 0.2 else "",
        band=(20, 50, 160) if rng.random() < 0.15 else None,
        sticker=deco if rng.random() < 0.2 else None,
        surround=_colour(rng, 0, 255),
        perspective=float(rng.uniform(0, 0.12)), rotation=float(rng.normal(0, 2.0)),
    )


def random_text(rng: np.random.Generator, length: int | None = None) -> str:
    """A plate text in one of :data:`FORMATS` (group gaps as ``-``), or of ``length`` random characters."""
    if length is not None:
        return "".join(CLASSES[int(i)] for i in rng.integers(len(CLASSES), size=length))
    fmt = str(rng.choice(FORMATS))
    if rng.random() < 0.3:  # any character anywhere, so no class is tied to a position
        fmt = "".join("A" if c != "-" else "-" for c in fmt)
    pick = {"L": LETTERS, "N": DIGITS, "A": CLASSES}
    return "".join(c if c == "-" else pick[c][int(rng.integers(len(pick[c])))] for c in fmt)


@dataclass
class RenderedPlate:
    """A rendered plate: RGB image, its characters (no gaps) and each character's ink box."""

    image: np.ndarray
    text: str
    boxes: list[Box]
    style: PlateStyle

    def row_box(self) -> Box:
        return (min(b[0] for b in self.boxes), min(b[1] for b in self.boxes),
                max(b[2] for b in self.boxes), max(b[3] for b in self.boxes))

    def row_light_on_dark(self, grey: np.ndarray) -> bool:
        """Whether the character row reads light on dark, decided from ``grey`` (this plate's image in
        grey) as a reader decides it, not from the style (coloured text can go either way)."""
        x0, y0, x1, y1 = (int(round(v)) for v in self.row_box())
        return is_light_on_dark(stretch(grey[max(0, y0) : y1, max(0, x0) : x1]))


def _homography(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 3x3 projective map taking the 4 points ``src`` to ``dst``."""
    a, b = [], []
    for (x, y), (u, v) in zip(src, dst, strict=True):
        a.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        a.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        b += [u, v]
    h = np.linalg.solve(np.array(a, dtype=np.float64), np.array(b, dtype=np.float64))
    return np.append(h, 1.0).reshape(3, 3)


def _apply(hm: np.ndarray, pts: np.ndarray) -> np.ndarray:
    p = np.c_[pts, np.ones(len(pts))] @ hm.T
    return p[:, :2] / p[:, 2:3]


def render_plate(text: str, style: PlateStyle | None = None, rng: np.random.Generator | None = None,
                 char_height: int = 64, finish: bool = True) -> RenderedPlate:
    """Render ``text`` (``-``, ``.`` or space: a group gap) as a plate; boxes follow every warp.

    ``char_height`` is the cap height while drawing; with ``finish`` the plate is then reduced so
    a character is 10-48 px tall and given blur, uneven light, noise and JPEG, like a real crop.
    """
    rng = rng if rng is not None else np.random.default_rng()
    style = style if style is not None else random_style(rng)
    ch = char_height
    scale = ch / 96.0 * (96.0 / _cap_height(style.font))
    glyphs, chars, gaps_before = [], [], []
    pending_gap = False
    for c in text.upper():
        if c in "-. ":
            pending_gap = True
            continue
        if c not in CLASSES:
            raise ValueError(f"cannot render {c!r}: the renderer draws 0-9 A-Z")
        mask, top = _glyph(style.font, c, style.stroke)
        h = max(1, round(mask.shape[0] * scale))
        w = max(1, round(mask.shape[1] * scale * style.condense))
        m = np.asarray(Image.fromarray((mask * 255).astype(np.uint8)).resize((w, h), Image.Resampling.LANCZOS))
        glyphs.append((m, top * ch))
        chars.append(c)
        gaps_before.append(pending_gap and bool(chars[:-1]))
        pending_gap = False
    if not glyphs:
        raise ValueError("nothing to render: the text has no characters")
    # Layout along x: glyph widths plus uneven gaps; a group gap is wider and may hold a hyphen or dot.
    xs, x = [], 0.0
    for i, (m, _) in enumerate(glyphs):
        if i:
            x += ch * max(0.02, style.spacing + rng.normal(0, style.spacing_jitter))
            if gaps_before[i]:
                x += ch * rng.uniform(0.2, 0.6)
        xs.append(x)
        x += m.shape[1]
    row_w = x
    band_w = ch * 0.45 if style.band else 0.0
    pad_x, pad_top, pad_bottom = ch * rng.uniform(0.15, 0.5), ch * rng.uniform(0.15, 0.4), ch * rng.uniform(0.15, 0.4)
    if style.top_text:
        pad_top += ch * 0.35
    if style.bottom_text:
        pad_bottom += ch * 0.35
    pw, ph = int(band_w + 2 * pad_x + row_w), int(pad_top + ch * 1.05 + pad_bottom)
    margin = int(ch * rng.uniform(0.2, 0.8))
    cw, chh = pw + 2 * margin, ph + 2 * margin
    canvas = Image.new("RGB", (cw, chh), style.surround)
    draw = ImageDraw.Draw(canvas)
    draw.rectangle((margin, margin, margin + pw - 1, margin + ph - 1), fill=style.bg)
    if style.border:
        t = max(1, round(style.border * ch / 64))
        inset = round(ch * rng.uniform(0.0, 0.08))
        draw.rectangle((margin + inset, margin + inset, margin + pw - 1 - inset, margin + ph - 1 - inset),
                       outline=style.fg, width=t)
    if style.band:
        draw.rectangle((margin, margin, margin + int(band_w), margin + ph - 1), fill=style.band)
    small = _font(style.font, max(6, int(ch * 0.3)))
    if style.top_text:
        draw.text((margin + pw / 2, margin + pad_top - ch * 0.2), style.top_text, fill=style.fg, font=small,
                  anchor="mb")
    if style.bottom_text:
        draw.text((margin + pw / 2, margin + ph - pad_bottom + ch * 0.3), style.bottom_text, fill=style.fg,
                  font=small, anchor="mt")
    if style.bolts:
        r = max(2, ch * 0.06)
        for bx in (margin + pw * 0.2, margin + pw * 0.8):
            for by in (margin + ph * 0.1, margin + ph * 0.9):
                draw.ellipse((bx - r, by - r, bx + r, by + r), fill=(160, 160, 160), outline=(90, 90, 90))
    if style.sticker:
        sx = margin + (pw - ch * 0.5 if rng.random() < 0.5 else ch * 0.1)
        draw.rectangle((sx, margin + ph * 0.05, sx + ch * 0.35, margin + ph * 0.05 + ch * 0.3), fill=style.sticker)
    x0 = margin + band_w + pad_x
    y0 = margin + pad_top
    fg = np.array(style.fg, dtype=np.float32)
    arr = np.asarray(canvas, dtype=np.float32).copy()
    boxes = []
    for i, ((m, top), gx) in enumerate(zip(glyphs, xs, strict=True)):
        gy = y0 + top + ch * rng.normal(0, 0.015)
        ix, iy = int(round(x0 + gx)), int(round(gy))
        a = m.astype(np.float32)[..., None] / 255.0
        region = arr[iy : iy + m.shape[0], ix : ix + m.shape[1]]
        a = a[: region.shape[0], : region.shape[1]]
        region[:] = region * (1 - a) + fg * a
        boxes.append((float(ix), float(iy), float(ix + a.shape[1]), float(iy + a.shape[0])))
        if i + 1 < len(glyphs) and gaps_before[i + 1] and style.gap in "-.":
            gx1 = ix + m.shape[1]
            nx = x0 + xs[i + 1]
            cx, cy = (gx1 + nx) / 2, y0 + ch * (0.5 if style.gap == "-" else 0.85)
            hw = (nx - gx1) * (0.3 if style.gap == "-" else 0.12)
            hh = ch * (0.06 if style.gap == "-" else 0.07)
            arr[int(cy - hh) : int(cy + hh) + 1, int(cx - hw) : int(cx + hw) + 1] = fg
    image = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")
    # Slight perspective and rotation: move the corners, map the boxes with the same homography.
    corners = np.array([[0, 0], [cw, 0], [cw, chh], [0, chh]], dtype=np.float64)
    d = style.perspective * ph
    moved = corners + rng.uniform(-d, d, (4, 2))
    ang = math.radians(style.rotation)
    centre = np.array([cw / 2, chh / 2])
    rot = np.array([[math.cos(ang), -math.sin(ang)], [math.sin(ang), math.cos(ang)]])
    moved = (moved - centre) @ rot.T + centre
    moved -= moved.min(0)
    out_w, out_h = int(math.ceil(moved[:, 0].max())), int(math.ceil(moved[:, 1].max()))
    inv = _homography(moved, corners)  # output -> input, what PIL wants
    image = image.transform((out_w, out_h), Image.Transform.PERSPECTIVE, tuple(inv.ravel()[:8] / inv[2, 2]),
                            Image.Resampling.BICUBIC, fillcolor=style.surround)
    fwd = _homography(corners, moved)
    new_boxes = []
    for bx0, by0, bx1, by1 in boxes:
        p = _apply(fwd, np.array([[bx0, by0], [bx1, by0], [bx1, by1], [bx0, by1]]))
        new_boxes.append((float(p[:, 0].min()), float(p[:, 1].min()), float(p[:, 0].max()), float(p[:, 1].max())))
    plate = RenderedPlate(np.asarray(image), "".join(chars), new_boxes, style)
    return finish_plate(plate, rng) if finish else plate


@lru_cache(maxsize=64)
def _cap_height(path: str) -> float:
    bbox = _font(path, 96).getbbox("H", anchor="ls")
    return float(-bbox[1])


def finish_plate(plate: RenderedPlate, rng: np.random.Generator,
                 char_px: tuple[float, float] = (10, 48)) -> RenderedPlate:
    """Camera-like finish: reduce so a character is ``char_px`` tall, blur, uneven light, noise, JPEG."""
    img = Image.fromarray(plate.image, "RGB")
    ch = float(np.median([b[3] - b[1] for b in plate.boxes]))
    target = rng.uniform(*char_px)
    f = min(1.0, target / ch)
    size = (max(4, round(img.width * f)), max(4, round(img.height * f)))
    img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0, 0.6) / max(f, 1e-3) * f + 0.25 / max(f, 0.05)))
    img = img.resize(size, Image.Resampling.BOX)
    sx, sy = size[0] / plate.image.shape[1], size[1] / plate.image.shape[0]
    boxes = [(b[0] * sx, b[1] * sy, b[2] * sx, b[3] * sy) for b in plate.boxes]
    if rng.random() < 0.5:
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.2, 0.9)))
    a = np.asarray(img, dtype=np.float32)
    h, w = a.shape[:2]
    gy, gx = np.mgrid[0:h, 0:w]
    light = (1 + rng.uniform(-0.35, 0.35) * (gx / max(w - 1, 1) - 0.5)
             + rng.uniform(-0.3, 0.3) * (gy / max(h - 1, 1) - 0.5))
    a = a * light[..., None] * rng.uniform(0.5, 1.2) + rng.uniform(-30, 30)
    a = a + rng.normal(0, rng.uniform(0, 10), a.shape)
    img = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), "RGB")
    if rng.random() < 0.6:
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=int(rng.integers(25, 95)))
        img = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    return RenderedPlate(np.asarray(img), plate.text, boxes, plate.style)


def cut_rendered(plate: RenderedPlate, size: tuple[int, int], rng: np.random.Generator,
                 jitter: float = 0.1) -> list[np.ndarray]:
    """Each character of a rendered plate cut at its box with random margins (-3 % to ``jitter``
    of the height per side) and prepared as :func:`~core.plates.prep.prepare_char` does."""
    grey = to_grey(plate.image)
    inv = plate.row_light_on_dark(grey)
    h, w = grey.shape
    out = []
    for bx0, by0, bx1, by1 in plate.boxes:
        bh = by1 - by0
        m = rng.uniform(-0.03, jitter, 4) * bh
        xa, ya = max(0, math.floor(bx0 - m[0])), max(0, math.floor(by0 - m[1]))
        xb, yb = min(w, math.ceil(bx1 + m[2])), min(h, math.ceil(by1 + m[3]))
        if xb - xa < 1 or yb - ya < 1:
            xa, ya, xb, yb = int(bx0), int(by0), max(int(bx0) + 1, int(bx1)), max(int(by0) + 1, int(by1))
        out.append(prepare_char(grey[ya:yb, xa:xb], size, invert=inv))
    return out


def render_chars(n: int, size: tuple[int, int] = (8, 16), seed: int = 0,
                 fonts: Sequence[str | Path] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """About ``n`` characters cut from rendered plates: uint8 ``(n, h, w)`` and class indices ``(n,)``."""
    rng = np.random.default_rng(seed)
    images: list[np.ndarray] = []
    labels: list[int] = []
    while len(images) < n:
        plate = render_plate(random_text(rng), random_style(rng, fonts), rng)
        images += cut_rendered(plate, size, rng)
        labels += [CLASSES.index(c) for c in plate.text]
    return np.stack(images[:n]), np.array(labels[:n], dtype=np.int64)
