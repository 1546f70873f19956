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
    """The nearest (L2) image to ``sr`` in [0, 1] whose :func:`degrade` equals ``lr`` (clamped to [0, 1]).

    The box filter's blocks do not overlap, so the problem splits per block: move every pixel of a
    block by the same amount ``t`` and clamp to [0, 1], with ``t`` chosen so that the block's mean is
    its LR value. Where nothing saturates that is the closed form ``t = lr - mean(block)``; blocks that
    would leave [0, 1] get ``t`` from :func:`_solve_clamped_shift` (exact, in float64).
    ``(C, H, W)`` or ``(N, C, H, W)``; the result has ``sr``'s dtype.
    """
    one = sr.dim() == 3
    x = (sr[None] if one else sr).double()
    target = (lr[None] if one else lr).double().clamp(0, 1)
    n, c, hh, ww = x.shape
    h, w = hh // scale, ww // scale
    if (h * scale, w * scale) != (hh, ww) or tuple(target.shape[-2:]) != (h, w):
        raise ValueError(f"sizes do not match: {ww}x{hh} is not {scale} x the LR {target.shape[-1]}x{target.shape[-2]}")
    blocks = x.reshape(n, c, h, scale, w, scale).permute(0, 1, 2, 4, 3, 5).reshape(n, c, h, w, scale * scale)
    t = target[..., None]
    shift = t - blocks.mean(-1, keepdim=True)
    out = blocks + shift
    bad = ((out < 0) | (out > 1)).any(-1)
    if bad.any():
        out[bad] = _solve_clamped_shift(blocks[bad], t[bad])
    out = out.clamp(0, 1).reshape(n, c, h, w, scale, scale).permute(0, 1, 2, 4, 3, 5).reshape(n, c, hh, ww)
    out = out.to(sr.dtype)
    return out[0] if one else out


def _solve_clamped_shift(b: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per row of ``b (m, k)``: ``clamp(b + t, 0, 1)`` with ``t`` such that the row's mean is ``target (m, 1)``.

    ``f(t) = sum(clamp(b + t, 0, 1))`` is non-decreasing and linear between the breakpoints ``-b_i``
    and ``1 - b_i``: evaluate it at every breakpoint (sorted pixels and prefix sums), find the
    segment that reaches ``k * target`` and interpolate on it. Exact, no iteration.
    """
    m, k = b.shape
    goal = target * k
    bs = b.sort(-1).values.contiguous()
    cs = torch.cat([b.new_zeros(m, 1), bs.cumsum(-1)], -1)

    def f(t: torch.Tensor) -> torch.Tensor:
        n_low = torch.searchsorted(bs, (-t).contiguous(), right=True)  # pixels at 0
        n_below_top = torch.searchsorted(bs, (1 - t).contiguous())  # pixels not at 1
        n_mid = n_below_top - n_low
        return (k - n_below_top) + cs.gather(-1, n_below_top) - cs.gather(-1, n_low) + t * n_mid

    bp = torch.cat([-bs, 1 - bs], -1).sort(-1).values.contiguous()
    fb = f(bp)
    j = torch.searchsorted(fb.contiguous(), goal.contiguous()).clamp(1, 2 * k - 1)
    t0, t1 = bp.gather(-1, j - 1), bp.gather(-1, j)
    f0, f1 = fb.gather(-1, j - 1), fb.gather(-1, j)
    t = torch.where(f1 > f0, t0 + (goal - f0) * (t1 - t0) / (f1 - f0).clamp_min(1e-300), t1)
    return (b + t).clamp(0, 1)


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
