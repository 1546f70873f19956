"""Helpers the loaders share: layout checks, file listing, the decode loop, stacking."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from core.errors import DataError, ImageLoadError

T = TypeVar("T")

#: File name endings read as images by the folder loaders.
IMAGE_EXTS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})
#: Show a progress bar when decoding more files than this.
PROGRESS_MIN = 300


class DataWarning(UserWarning):
    """A file was skipped (corrupt, unreadable, malformed name or label); loading goes on."""


def warn_skip(what: str | Path, reason: str) -> None:
    """Warn that one item was skipped (the reason's own leading ``<what>: `` is not repeated)."""
    prefix = f"{what}: "
    reason = reason[len(prefix):] if reason.startswith(prefix) else reason
    warnings.warn(f"skipped {what}: {reason}", DataWarning, stacklevel=3)


def require_dir(path: str | Path, what: str) -> Path:
    """``path`` as a Path if it is a folder, else :class:`DataError` naming what was expected."""
    p = Path(path).expanduser()
    if not p.is_dir():
        raise DataError(f"{p}: not a folder; expected {what}")
    return p


def require_file(path: Path, what: str) -> Path:
    """``path`` if it is a file, else :class:`DataError` naming what was expected."""
    if not path.is_file():
        raise DataError(f"{path}: missing; expected {what}")
    return path


def image_files(folder: Path, recursive: bool = False) -> list[Path]:
    """Image files (by extension, case-insensitive) in ``folder``, sorted by relative path."""
    it = folder.rglob("*") if recursive else folder.iterdir()
    files = [p for p in it if p.suffix.lower() in IMAGE_EXTS and p.is_file()]
    return sorted(files, key=lambda p: p.relative_to(folder).as_posix())


def progress(items: Sequence[T], desc: str) -> Iterable[T]:
    """``items`` wrapped in a transient tqdm bar when there are many of them."""
    if len(items) > PROGRESS_MIN:
        return tqdm(items, desc=desc, leave=False, unit="img")
    return items


def decode_all(
    items: Sequence[T],
    fn: Callable[[T], np.ndarray],
    limit: int | None,
    desc: str,
    name: Callable[[T], str] = str,
) -> tuple[list[np.ndarray], list[int], int]:
    """Apply ``fn`` to ``items`` in order until ``limit`` succeed.

    Returns the arrays, the indices of the items they came from and how many items were skipped
    (``fn`` raised :class:`ImageLoadError` or ``ValueError``: a warning is given for each).
    """
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0, not {limit}")
    arrays: list[np.ndarray] = []
    kept: list[int] = []
    skipped = 0
    for i, item in enumerate(progress(items, desc)):
        if limit is not None and len(arrays) >= limit:
            break
        try:
            arrays.append(fn(item))
        except (ImageLoadError, ValueError) as e:
            warn_skip(name(item), str(e))
            skipped += 1
            continue
        kept.append(i)
    return arrays, kept, skipped


def stack(arrays: list[np.ndarray], channels: int, height: int, width: int) -> torch.Tensor:
    """HxW or HxWxC uint8 arrays to one uint8 tensor ``(N, C, H, W)`` (an empty one if none)."""
    if not arrays:
        return torch.zeros((0, channels, height, width), dtype=torch.uint8)
    a = np.stack(arrays)
    if a.ndim == 3:
        a = a[:, None]
    else:
        a = a.transpose(0, 3, 1, 2)
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.uint8))


def resize(
    img: Image.Image, size: tuple[int, int], box: tuple[float, float, float, float] | None = None
) -> Image.Image:
    """Resize (optionally a ``box`` of) ``img`` to ``size`` = (width, height): area (box filter)
    averaging when shrinking, bicubic when enlarging."""
    bw = img.width if box is None else box[2] - box[0]
    bh = img.height if box is None else box[3] - box[1]
    if (bw, bh) == size and box is None:
        return img
    shrink = size[0] <= bw and size[1] <= bh
    method = Image.Resampling.BOX if shrink else Image.Resampling.BICUBIC
    return img.resize(size, method, box=box)


def centre_box(w: int, h: int, aspect: float) -> tuple[float, float, float, float]:
    """The largest centred box of ``aspect`` = width / height inside a ``w`` x ``h`` image."""
    if w / h > aspect:
        cw = h * aspect
        return ((w - cw) / 2, 0.0, (w + cw) / 2, float(h))
    ch = w / aspect
    return (0.0, (h - ch) / 2, float(w), (h + ch) / 2)
