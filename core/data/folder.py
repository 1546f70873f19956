"""Any folder of images (searched recursively), centre-cropped to the output aspect and resized."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from core.data.common import IMAGE_EXTS, centre_box, decode_all, image_files, require_dir, resize, stack
from core.data.imageset import ImageSet
from core.data.split import check_split, in_split
from core.errors import DataError
from core.images import load_image


def load_folder(
    root: str | Path,
    split: str = "train",
    size: tuple[int, int] = (64, 64),
    channels: int = 3,
    limit: int | None = None,
) -> ImageSet:
    """Every image under ``root`` (png, jpg, jpeg, bmp, tif, tiff, webp) as ``size`` = (width, height)
    with 1 (grey) or 3 (RGB) channels: the largest centred box of that aspect, resized (area average
    when shrinking). The group, and the id, is the path relative to ``root``. Unreadable files are
    skipped with a warning and counted. There are no labels or attributes.
    """
    check_split(split)
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, not {channels}")
    w, h = int(size[0]), int(size[1])
    root = require_dir(root, "a folder of image files")
    files = image_files(root, recursive=True)
    if not files:
        raise DataError(f"{root}: no image files ({', '.join(sorted(IMAGE_EXTS))}) in it or below it")
    rels = [f.relative_to(root).as_posix() for f in files]
    chosen = [(f, r) for f, r in zip(files, rels, strict=True) if in_split(f"folder:{r}", split)]
    mode = "L" if channels == 1 else "RGB"

    def decode(item: tuple[Path, str]) -> np.ndarray:
        im = load_image(item[0], mode)
        return np.asarray(resize(im, (w, h), box=centre_box(im.width, im.height, w / h)))

    arrays, kept, skipped = decode_all(chosen, decode, limit, "images", name=lambda it: str(it[0]))
    rel_kept = [chosen[i][1] for i in kept]
    return ImageSet(
        images=stack(arrays, channels, h, w),
        labels=torch.full((len(rel_kept),), -1, dtype=torch.int64),
        ids=rel_kept,
        groups=[f"folder:{r}" for r in rel_kept],
        skipped=skipped,
        source=f"folder:{split}",
    )
