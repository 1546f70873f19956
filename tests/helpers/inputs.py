"""Hostile and odd image files, made on the fly, for the robustness tests (not a test module).

:func:`make_inputs` writes every kind into a folder and says what should happen: ``ok`` (loads,
with the listed words in its notes) or ``error`` (an :class:`~core.errors.ImageLoadError` whose
message contains the listed words).
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class Kind:
    """One input kind: the file, whether it should load, words expected in the note or error, and
    the size (width, height) it should load at."""

    path: Path
    ok: bool
    words: str = ""
    size: tuple[int, int] | None = None


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def png_claiming(width: int, height: int) -> bytes:
    """A valid PNG header declaring ``width`` x ``height`` RGB, with almost no pixel data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + _chunk(b"IEND", b""))


def sample_image(w: int = 32, h: int = 24) -> Image.Image:
    """A small RGB picture with some structure (so JPEG/WebP encoders have something to do)."""
    yy, xx = np.mgrid[0:h, 0:w]
    a = np.stack([xx * 255 // max(1, w - 1), yy * 255 // max(1, h - 1), (xx + yy) % 256], -1)
    return Image.fromarray(a.astype(np.uint8), "RGB")


def encoded(fmt: str, im: Image.Image | None = None, **kw: object) -> bytes:
    buf = io.BytesIO()
    (im or sample_image()).save(buf, fmt, **kw)
    return buf.getvalue()


def make_inputs(folder: Path) -> dict[str, Kind]:
    """Write every input kind into ``folder``; returns ``{name: Kind}``."""
    folder.mkdir(parents=True, exist_ok=True)
    base = sample_image()
    good_png = encoded("PNG", base)
    good_jpg = encoded("JPEG", base, quality=90)
    out: dict[str, Kind] = {}

    def raw(name: str, data: bytes, ok: bool, words: str = "", size: tuple[int, int] | None = None) -> None:
        p = folder / name
        p.write_bytes(data)
        out[name] = Kind(p, ok, words, size)

    def img(name: str, im: Image.Image, words: str = "", size: tuple[int, int] | None = None, **kw: object) -> None:
        p = folder / name
        im.save(p, **kw)
        out[name] = Kind(p, True, words, size or im.size)

    raw("zero_bytes.png", b"", False, "empty")
    raw("text_named.png", b"This is a text file, not a picture.\n" * 3, False, "not an image")
    raw("truncated.png", good_png[: len(good_png) // 2], False, "truncated")
    raw("truncated_header.png", good_png[:20], False, "truncated")
    raw("truncated.jpg", good_jpg[: len(good_jpg) // 2], False, "truncated")
    raw("corrupt_data.png", good_png[:60] + bytes(200) + good_png[260:], False, "corrupt")
    raw("bomb_100000x100000.png", png_claiming(100_000, 100_000), False, "too large")
    raw("bomb_12000x12000.png", png_claiming(12_000, 12_000), False, "too large")
    raw("html_named.jpg", b"<!doctype html><html><body>404</body></html>", False, "not an image")

    img("gray16.tif", Image.fromarray(np.arange(24 * 32, dtype=np.uint16).reshape(24, 32) * 80), "16-bit")
    img("gray16.png", Image.fromarray(np.arange(24 * 32, dtype=np.uint16).reshape(24, 32) * 80), "16-bit")
    img("float_unit.tif", Image.fromarray(np.linspace(0, 1, 24 * 32, dtype=np.float32).reshape(24, 32)),
        "0..1 maps")
    img("float_wide.tif", Image.fromarray(np.linspace(-5, 900, 24 * 32, dtype=np.float32).reshape(24, 32)),
        "stretched")
    nan = np.linspace(0, 1, 24 * 32, dtype=np.float32).reshape(24, 32)
    nan[0, :4] = [np.nan, np.inf, -np.inf, np.nan]
    img("float_nan.tif", Image.fromarray(nan), "4 NaN or infinite")
    img("palette.png", base.convert("P"))
    pal = base.convert("P")
    img("palette_transparent.png", pal, "transparent", transparency=0)
    img("palette.gif", base.convert("P"))
    img("cmyk.jpg", base.convert("CMYK"), "CMYK", quality=90)
    img("cmyk.tif", base.convert("CMYK"), "CMYK")
    img("gray_alpha.png", Image.merge("LA", (base.convert("L"), Image.new("L", base.size, 128))), "transparent")
    img("rgba.png", base.convert("RGBA"), "transparent")
    img("bilevel.png", base.convert("1"))
    img("gray.jpg", base.convert("L"), quality=90)
    img("one_pixel.png", Image.new("RGB", (1, 1), (200, 10, 10)))
    img("one_pixel.jpg", Image.new("RGB", (1, 1), (200, 10, 10)))
    img("wide_1000x1.png", Image.new("L", (1000, 1), 80))
    img("plain.bmp", base)
    img("plain.webp", base, quality=90)
    for value, size in ((3, (32, 24)), (6, (24, 32)), (8, (24, 32)), (5, (24, 32))):
        exif = Image.Exif()
        exif[0x0112] = value
        img(f"exif_orientation_{value}.jpg", base, "EXIF orientation", size=size, exif=exif.tobytes(), quality=90)
    exif = Image.Exif()
    exif[0x0112] = 42
    img("exif_orientation_invalid.jpg", base, "not a valid value", exif=exif.tobytes(), quality=90)
    frames = [Image.new("RGB", (20, 16), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    for name, kw in (("animated.gif", {}), ("animated.webp", {"lossless": True})):
        p = folder / name
        frames[0].save(p, save_all=True, append_images=frames[1:], duration=100, loop=0, **kw)
        out[name] = Kind(p, True, "3 frames: only the first", (20, 16))
    p = folder / "multipage.tif"
    frames[0].save(p, save_all=True, append_images=frames[1:])
    out["multipage.tif"] = Kind(p, True, "3 pages: only the first", (20, 16))
    d = folder / "a_folder.png"
    d.mkdir(exist_ok=True)
    out["a_folder.png"] = Kind(d, False, "not a file")
    out["missing.png"] = Kind(folder / "missing.png", False, "no such file")
    return out
