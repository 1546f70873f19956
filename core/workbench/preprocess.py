"""Turn an analyst's crop into exactly what a model takes, and score candidates against it."""

from __future__ import annotations

import math

import torch
from PIL import Image

from core.images import pil_to_tensor, to_mode
from core.model.config import ModelConfig
from core.model.degrade import degrade


def prepare_lr(img: Image.Image, cfg: ModelConfig) -> tuple[torch.Tensor, list[str]]:
    """Resize a crop to the model's LR size with a box filter (the model's own degradation).

    Returns the LR tensor ``(C, h, w)`` in [0, 1] and notes for the analyst: a crop much larger
    than the LR input loses detail the model cannot use, a smaller one is enlarged (blocks), and
    a different aspect ratio is stretched.
    """
    notes: list[str] = []
    w, h = cfg.lr_size
    mode = "L" if cfg.channels == 1 else "RGB"
    img = img if img.mode == mode else to_mode(img, mode)  # no copy of a large crop already in the mode
    iw, ih = img.size
    if abs(math.log((iw / ih) / (w / h))) > math.log(1.15):
        notes.append(f"crop aspect {iw}x{ih} differs from the model's {w}x{h}: it is stretched")
    ratio = max(iw / w, ih / h)
    if ratio > 4:
        notes.append(f"crop is {ratio:.0f}x larger than the model's {w}x{h} input: the model discards that detail "
                     "(use a model with a larger input, if there is one)")
    elif ratio < 1:
        notes.append(f"crop {iw}x{ih} is smaller than the model's {w}x{h} input: it is enlarged")
    lr = img.resize((w, h), Image.Resampling.BOX) if (iw, ih) != (w, h) else img
    return pil_to_tensor(lr), notes


def consistency(candidates: torch.Tensor, lr: torch.Tensor, scale: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per candidate: mean |LR - degrade(candidate)| on the 0-255 scale, and LR-PSNR in dB.

    ``candidates (n, C, H, W)``, ``lr (C, h, w)``; LR-PSNR is capped at 100 dB for a perfect match.
    """
    d = degrade(candidates.float(), scale) - lr.float()[None]
    l1 = d.abs().mean(dim=(1, 2, 3)) * 255.0
    mse = (d**2).mean(dim=(1, 2, 3)).clamp_min(1e-10)
    psnr = (10 * torch.log10(1.0 / mse)).clamp(max=100.0)
    return l1, psnr
