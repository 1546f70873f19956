"""Safe image loading and conversion shared by the app, the CLIs and the data loaders."""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from core.errors import ImageLoadError

#: Refuse images whose declared size exceeds this many pixels (decompression bombs).
MAX_PIXELS = 100_000_000


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
    path = Path(path)
    if not path.is_file():
        raise ImageLoadError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise ImageLoadError(f"{path}: the file is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                w, h = im.size
                if w * h > MAX_PIXELS:
                    raise ImageLoadError(f"{path}: declared size {w}x{h} is too large to open safely")
                im.seek(0)
                im = ImageOps.exif_transpose(im)
                return to_mode(im, mode)
    except ImageLoadError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageLoadError(f"{path}: not a readable image ({e.__class__.__name__})") from e
    except (OSError, ValueError, SyntaxError, EOFError) as e:
        raise ImageLoadError(f"{path}: corrupt or truncated image ({e})") from e


def to_mode(im: Image.Image, mode: str) -> Image.Image:
    """Convert any PIL image (palette, CMYK, 16-bit, float, alpha) to 8-bit ``RGB`` or ``L``."""
    if mode not in ("RGB", "L"):
        raise ValueError(f"mode must be RGB or L, not {mode}")
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        a = np.asarray(im, dtype=np.float64)
        lo, hi = float(a.min()), float(a.max())
        a = (a - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(a)
        im = Image.fromarray(a.round().astype(np.uint8), "L")
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
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
