"""UTKFace aligned and cropped faces, labelled by their file names ``AGE_GENDER_RACE_DATE.jpg.chip.jpg``."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from core.data.common import decode_all, image_files, require_dir, stack, warn_skip
from core.data.imageset import ImageSet
from core.data.split import check_split, in_split
from core.errors import DataError
from core.images import load_image
from core.model.faces import FRAME, crop_fractional

#: Race codes of the file names (0-4), as attribute columns ``Race_<name>``.
RACES = ("White", "Black", "Asian", "Indian", "Others")
#: "Young" is defined as age < YOUNG_BELOW years (CelebA's "Young" is a subjective annotation).
YOUNG_BELOW = 35
#: Attribute columns: "Male" and "Young" as in CelebA (so the sets concatenate), then one per race.
UTKFACE_ATTRS = ("Male", "Young") + tuple(f"Race_{r}" for r in RACES)

#: Crop box (fractions of the image size) from a UTKFace chip to the canonical face frame
#: (core.model.faces). Measured with tools/measure_face_frames.py: MTCNN on 300 images (300 faces found,
#: images padded by 25% for context) of the 96x96 copy gave median eye centres at (0.2992, 0.2901)
#: and (0.6907, 0.2910) of the image size. The canonical frame was chosen from these numbers so
#: that it IS the whole chip (the exact box, with the frame's eyes symmetric about its centre, is
#: (-0.0062, -0.0007, 0.9961, 1.0015): under half a pixel off), so no border has to be invented.
#: Should a future frame reach outside, edges are repeated (see UTKFACE_VALID_BOX).
UTKFACE_BOX = (0.0, 0.0, 1.0, 1.0)


def _valid_box() -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = UTKFACE_BOX
    sx, sy = FRAME / (x1 - x0), FRAME / (y1 - y0)
    return (-x0 * sx, -y0 * sy, (1 - x0) * sx, (1 - y0) * sy)


#: The part of the 64x64 frame that real UTKFace pixels cover, (x0, y0, x1, y1) in frame pixels
#: (about (8.0, 12.9, 56.5, 61.4)); outside it the pixels are repeated edges (e.g. for a loss mask).
UTKFACE_VALID_BOX = _valid_box()

_NAME = re.compile(r"^(\d{1,3})_([01])_([0-4])_\d")


def parse_utkface_name(name: str) -> tuple[int, int, int] | None:
    """``(age, gender, race)`` from a UTKFace file name (gender 0 male, 1 female), or None if malformed.

    Only the leading ``AGE_GENDER_RACE_`` and a digit of the date are required, so names with a stray
    character later on (two in the official set) still count; names missing a field do not.
    """
    m = _NAME.match(name)
    if not m:
        return None
    return int(m[1]), int(m[2]), int(m[3])


def utkface_attrs(age: int, gender: int, race: int) -> np.ndarray:
    """The :data:`UTKFACE_ATTRS` row (1 / -1) for one face."""
    row = [1 if gender == 0 else -1, 1 if age < YOUNG_BELOW else -1]
    row += [1 if race == r else -1 for r in range(len(RACES))]
    return np.array(row, dtype=np.int8)


def load_utkface(
    root: str | Path, split: str = "train", size: int = 64, limit: int | None = None
) -> ImageSet:
    """UTKFace cropped to the canonical face frame at ``size`` x ``size`` RGB.

    ``root`` holds the chips (searched recursively, so ``crop_part1/`` etc. work too). Attributes are
    :data:`UTKFACE_ATTRS`; the exact age is in each id (the file name, see :func:`parse_utkface_name`).
    There is no identity information: the group is the file name. Malformed names and corrupt files
    are skipped, warned about and counted in ``skipped``.
    """
    check_split(split)
    root = require_dir(root, "a UTKFace folder of AGE_GENDER_RACE_DATE.jpg.chip.jpg files")
    files = image_files(root, recursive=True)
    if not files:
        raise DataError(f"{root}: no images; expected UTKFace files named AGE_GENDER_RACE_DATE.jpg.chip.jpg")
    labelled: list[tuple[Path, str, tuple[int, int, int]]] = []
    malformed = bad = 0
    for f in files:
        rel = f.relative_to(root).as_posix()
        parsed = parse_utkface_name(f.name)
        if parsed is None:
            bad += 1
        if not in_split(f"utkface:{rel}", split):
            continue
        if parsed is None:
            malformed += 1
            warn_skip(f, "the name is not AGE_GENDER_RACE_DATE.jpg.chip.jpg")
        else:
            labelled.append((f, rel, parsed))
    if bad == len(files):
        raise DataError(f"{root}: no file is named like UTKFace's AGE_GENDER_RACE_DATE.jpg.chip.jpg")

    def decode(item: tuple[Path, str, tuple[int, int, int]]) -> np.ndarray:
        return np.asarray(crop_fractional(load_image(item[0], "RGB"), UTKFACE_BOX, size))

    arrays, kept, skipped = decode_all(labelled, decode, limit, "UTKFace", name=lambda it: str(it[0]))
    items = [labelled[i] for i in kept]
    table = np.array([utkface_attrs(*p) for _, _, p in items], dtype=np.int8).reshape(
        len(items), len(UTKFACE_ATTRS)
    )
    return ImageSet(
        images=stack(arrays, 3, size, size),
        labels=torch.full((len(items),), -1, dtype=torch.int64),
        attrs=torch.from_numpy(table),
        attr_names=list(UTKFACE_ATTRS),
        ids=[rel for _, rel, _ in items],
        groups=[f"utkface:{rel}" for _, rel, _ in items],
        skipped=skipped + malformed,
        source=f"utkface:{split}",
    )
