"""One entry point for every data set kind, a decoded-set cache, and concatenation."""

from __future__ import annotations

import hashlib
import json
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.data.celeba import load_celeba
from core.data.common import DataWarning
from core.data.folder import load_folder
from core.data.imageset import ImageSet
from core.data.mnist import load_mnist
from core.data.plates import load_plate_chars
from core.data.utkface import load_utkface
from core.fileio import atomic_write

#: Bump when any loader's output changes, so cached sets are rebuilt.
LOADER_VERSION = 2
KINDS = ("celeba", "utkface", "mnist", "plate-chars", "plate-real-chars", "folder")


def _square(size: int | tuple[int, int], kind: str) -> int:
    if isinstance(size, int):
        return size
    w, h = (int(v) for v in size)
    if w != h:
        raise ValueError(f"{kind} images are square; got size {w}x{h}")
    return w


def _pair(size: int | tuple[int, int]) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def to_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    """uint8 ``(N, C, H, W)`` to 1 or 3 channels (grey as PIL's ITU-R 601-2 luma, or grey repeated)."""
    c = images.shape[1]
    if c == channels:
        return images
    if channels == 3 and c == 1:
        return images.repeat(1, 3, 1, 1)
    if channels == 1 and c == 3:
        x = images.to(torch.int64)
        luma = (x[:, 0] * 19595 + x[:, 1] * 38470 + x[:, 2] * 7471 + 0x8000) >> 16
        return luma.to(torch.uint8)[:, None]
    raise ValueError(f"cannot convert {c} channels to {channels}")


def _load(
    kind: str,
    root: str | Path,
    split: str,
    size: int | tuple[int, int],
    channels: int,
    limit: int | None,
    **kw: Any,
) -> ImageSet:
    if kind == "celeba":
        s = load_celeba(root, split, _square(size, kind), limit, **kw)
    elif kind == "utkface":
        s = load_utkface(root, split, _square(size, kind), limit, **kw)
    elif kind == "mnist":
        s = load_mnist(root, split, _square(size, kind), limit, **kw)
    elif kind == "plate-chars":
        s = load_plate_chars(root, split, _pair(size), limit, **kw)
    elif kind == "plate-real-chars":  # real + rendered characters of whole plates (core.plates)
        from core.plates.training_chars import load_plate_training_chars

        s = load_plate_training_chars(root, split, _pair(size), limit, **kw)
    elif kind == "folder":
        return load_folder(root, split, _pair(size), channels, limit, **kw)
    else:
        raise ValueError(f"unknown data set kind {kind!r}; expected one of {', '.join(KINDS)}")
    s.images = to_channels(s.images, channels)
    return s


def cache_key(
    kind: str, root: str | Path, split: str, size: Any, channels: int, limit: int | None, kw: dict[str, Any]
) -> str:
    """Hex SHA-256 of everything that determines a loaded set."""
    spec = {
        "kind": kind,
        "root": str(Path(root).expanduser().resolve()),
        "split": split,
        "size": list(_pair(size)),
        "channels": channels,
        "limit": limit,
        "version": LOADER_VERSION,
        "kw": kw,
    }
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()


def save_npz(s: ImageSet, path: Path) -> None:
    """Write an ImageSet as a plain ``.npz`` (no pickled objects), atomically."""
    arrays: dict[str, Any] = {  # Any: numpy's stubs would read a key as savez's allow_pickle
        "images": s.images.numpy(),
        "labels": s.labels.numpy(),
        "classes": np.array(s.classes, dtype=str),
        "attr_names": np.array(s.attr_names, dtype=str),
        "ids": np.array(s.ids, dtype=str),
        "groups": np.array(s.groups, dtype=str),
        "skipped": np.array(s.skipped, dtype=np.int64),
        "source": np.array(s.source, dtype=str),
    }
    if s.attrs is not None:
        arrays["attrs"] = s.attrs.numpy()
    path.parent.mkdir(parents=True, exist_ok=True)
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)

    atomic_write(path, write)


def load_npz(path: Path) -> ImageSet:
    """Read an ImageSet written by :func:`save_npz` (``allow_pickle=False``)."""
    with np.load(path, allow_pickle=False) as z:
        return ImageSet(
            images=torch.from_numpy(z["images"].copy()),
            labels=torch.from_numpy(z["labels"].copy()),
            classes=z["classes"].tolist(),
            attrs=torch.from_numpy(z["attrs"].copy()) if "attrs" in z.files else None,
            attr_names=z["attr_names"].tolist(),
            ids=z["ids"].tolist(),
            groups=z["groups"].tolist(),
            skipped=int(z["skipped"]),
            source=str(z["source"]),
        )


def load_dataset(
    kind: str,
    root: str | Path,
    split: str = "train",
    size: int | tuple[int, int] = 64,
    channels: int = 3,
    limit: int | None = None,
    cache_dir: str | Path | None = None,
    **kw: Any,
) -> ImageSet:
    """Load a data set of ``kind`` (see :data:`KINDS`) at ``size`` (an int, or (width, height)) with
    ``channels`` 1 or 3; ``kw`` go to the kind's loader.

    With ``cache_dir``, the decoded set is kept there as ``.npz`` keyed by :func:`cache_key` and read
    back on the next call with the same arguments. The key does not see changes to the files under
    ``root``: delete the cache after changing a data set.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown data set kind {kind!r}; expected one of {', '.join(KINDS)}")
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, not {channels}")
    if cache_dir is None:
        return _load(kind, root, split, size, channels, limit, **kw)
    path = (
        Path(cache_dir) / f"{kind}-{split}-{cache_key(kind, root, split, size, channels, limit, kw)[:20]}.npz"
    )
    if path.is_file():
        try:
            return load_npz(path)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
            warnings.warn(f"{path}: unreadable cache ({e}); decoding again", DataWarning, stacklevel=2)
    s = _load(kind, root, split, size, channels, limit, **kw)
    save_npz(s, path)
    return s


def concat(sets: list[ImageSet]) -> ImageSet:
    """One ImageSet of several: images must share their shape; classes must agree (or be empty);
    attributes are the union of the names (first-seen order), 0 (unknown) where a set lacks one."""
    if not sets:
        raise ValueError("nothing to concatenate")
    shapes = {tuple(s.images.shape[1:]) for s in sets}
    if len(shapes) > 1:
        raise ValueError(f"images differ in shape (C, H, W): {sorted(shapes)}")
    class_lists = [s.classes for s in sets if s.classes]
    if any(c != class_lists[0] for c in class_lists):
        raise ValueError("the sets have different classes")
    classes = class_lists[0] if class_lists else []
    names: list[str] = []
    for s in sets:
        names += [n for n in s.attr_names if n not in names]
    attrs = None
    if any(s.attrs is not None for s in sets):
        parts = []
        for s in sets:
            a = torch.zeros((len(s), len(names)), dtype=torch.int8)
            if s.attrs is not None:
                a[:, [names.index(n) for n in s.attr_names]] = s.attrs
            parts.append(a)
        attrs = torch.cat(parts)
    return ImageSet(
        images=torch.cat([s.images for s in sets]),
        labels=torch.cat([s.labels for s in sets]),
        classes=list(classes),
        attrs=attrs,
        attr_names=names if attrs is not None else [],
        ids=[i for s in sets for i in s.ids],
        groups=[g for s in sets for g in s.groups],
        skipped=sum(s.skipped for s in sets),
        source="+".join(s.source for s in sets),
    )
