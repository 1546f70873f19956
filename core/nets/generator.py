"""G(I_L, z): an SRResNet-style residual generator with the latent injected at every scale.

The latent acts twice: tiled and concatenated to the LR input (so the trunk sees it from the
first layer), and as FiLM (per-channel scale and shift after each instance norm) in every
residual block and every upsampling stage. With ``latent_dim == 0`` the same network is the
deterministic baseline. The output is a residual over the bicubic enlargement of the input.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class FiLM(nn.Module):
    """Feature-wise affine modulation x * (1 + gamma(z)) + beta(z); identity without a latent."""

    def __init__(self, latent_dim: int, channels: int) -> None:
        super().__init__()
        self.proj = nn.Linear(latent_dim, 2 * channels) if latent_dim else None
        if self.proj is not None:
            nn.init.zeros_(self.proj.weight)
            nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor, z: torch.Tensor | None) -> torch.Tensor:
        if self.proj is None or z is None:
            return x
        gamma, beta = self.proj(z).to(x.dtype)[:, :, None, None].chunk(2, dim=1)
        return x * (1 + gamma) + beta


def _norm(kind: str, channels: int) -> nn.Module:
    return nn.InstanceNorm2d(channels, affine=True) if kind == "instance" else nn.Identity()


class ResBlock(nn.Module):
    """conv-norm-FiLM-PReLU-conv-norm-FiLM plus the identity."""

    def __init__(self, channels: int, latent_dim: int, norm: str) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.norm1 = _norm(norm, channels)
        self.film1 = FiLM(latent_dim, channels)
        self.act = nn.PReLU(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.norm2 = _norm(norm, channels)
        self.film2 = FiLM(latent_dim, channels)

    def forward(self, x: torch.Tensor, z: torch.Tensor | None) -> torch.Tensor:
        y = self.act(self.film1(self.norm1(self.conv1(x)), z))
        y = self.film2(self.norm2(self.conv2(y)), z)
        return x + y


class UpBlock(nn.Module):
    """x2 sub-pixel upsampling: conv to 4x channels, pixel shuffle, FiLM, PReLU."""

    def __init__(self, in_channels: int, out_channels: int, latent_dim: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels * 4, 3, padding=1)
        self.shuffle = nn.PixelShuffle(2)
        self.film = FiLM(latent_dim, out_channels)
        self.act = nn.PReLU(out_channels)

    def forward(self, x: torch.Tensor, z: torch.Tensor | None) -> torch.Tensor:
        return self.act(self.film(self.shuffle(self.conv(x)), z))


class Generator(nn.Module):
    """Super-resolve ``(N, C, h, w)`` by ``scale`` (a power of two), conditioned on ``z (N, D)``."""

    def __init__(
        self,
        channels: int,
        scale: int,
        latent_dim: int,
        width: int = 64,
        n_res_blocks: int = 8,
        up_widths: tuple[int, ...] = (64, 32, 16),
        norm: str = "instance",
        z_channels: int = 16,
    ) -> None:
        super().__init__()
        n_up = scale.bit_length() - 1
        if 2**n_up != scale:
            raise ValueError(f"scale must be a power of two, not {scale}")
        self.scale = scale
        self.latent_dim = latent_dim
        self.z_channels = z_channels if latent_dim else 0
        self.z_to_map = nn.Linear(latent_dim, z_channels) if latent_dim else None
        self.head = nn.Sequential(nn.Conv2d(channels + self.z_channels, width, 3, padding=1), nn.PReLU(width))
        self.blocks = nn.ModuleList(ResBlock(width, latent_dim, norm) for _ in range(n_res_blocks))
        self.trunk_conv = nn.Conv2d(width, width, 3, padding=1)
        self.trunk_norm = _norm(norm, width)
        ups, ch = [], width
        for out in up_widths[:n_up]:
            ups.append(UpBlock(ch, out, latent_dim))
            ch = out
        self.ups = nn.ModuleList(ups)
        self.tail = nn.Conv2d(ch, channels, 3, padding=1)

    def forward(self, lr: torch.Tensor, z: torch.Tensor | None = None, base: torch.Tensor | None = None
                ) -> torch.Tensor:
        """``base`` may pass a precomputed :meth:`upscale_input` (sampling repeats one input n times)."""
        x = lr
        if self.z_to_map is not None:
            if z is None:
                raise ValueError("this generator needs a latent z")
            zmap = self.z_to_map(z).to(lr.dtype)[:, :, None, None].expand(-1, -1, *lr.shape[-2:])
            x = torch.cat([lr, zmap], dim=1)
        else:
            z = None
        feat = self.head(x)
        y = feat
        for block in self.blocks:
            y = block(y, z)
        y = feat + self.trunk_norm(self.trunk_conv(y))
        for up in self.ups:
            y = up(y, z)
        return (self.upscale_input(lr) if base is None else base) + self._tail(y)

    def _tail(self, y: torch.Tensor) -> torch.Tensor:
        # oneDNN's bf16 convolution is ~3x slower with 1 or 3 output channels than with 8:
        # pad the output channels to 8 on the fly and drop the extra ones (same result)
        c = self.tail.out_channels
        if y.device.type == "cpu" and torch.is_autocast_enabled("cpu") and c % 8:
            pad = 8 - c % 8
            w = F.pad(self.tail.weight, (0, 0, 0, 0, 0, 0, 0, pad))
            b = F.pad(self.tail.bias, (0, pad)) if self.tail.bias is not None else None
            return F.conv2d(y, w, b, padding=1)[:, :c]
        return self.tail(y)

    def upscale_input(self, lr: torch.Tensor) -> torch.Tensor:
        """Bicubic enlargement of the input, in fp32 (bf16 bicubic is slow on CPUs)."""
        with torch.autocast(lr.device.type, enabled=False):
            return F.interpolate(lr.float().contiguous(), scale_factor=self.scale, mode="bicubic", align_corners=False)
