"""A fast, deterministic stand-in face embedder and gallery photos for the search tests."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from core.search.align import Face, frame_to_chip, whole_image_as_frame


class FakeEmbedder:
    """Mean colour and brightness spread of the chip: fast, deterministic, content-dependent."""

    name = "fake"
    dim = 4
    chip_size = 16

    def __init__(self, version: str = "v1") -> None:
        self.version = version
        self.calls = 0

    def chip(self, image: Image.Image, face: Face | None) -> Image.Image:
        return frame_to_chip(whole_image_as_frame(image), ((5.0, 5.0), (11.0, 5.0)), self.chip_size)

    def frame_chip(self, frame: torch.Tensor) -> Image.Image:
        a = (frame.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
        return Image.fromarray(a).resize((16, 16))

    def embed_chips(self, chips: Sequence[Image.Image]) -> np.ndarray:
        self.calls += len(chips)
        a = np.stack([np.asarray(c, dtype=np.float32) / 255 for c in chips])
        return np.concatenate([a.mean((1, 2)), a.std((1, 2, 3))[:, None]], 1).astype(np.float32)


def no_face(_img: Image.Image) -> Face | None:
    return None


def photo(path: Path, colour: tuple[int, int, int], size: tuple[int, int] = (40, 48)) -> Path:
    a = np.zeros((size[1], size[0], 3), np.uint8)
    a[:] = colour
    a[::3, :, 0] = 255 - colour[0]  # some structure
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(a).save(path)
    return path
