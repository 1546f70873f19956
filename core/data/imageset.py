"""The in-memory form every loader returns."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class ImageSet:
    """Decoded HR images of one data set and split, ready for training or evaluation.

    ``images`` is uint8 ``(N, C, H, W)``; ``labels`` int64 ``(N,)`` with -1 where there is no
    class; ``attrs`` int8 ``(N, A)`` with 1 present, -1 absent, 0 unknown (or ``None``).
    """

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str] = field(default_factory=list)
    attrs: torch.Tensor | None = None
    attr_names: list[str] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    skipped: int = 0
    source: str = ""

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def float_images(self, idx: torch.Tensor | slice | None = None) -> torch.Tensor:
        """Images (or a subset) as float32 in [0, 1]."""
        x = self.images if idx is None else self.images[idx]
        return x.float().div_(255.0)
