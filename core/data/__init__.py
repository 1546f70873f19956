"""Data loaders for the layouts users have; each returns an :class:`ImageSet` at a fixed HR size.

Split rule (one for the whole project): :func:`core.data.split.split_of` hashes a *group* key
(an identity for faces, a source image or file for the rest) so the test split never shares a
person or a source with training.
"""

from core.data.celeba import load_celeba
from core.data.folder import load_folder
from core.data.imageset import ImageSet
from core.data.mnist import load_mnist
from core.data.plates import load_plate_chars
from core.data.registry import KINDS, concat, load_dataset
from core.data.split import split_of
from core.data.utkface import load_utkface

__all__ = [
    "KINDS",
    "ImageSet",
    "concat",
    "load_celeba",
    "load_dataset",
    "load_folder",
    "load_mnist",
    "load_plate_chars",
    "load_utkface",
    "split_of",
]
