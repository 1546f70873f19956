"""The one train/test split rule of the project: a stable hash of a *group* key.

A group is whatever must never straddle the split: a person for faces, a plate or a source sheet
for plate characters, a file for the rest. The hash is SHA-256 (stable across runs, machines and
Python versions, unlike ``hash()``).
"""

from __future__ import annotations

import hashlib

#: Split names the loaders accept.
SPLITS = ("train", "test", "all")
#: Fraction of groups that go to the test split.
TEST_FRACTION = 0.1


def split_of(group: str, test_fraction: float = TEST_FRACTION) -> str:
    """``"test"`` for about ``test_fraction`` of all group keys, ``"train"`` for the rest."""
    if not 0.0 <= test_fraction <= 1.0:
        raise ValueError(f"test_fraction must be in [0, 1], not {test_fraction}")
    digest = hashlib.sha256(group.encode("utf-8")).digest()
    u = int.from_bytes(digest[:8], "big") / 2.0**64
    return "test" if u < test_fraction else "train"


def check_split(split: str) -> str:
    """Return ``split`` if it is one of :data:`SPLITS`, else raise ``ValueError``."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, not {split!r}")
    return split


def in_split(group: str, split: str, test_fraction: float = TEST_FRACTION) -> bool:
    """Whether an item of ``group`` belongs to ``split`` ("all" takes everything)."""
    return check_split(split) == "all" or split_of(group, test_fraction) == split


def select(groups: list[str], split: str, test_fraction: float = TEST_FRACTION) -> list[int]:
    """Indices of the items (given by their group keys, in order) that belong to ``split``."""
    return [i for i, g in enumerate(groups) if in_split(g, split, test_fraction)]
