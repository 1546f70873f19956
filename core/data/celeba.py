"""CelebA aligned crops (``img_align_celeba``) with the 40 attributes and identities."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from core.data.common import DataWarning, decode_all, image_files, require_dir, require_file, stack
from core.data.imageset import ImageSet
from core.data.split import check_split, in_split
from core.errors import DataError
from core.images import load_image
from core.model.faces import crop_fractional

#: The 40 official attribute names, in the file's order.
CELEBA_ATTRS = (
    "5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose Black_Hair "
    "Blond_Hair Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee Gray_Hair Heavy_Makeup "
    "High_Cheekbones Male Mouth_Slightly_Open Mustache Narrow_Eyes No_Beard Oval_Face Pale_Skin Pointy_Nose "
    "Receding_Hairline Rosy_Cheeks Sideburns Smiling Straight_Hair Wavy_Hair Wearing_Earrings Wearing_Hat "
    "Wearing_Lipstick Wearing_Necklace Wearing_Necktie Young"
).split()

#: Crop box (fractions of the image size) from an aligned CelebA image to the canonical face frame
#: (core.model.faces). Measured with tools/measure_face_frames.py: MTCNN on 300 images (299 faces found)
#: of the 89x109 copy gave median eye centres at (0.3916, 0.5148) and (0.6123, 0.5148) of the
#: image size (= (69.7, 112.2) and (109.0, 112.2) px of the official 178x218 images); this box puts
#: them on LEFT_EYE / RIGHT_EYE. In official pixels it is (39.1, 83.0, 139.6, 183.6), a 101 px square.
CELEBA_BOX = (0.2195, 0.3807, 0.7844, 0.8421)


def read_attr_file(path: Path) -> tuple[list[str], dict[str, np.ndarray]]:
    """Parse ``list_attr_celeba.txt``: a count line, a names line, rows ``file v1 .. vA`` (-1/1)."""
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    if len(lines) < 2:
        raise DataError(f"{path}: expected a count line, an attribute names line and one row per image")
    try:
        count = int(lines[0].split()[0])
    except (ValueError, IndexError) as e:
        raise DataError(f"{path}: the first line should be the image count, found {lines[0][:40]!r}") from e
    names = lines[1].split()
    rows: dict[str, np.ndarray] = {}
    for n, line in enumerate(lines[2:], start=3):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != len(names) + 1:
            raise DataError(
                f"{path}:{n}: expected a file name and {len(names)} values, found {len(parts)} fields"
            )
        try:
            values = np.array([int(v) for v in parts[1:]], dtype=np.int8)
        except ValueError as e:
            raise DataError(f"{path}:{n}: attribute values must be -1 or 1") from e
        if not np.isin(values, (-1, 0, 1)).all():
            raise DataError(f"{path}:{n}: attribute values must be -1 or 1")
        rows[parts[0]] = values
    if count != len(rows):
        warnings.warn(
            f"{path}: the count line says {count} images, the file lists {len(rows)}",
            DataWarning,
            stacklevel=2,
        )
    return names, rows


def read_identity_file(path: Path) -> dict[str, str]:
    """Parse ``identity_CelebA.txt``: rows ``file id``."""
    ids: dict[str, str] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2:
            raise DataError(f"{path}:{n}: expected 'file identity', found {line[:60]!r}")
        ids[parts[0]] = parts[1]
    return ids


def load_celeba(
    root: str | Path, split: str = "train", size: int = 64, limit: int | None = None, attributes: bool = True
) -> ImageSet:
    """CelebA cropped to the canonical face frame at ``size`` x ``size`` RGB.

    ``root`` holds ``img_align_celeba/`` (JPEGs at any resolution: the box is in fractions of the
    size), ``list_attr_celeba.txt`` (needed when ``attributes``) and ``identity_CelebA.txt``. The split
    is by identity (group ``celeba:<id>``); images without an identity line are grouped by file name
    (and all of them when the identity file is missing, with a warning). ``limit`` keeps the first N
    readable images of the split in file name order; corrupt files are skipped and counted.
    """
    check_split(split)
    root = require_dir(
        root, "a CelebA folder with img_align_celeba/, list_attr_celeba.txt, identity_CelebA.txt"
    )
    img_dir = require_dir(root / "img_align_celeba", "the CelebA image folder img_align_celeba/")
    if (img_dir / "img_align_celeba").is_dir() and not image_files(img_dir):
        img_dir = img_dir / "img_align_celeba"  # the Kaggle copy nests the folder
    files = image_files(img_dir)
    if not files:
        raise DataError(f"{img_dir}: no images; expected CelebA JPEGs named like 000001.jpg")
    names: list[str] = []
    rows: dict[str, np.ndarray] = {}
    if attributes:
        attr_path = require_file(
            root / "list_attr_celeba.txt", "the CelebA attribute file list_attr_celeba.txt"
        )
        names, rows = read_attr_file(attr_path)
    id_path = root / "identity_CelebA.txt"
    if id_path.is_file():
        identities = read_identity_file(id_path)
    else:
        warnings.warn(
            f"{id_path} is missing: splitting by file name, not by identity", DataWarning, stacklevel=2
        )
        identities = {}

    def group(f: Path) -> str:
        ident = identities.get(f.name)
        return f"celeba:{ident}" if ident is not None else f"celeba-file:{f.name}"

    chosen = [f for f in files if in_split(group(f), split)]

    def decode(f: Path) -> np.ndarray:
        return np.asarray(crop_fractional(load_image(f, "RGB"), CELEBA_BOX, size))

    arrays, kept, skipped = decode_all(chosen, decode, limit, "CelebA")
    kept_files = [chosen[i] for i in kept]
    attrs = None
    if attributes:
        unknown = np.zeros(len(names), dtype=np.int8)
        table = np.array([rows.get(f.name, unknown) for f in kept_files], dtype=np.int8)
        attrs = torch.from_numpy(table.reshape(len(kept_files), len(names)))
    return ImageSet(
        images=stack(arrays, 3, size, size),
        labels=torch.full((len(kept_files),), -1, dtype=torch.int64),
        attrs=attrs,
        attr_names=list(names),
        ids=[f.name for f in kept_files],
        groups=[group(f) for f in kept_files],
        skipped=skipped,
        source=f"celeba:{split}",
    )
