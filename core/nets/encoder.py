"""Gaussian encoders E_L and E_H: an image to (mu, logvar) of a D-dimensional latent."""

from __future__ import annotations

import torch
from torch import nn


class GaussianEncoder(nn.Module):
    """Strided conv stack down to at most 4 px on the short side, then a linear head.

    ``logvar`` is bounded to (-bound, bound) with a scaled tanh so sigma never explodes or
    collapses to zero.
    """

    def __init__(
        self,
        in_channels: int,
        size: tuple[int, int],
        latent_dim: int,
        width: int = 32,
        logvar_bound: float = 6.0,
        max_width: int = 128,
    ) -> None:
        super().__init__()
        w, h = size
        layers: list[nn.Module] = [nn.Conv2d(in_channels, width, 3, padding=1), nn.LeakyReLU(0.2, True)]
        ch = width
        while min(w, h) > 4:
            out = min(ch * 2, max_width)
            layers += [nn.Conv2d(ch, out, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
            ch, w, h = out, w // 2, h // 2
        layers += [nn.Conv2d(ch, ch, 3, padding=1), nn.LeakyReLU(0.2, True)]
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(ch * w * h, 2 * latent_dim)
        self.latent_dim = latent_dim
        self.logvar_bound = logvar_bound

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.features(x).flatten(1)
        mu, raw = self.head(f).float().chunk(2, dim=1)
        logvar = self.logvar_bound * torch.tanh(raw / self.logvar_bound)
        return mu, logvar
