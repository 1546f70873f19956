"""Safe image loading and conversion shared by the app, the CLIs and the data loaders.

Evidence comes from anywhere, so :func:`open_image` treats every file as hostile: the declared
size is checked before any pixel is decoded (decompression bombs), any decoder failure becomes
an :class:`ImageLoadError` with a one-line reason, and what was done to the pixels (EXIF
rotation, first frame of an animation, bit depth, transparency) is recorded in
:attr:`LoadedImage.notes` so the app and the CLIs can say so.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from core.errors import ImageLoadError, ImageTooLarge

#: Refuse images whose declared size exceeds this many pixels (decompression bombs).
MAX_PIXELS = 100_000_000
#: EXIF orientation tag, and what each value means (EXIF 2.32, tag 0x0112).
EXIF_ORIENTATION = 0x0112
ORIENTATIONS: dict[int, tuple[str, Image.Transpose | None]] = {
    1: ("upright", None),
    2: ("mirrored left-right", Image.Transpose.FLIP_LEFT_RIGHT),
    3: ("rotated 180\u00b0", Image.Transpose.ROTATE_180),
    4: ("mirrored top-bottom", Image.Transpose.FLIP_TOP_BOTTOM),
    5: ("mirrored and rotated 90\u00b0 clockwise", Image.Transpose.TRANSPOSE),
    6: ("rotated 90\u00b0 clockwise", Image.Transpose.ROTATE_270),
    7: ("mirrored and rotated 90\u00b0 anticlockwise", Image.Transpose.TRANSVERSE),
    8: ("rotated 90\u00b0 anticlockwise", Image.Transpose.ROTATE_90),
}
#: Set by the CLIs (:func:`quiet_native_decoders`): silence what C decoders (libtiff) print on stderr.
_QUIET_NATIVE = False
_FORMAT_NAMES = {"WEBP": "WebP"}
_HIGH_DEPTH = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")
_ALPHA = ("RGBA", "LA", "PA", "RGBa", "La")


@dataclass
class LoadedImage:
    """An opened image and how it was made from the file (recorded with the evidence)."""

    image: Image.Image
    format: str
    file_mode: str
    file_size: tuple[int, int]
    orientation: int = 1
    frames: int = 1
    notes: list[str] = field(default_factory=list)

    def info(self) -> dict[str, Any]:
        """JSON-ready record: format, mode and size in the file, EXIF orientation applied, frames, notes."""
        return {"format": self.format, "file_mode": self.file_mode, "file_size": list(self.file_size),
                "exif_orientation": self.orientation, "frames": self.frames, "notes": list(self.notes)}


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_image(path: str | Path, mode: str = "RGB") -> Image.Image:
    """Open an image file fully, honouring EXIF rotation, converted to ``mode`` ("RGB" or "L").

    Raises :class:`ImageLoadError` with a one-line reason on anything unreadable.
    """
    return open_image(path, mode).image


def open_image(path: str | Path, mode: str = "RGB") -> LoadedImage:
    """:func:`load_image` plus what was done: EXIF orientation applied, frames skipped, conversions.

    Only the first frame of an animation (or page of a multi-page TIFF) is decoded. Raises
    :class:`ImageLoadError` on anything unreadable; never any other exception for a bad file.
    """
    if mode not in ("RGB", "L"):
        raise ValueError(f"mode must be RGB or L, not {mode}")
    path = Path(path)
    name = path.name or str(path)
    if not path.is_file():
        raise ImageLoadError(f"{path}: no such file" if not path.exists() else f"{path}: not a file")
    if path.stat().st_size == 0:
        raise ImageLoadError(f"{path}: the file is empty (0 bytes)")
    try:
        with warnings.catch_warnings(record=True) as caught, _native_stderr_silenced():
            warnings.simplefilter("always")
            # our own MAX_PIXELS check below replaces Pillow's warning; its hard limit still raises
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                loaded = _decode(im, mode, name)
        pil = [w for w in caught if f"{os.sep}PIL{os.sep}" in str(w.filename)]  # not other threads' warnings
        for text in dict.fromkeys(_reason(w.message) for w in pil[:3]):
            loaded.notes.append(f"the file is partly damaged ({text})")
        return loaded
    except ImageLoadError:
        raise
    except Image.DecompressionBombError as e:
        raise ImageTooLarge(f"{path}: the declared image size is too large to open safely "
                             f"(over {MAX_PIXELS // 1_000_000} megapixels: a decompression bomb?)") from e
    except UnidentifiedImageError as e:
        raise ImageLoadError(f"{path}: not an image in a format this program reads (PNG, JPEG, BMP, TIFF, "
                             "WebP, GIF): another kind of file, or damaged beyond recognition") from e
    except PermissionError as e:
        raise ImageLoadError(f"{path}: cannot be read (permission denied)") from e
    except MemoryError as e:
        raise ImageTooLarge(f"{path}: too large to decode in the memory available") from e
    except (OSError, ValueError, SyntaxError, EOFError) as e:
        raise ImageLoadError(f"{path}: corrupt or truncated image ({_reason(e)})") from e
    except Exception as e:  # any other decoder failure on a hostile file: never a crash
        raise ImageLoadError(f"{path}: the image could not be decoded ({e.__class__.__name__}: "
                             f"{_reason(e)})") from e


def quiet_native_decoders(on: bool = True) -> None:
    """Silence what C decoders (libtiff) print straight to stderr while an image is opened.

    For the single-threaded CLIs, whose stderr must hold one line per problem: the reason is in the
    :class:`ImageLoadError` (or the notes) anyway. The app leaves it off.
    """
    global _QUIET_NATIVE
    _QUIET_NATIVE = on


@contextlib.contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    if not _QUIET_NATIVE:
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no real stderr (embedded, redirected): nothing to do
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _reason(e: BaseException | Warning | str) -> str:
    """The exception's message on one line, cut to 160 characters."""
    text = " ".join(str(e).split()) or e.__class__.__name__
    return text if len(text) <= 160 else text[:159] + "\u2026"


def _decode(im: Image.Image, mode: str, name: str) -> LoadedImage:
    w, h = im.size
    if w < 1 or h < 1:
        raise ImageLoadError(f"{name}: declares an empty size {w}x{h}")
    if w * h > MAX_PIXELS:
        raise ImageTooLarge(f"{name}: declared size {w}x{h} is too large to open safely "
                             f"(over {MAX_PIXELS // 1_000_000} megapixels: a decompression bomb?)")
    fmt = str(im.format or "unknown")
    notes: list[str] = []
    frames = _frame_count(im)
    if frames > 1:
        what = "pages" if fmt in ("TIFF", "MPO") else "frames"
        kind = "a multi-page" if what == "pages" else "an animated"
        notes.append(f"{kind} {_FORMAT_NAMES.get(fmt, fmt)} with {frames} {what}: only the first is used")
        im.seek(0)
    im.load()  # decode errors surface here (getexif() would swallow some, leaving black pixels)
    orientation = _orientation(im, notes)
    file_mode = im.mode
    out = im
    _, transpose = ORIENTATIONS.get(orientation, ("", None))
    if transpose is not None:
        out = im.transpose(transpose)
        notes.append(f"turned upright as its EXIF orientation says ({ORIENTATIONS[orientation][0]}, "
                     f"tag value {orientation})")
    converted, conv_notes = _convert(out, mode, name)
    notes.extend(conv_notes)
    return LoadedImage(image=converted, format=fmt, file_mode=file_mode, file_size=(w, h),
                       orientation=orientation if transpose is not None else 1, frames=frames, notes=notes)


def _frame_count(im: Image.Image) -> int:
    try:
        return max(1, int(getattr(im, "n_frames", 1))) if getattr(im, "is_animated", False) else 1
    except Exception:  # a broken later frame: the first may still be fine
        return 1


def _orientation(im: Image.Image, notes: list[str]) -> int:
    """The EXIF orientation (1 when absent or unreadable; an unreadable block is noted)."""
    try:
        value = im.getexif().get(EXIF_ORIENTATION, 1)
    except Exception:
        notes.append("its EXIF metadata is unreadable: the image is shown as stored (orientation unknown)")
        return 1
    try:
        value = int(value)
    except (TypeError, ValueError):
        value = 1
    if value not in ORIENTATIONS:
        notes.append(f"its EXIF orientation {value} is not a valid value: the image is shown as stored")
        return 1
    return value


def _convert(im: Image.Image, mode: str, name: str) -> tuple[Image.Image, list[str]]:
    notes = []
    if im.mode in _HIGH_DEPTH:
        notes.append(_depth_note(im))
    elif im.mode == "CMYK":
        notes.append("CMYK colours converted to RGB")
    if im.mode in _ALPHA or (im.mode == "P" and "transparency" in im.info):
        notes.append("transparent pixels shown on white")
    try:
        return to_mode(im, mode), notes
    except ValueError as e:
        raise ImageLoadError(f"{name}: unsupported colour mode {im.mode} ({_reason(e)})") from e


def _depth_note(im: Image.Image) -> str:
    a = np.asarray(im)
    if im.mode == "F":
        bad = int(a.size - np.count_nonzero(np.isfinite(a)))
        return ("floating-point pixels scaled to 8 bits (" +
                ("0..1 maps to 0..255)" if _unit_range(a) else "stretched from their own min..max)") +
                (f"; {bad} NaN or infinite pixels set to black" if bad else ""))
    if _fits_16_bits(a):
        return "16-bit pixels reduced to 8 bits (0..65535 maps to 0..255)"
    return "32-bit integer pixels stretched from their own min..max to 8 bits"


def _unit_range(a: np.ndarray) -> bool:
    f = a[np.isfinite(a)]
    return f.size == 0 or (float(f.min()) >= 0.0 and float(f.max()) <= 1.0)


def _fits_16_bits(a: np.ndarray) -> bool:
    return a.size == 0 or (int(a.min()) >= 0 and int(a.max()) <= 65535)


def to_mode(im: Image.Image, mode: str) -> Image.Image:
    """Convert any PIL image (palette, CMYK, 16-bit, float, alpha) to 8-bit ``RGB`` or ``L``.

    16-bit pixels are scaled 0..65535 to 0..255; float pixels in 0..1 to 0..255, others (and
    32-bit integers outside 16 bits) stretched from their own finite min..max; NaN and infinities
    become 0. Transparency is composited on white.
    """
    if mode not in ("RGB", "L"):
        raise ValueError(f"mode must be RGB or L, not {mode}")
    if im.mode in _HIGH_DEPTH:
        a = np.asarray(im)
        if im.mode == "F" and _unit_range(a):
            a = np.nan_to_num(a.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0) * 255.0
        elif im.mode != "F" and _fits_16_bits(a):
            a = a.astype(np.float32) / 257.0
        else:
            a = a.astype(np.float32)
            finite = np.isfinite(a)
            vals = a[finite]
            lo, hi = (float(vals.min()), float(vals.max())) if vals.size else (0.0, 0.0)
            a = np.where(finite, a, lo)
            a = (a - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(a)
        im = Image.fromarray(np.clip(a, 0, 255).round().astype(np.uint8), "L")
    if im.mode in _ALPHA or (im.mode == "P" and "transparency" in im.info):
        im = im.convert("RGBA")
        bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(bg, im)
    return im.convert(mode)

def pil_to_tensor(im: Image.Image) -> torch.Tensor:
    """PIL image (RGB or L) to a float tensor (C, H, W) in [0, 1]."""
    a = np.asarray(im, dtype=np.uint8)
    if a.ndim == 2:
        a = a[:, :, None]
    return torch.from_numpy(a.copy()).permute(2, 0, 1).float().div_(255.0)


def tensor_to_pil(t: torch.Tensor) -> Image.Image:
    """Float tensor (C, H, W) in [0, 1] to an 8-bit PIL image (rounded, clamped)."""
    a = to_uint8(t).permute(1, 2, 0).numpy()
    return Image.fromarray(a[:, :, 0], "L") if a.shape[2] == 1 else Image.fromarray(a, "RGB")


def to_uint8(t: torch.Tensor) -> torch.Tensor:
    """Quantise a [0, 1] float tensor to uint8 the one way the project does it (round half to even)."""
    return t.detach().float().cpu().clamp(0, 1).mul(255.0).round().to(torch.uint8)
