"""The one degradation the project uses: what a camera would record of a high-resolution scene.

``degrade(hr, scale)`` is a box filter (the mean of each ``scale x scale`` block), i.e. an ideal
sensor that integrates light over each low-resolution pixel. It is linear, exact and identical on
every machine, which keeps three things consistent: the training pairs, the consistency metric
(L1 / LR-PSNR between the input and ``degrade(candidate)``), and the "what the model sees" view in
the app. It also makes the consistency projection closed-form (see :func:`project_consistent`).

:class:`RandomDegradation` adds the optional training-time nuisances real evidence has (blur
before sampling, sensor noise, JPEG), so a model also copes with inputs that are not clean.
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from PIL import Image


def degrade(hr: torch.Tensor, scale: int) -> torch.Tensor:
    """Box-downscale a batch ``(N, C, H, W)`` (or one ``(C, H, W)``) by an integer ``scale``."""
    if scale < 1 or int(scale) != scale:
        raise ValueError(f"scale must be a positive integer, not {scale}")
    one = hr.dim() == 3
    x = hr[None] if one else hr
    h, w = x.shape[-2:]
    if h % scale or w % scale:
        raise ValueError(f"image size {w}x{h} is not a multiple of the scale {scale}")
    y = F.avg_pool2d(x, kernel_size=scale, stride=scale)
    return y[0] if one else y


def upsample_nearest(lr: torch.Tensor, scale: int) -> torch.Tensor:
    """Nearest-neighbour enlargement: each LR pixel as a block (what the analyst's crop 'is')."""
    one = lr.dim() == 3
    x = lr[None] if one else lr
    y = F.interpolate(x, scale_factor=scale, mode="nearest")
    return y[0] if one else y


def upsample_bicubic(lr: torch.Tensor, scale: int) -> torch.Tensor:
    """Bicubic enlargement, clamped to [0, 1]: the baseline every method is compared to."""
    one = lr.dim() == 3
    x = lr[None] if one else lr
    y = F.interpolate(x, scale_factor=scale, mode="bicubic", align_corners=False).clamp(0, 1)
    return y[0] if one else y


def project_consistent(sr: torch.Tensor, lr: torch.Tensor, scale: int) -> torch.Tensor:
    """The smallest (L2) change to ``sr`` such that ``degrade(result) == lr`` (before clamping).

    For a box filter the correction is spread evenly over each block. Clamping to [0, 1] can
    leave a residual where the block is saturated.
    """
    residual = lr - degrade(sr, scale)
    return (sr + upsample_nearest(residual, scale)).clamp(0, 1)


@dataclass
class RandomDegradation:
    """Training-time nuisances applied around :func:`degrade` (each with probability ``p``)."""

    scale: int
    p: float = 0.5
    blur_sigma: tuple[float, float] = (0.3, 1.5)
    noise_std: tuple[float, float] = (0.0, 0.03)
    jpeg_quality: tuple[int, int] = (40, 95)

    def __call__(self, hr: torch.Tensor, rng: random.Random) -> torch.Tensor:
        """Degrade a batch ``(N, C, H, W)`` in [0, 1]; randomness only from ``rng``."""
        x = hr
        if rng.random() < self.p:
            sigma = rng.uniform(*self.blur_sigma) * self.scale / 2
            x = gaussian_blur(x, sigma)
        lr = degrade(x, self.scale)
        if rng.random() < self.p:
            std = rng.uniform(*self.noise_std)
            g = torch.Generator().manual_seed(rng.getrandbits(31))
            lr = lr + std * torch.randn(lr.shape, generator=g).to(lr.device, lr.dtype)
        lr = lr.clamp(0, 1)
        if rng.random() < self.p * 0.5:
            lr = jpeg(lr, rng.randint(*self.jpeg_quality))
        return lr


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur with reflect padding (radius 3 sigma)."""
    if sigma <= 0:
        return x
    radius = max(1, int(3 * sigma + 0.5))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    c = x.shape[1]
    pad_h = min(radius, x.shape[-1] - 1)
    pad_v = min(radius, x.shape[-2] - 1)
    kh = k[radius - pad_h : radius + pad_h + 1].view(1, 1, 1, -1).repeat(c, 1, 1, 1)
    kv = k[radius - pad_v : radius + pad_v + 1].view(1, 1, -1, 1).repeat(c, 1, 1, 1)
    x = F.conv2d(F.pad(x, (pad_h, pad_h, 0, 0), mode="reflect"), kh / kh.sum((-1, -2), keepdim=True), groups=c)
    x = F.conv2d(F.pad(x, (0, 0, pad_v, pad_v), mode="reflect"), kv / kv.sum((-1, -2), keepdim=True), groups=c)
    return x


def jpeg(lr: torch.Tensor, quality: int) -> torch.Tensor:
    """Round-trip each image of a batch through JPEG at ``quality`` (on the CPU, via Pillow)."""
    out = []
    for img in lr.detach().float().cpu():
        a = img.clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).numpy()
        pil = Image.fromarray(a[:, :, 0], "L") if a.shape[2] == 1 else Image.fromarray(a, "RGB")
        buf = io.BytesIO()
        pil.save(buf, "JPEG", quality=quality)
        back = Image.open(io.BytesIO(buf.getvalue()))
        t = torch.frombuffer(bytearray(back.tobytes()), dtype=torch.uint8).view(a.shape).permute(2, 0, 1)
        out.append(t.float() / 255)
    return torch.stack(out).to(lr.device, lr.dtype)
