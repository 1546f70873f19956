"""MNIST digits from the official IDX files (plain or ``.gz``), parsed with numpy."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from core.data.common import require_dir, resize, stack
from core.data.imageset import ImageSet
from core.data.split import check_split, in_split
from core.errors import DataError

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049
CLASSES = [str(d) for d in range(10)]


def _find(root: Path, prefix: str, kind: str) -> Path | None:
    """``<prefix>-<kind>-idxN-ubyte`` (or the ``.idxN-ubyte`` spelling), plain or ``.gz``."""
    n = 3 if kind == "images" else 1
    for stem in (f"{prefix}-{kind}-idx{n}-ubyte", f"{prefix}-{kind}.idx{n}-ubyte"):
        for name in (stem, stem + ".gz"):
            if (root / name).is_file():
                return root / name
    return None


def _read(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (OSError, EOFError) as e:
        raise DataError(f"{path}: cannot be read ({e})") from e


def read_idx_images(path: Path) -> np.ndarray:
    """uint8 images ``(N, rows, cols)`` of an IDX3 file; :class:`DataError` on a bad header or size."""
    data = _read(path)
    if len(data) < 16:
        raise DataError(f"{path}: too short for an IDX image file")
    magic, n, rows, cols = np.frombuffer(data[:16], dtype=">u4").tolist()
    if magic != IMAGES_MAGIC:
        raise DataError(f"{path}: magic number {magic}, expected {IMAGES_MAGIC} (IDX uint8 images)")
    if len(data) != 16 + n * rows * cols:
        raise DataError(
            f"{path}: header says {n} images of {rows}x{cols}, but the file has {len(data) - 16} bytes"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=16).reshape(n, rows, cols)


def read_idx_labels(path: Path) -> np.ndarray:
    """uint8 labels ``(N,)`` of an IDX1 file; :class:`DataError` on a bad header or size."""
    data = _read(path)
    if len(data) < 8:
        raise DataError(f"{path}: too short for an IDX label file")
    magic, n = np.frombuffer(data[:8], dtype=">u4").tolist()
    if magic != LABELS_MAGIC:
        raise DataError(f"{path}: magic number {magic}, expected {LABELS_MAGIC} (IDX uint8 labels)")
    if len(data) != 8 + n:
        raise DataError(f"{path}: header says {n} labels, but the file has {len(data) - 8} bytes")
    return np.frombuffer(data, dtype=np.uint8, offset=8)


def _read_pair(root: Path, prefix: str) -> tuple[str, np.ndarray, np.ndarray] | None:
    img_path, lab_path = _find(root, prefix, "images"), _find(root, prefix, "labels")
    if img_path is None and lab_path is None:
        return None
    if img_path is None or lab_path is None:
        have = img_path or lab_path
        raise DataError(f"{have}: found without its {'labels' if img_path else 'images'} file")
    images, labels = read_idx_images(img_path), read_idx_labels(lab_path)
    if len(images) != len(labels):
        raise DataError(
            f"{img_path.name} has {len(images)} images but {lab_path.name} has {len(labels)} labels"
        )
    if labels.size and labels.max() > 9:
        raise DataError(f"{lab_path}: labels must be digits 0-9, found {int(labels.max())}")
    return img_path.name.removesuffix(".gz"), images, labels


def load_mnist(root: str | Path, split: str = "train", size: int = 24, limit: int | None = None) -> ImageSet:
    """MNIST as grey ``size`` x ``size`` images, classes "0".."9".

    Reads ``train-images-idx3-ubyte`` / ``train-labels-idx1-ubyte`` (and ``t10k-*``), plain or ``.gz``.
    Without t10k files the split hashes the group ``mnist:<file>:<index>`` (IDX has no writer ids).
    With them the official split is used instead: "train" is the train files, "test" the t10k files.
    Only the ``t10k-*`` files (a test set alone) are read as the test split ("test" or "all"); asking
    such a folder for "train" is a clear error.
    Resizing 28 -> ``size`` averages areas (PIL's box filter), so strokes are not aliased.
    """
    check_split(split)
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0, not {limit}")
    root = require_dir(root, "an MNIST folder with train-images-idx3-ubyte and train-labels-idx1-ubyte")
    train, test = _read_pair(root, "train"), _read_pair(root, "t10k")
    if train is None and test is None:
        raise DataError(f"{root}: expected train-images-idx3-ubyte and train-labels-idx1-ubyte, or the t10k-* "
                        "test files (plain or .gz)")
    if train is None and split == "train":
        raise DataError(f"{root}: only the t10k-* test files are here, so there is no training split")
    parts: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]] = []
    for pair, official in ((train, "train"), (test, "test")):
        if pair is None:
            continue
        name, images, labels = pair
        idx = np.arange(len(images))
        if test is not None and train is not None:
            idx = idx if split in ("all", official) else idx[:0]
        elif train is None:  # a test set alone: all of it is test data
            pass
        else:
            idx = np.array([i for i in idx if in_split(f"mnist:{name}:{i}", split)], dtype=np.int64)
        parts.append((name, images, labels, idx))
    ids: list[str] = []
    out: list[np.ndarray] = []
    labs: list[int] = []
    for name, images, labels, idx in parts:
        for i in idx.tolist():
            if limit is not None and len(out) >= limit:
                break
            img = images[i]
            if img.shape != (size, size):
                img = np.asarray(resize(Image.fromarray(img, "L"), (size, size)))
            out.append(img)
            labs.append(int(labels[i]))
            ids.append(f"mnist:{name}:{i}")
    return ImageSet(
        images=stack(out, 1, size, size),
        labels=torch.tensor(labs, dtype=torch.int64),
        classes=list(CLASSES),
        ids=ids,
        groups=list(ids),
        source=f"mnist:{split}",
    )
