"""Per-image distortion metrics on batches of [0, 1] images ``(N, C, H, W)``, each returning ``(N,)``.

Conventions (the evaluation tables rely on them):

* PSNR is ``10 log10(1 / MSE)`` on the [0, 1] scale (identical to the 0-255 scale with peak 255),
  computed per image over all channels, and capped at :data:`PSNR_CAP` dB so that a perfect match
  gives a finite number (JSON has no infinity).
* MSE is reported on the 0-255 scale, as in the paper's tables.
* SSIM is the scikit-image default (Wang et al. 2004 with a 7x7 uniform window, sample covariance,
  K1 = 0.01, K2 = 0.03, data range 1, the mean over the "valid" interior and over channels), i.e.
  ``skimage.metrics.structural_similarity(a, b, data_range=1, channel_axis=0)``. A 7x7 window still
  fits the 8x16 plate characters, where the 11x11 Gaussian variant would not.

Everything is computed in float64, on the float images (no quantisation to 8 bits).
"""

from __future__ import annotations

import torch

PSNR_CAP = 100.0
SSIM_WIN = 7
_K1, _K2 = 0.01, 0.03


def _check(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if a.shape != b.shape or a.dim() != 4:
        raise ValueError(
            f"expected two (N, C, H, W) batches of one shape, got {tuple(a.shape)}, {tuple(b.shape)}"
        )
    return a.double(), b.double()


def mse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean squared error per image on the [0, 1] scale."""
    a, b = _check(a, b)
    return (a - b).pow(2).flatten(1).mean(1)


def mse255(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean squared error per image on the 0-255 scale (the paper's "MSE")."""
    return mse(a, b) * 255.0**2


def l1_255(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference per image on the 0-255 scale (the paper's "consistency")."""
    a, b = _check(a, b)
    return (a - b).abs().flatten(1).mean(1) * 255.0


def psnr(a: torch.Tensor, b: torch.Tensor, cap: float = PSNR_CAP) -> torch.Tensor:
    """PSNR in dB per image for data range 1, capped at ``cap`` (so identical images give ``cap``)."""
    m = mse(a, b)
    return (10.0 * torch.log10(1.0 / m.clamp_min(1e-300))).clamp_max(cap)


def ssim(a: torch.Tensor, b: torch.Tensor, win: int = SSIM_WIN) -> torch.Tensor:
    """Mean SSIM per image (scikit-image defaults, see the module docstring)."""
    a, b = _check(a, b)
    n, c, h, w = a.shape
    if min(h, w) < win:
        raise ValueError(f"SSIM needs images of at least {win}x{win}, got {w}x{h}")
    x, y = a.reshape(n * c, h, w), b.reshape(n * c, h, w)
    # Uniform win x win means over the valid interior (== skimage's uniform filter, then its crop),
    # separable, of the five maps at once.
    maps = torch.stack([x, y, x * x, y * y, x * y])
    ux, uy, uxx, uyy, uxy = maps.unfold(-1, win, 1).mean(-1).unfold(-2, win, 1).mean(-1)
    cov_norm = win * win / (win * win - 1.0)
    vx = cov_norm * (uxx - ux * ux)
    vy = cov_norm * (uyy - uy * uy)
    vxy = cov_norm * (uxy - ux * uy)
    c1, c2 = _K1**2, _K2**2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return s.flatten(1).mean(1).reshape(n, c).mean(1)
