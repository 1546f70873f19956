"""The WGAN-GP critic: SRGAN's discriminator without batch norm (a Lipschitz-friendly critic)."""

from __future__ import annotations

import torch
from torch import nn


class Critic(nn.Module):
    """Conv pairs (stride 1, stride 2) down to at most 4 px on the short side, then two dense layers.

    Small outputs (8x16 plate characters, 24x24 digits) get fewer stride-2 stages, as the paper
    removes layers for digits. No normalisation: the gradient penalty is per sample.
    """

    def __init__(self, channels: int, size: tuple[int, int], width: int = 32) -> None:
        super().__init__()
        w, h = size
        layers: list[nn.Module] = [nn.Conv2d(channels, width, 3, padding=1), nn.LeakyReLU(0.2, True)]
        ch = width
        while min(w, h) > 4:
            out = min(ch * 2, 512)
            layers += [
                nn.Conv2d(ch, ch, 3, padding=1),
                nn.LeakyReLU(0.2, True),
                nn.Conv2d(ch, out, 4, stride=2, padding=1),
                nn.LeakyReLU(0.2, True),
            ]
            ch, w, h = out, w // 2, h // 2
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(ch * w * h, 256), nn.LeakyReLU(0.2, True), nn.Linear(256, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)).squeeze(1)
