"""LPIPS perceptual distance (Zhang et al. 2018), AlexNet backbone with the v0.1 linear heads.

Same computation as the reference ``lpips.LPIPS(net="alex")``: inputs to [-1, 1], the fixed
scaling layer, the five ReLU outputs of AlexNet's ``features``, unit-normalised along channels,
squared differences weighted by the 1x1 linear heads, averaged over space and summed over layers.

Two project-specific choices:

* inputs are in [0, 1] (converted to [-1, 1] here) and grey images are repeated to 3 channels;
* images whose short side is under :data:`MIN_SIDE` (64) px are enlarged bilinearly so that the
  short side is 64 before the network (AlexNet's first layers would otherwise leave nothing of a
  24x24 digit or an 8x16 plate character). Distances for such images are therefore LPIPS *of the
  enlarged images*, comparable among themselves but not with published LPIPS at other sizes.

Weights load only from ``resources/lpips/alexnet_lpips_v0.1.safetensors`` (or a given path); this
module never downloads anything. See ``resources/lpips/README.md`` for their origin.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from core.errors import BundleError

DEFAULT_PATH = Path(__file__).resolve().parents[2] / "resources" / "lpips" / "alexnet_lpips_v0.1.safetensors"
#: Images are enlarged (bilinear) so that their short side is at least this many pixels.
MIN_SIDE = 64

_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)
# (in, out, kernel, stride, padding) of the five convs of torchvision's AlexNet.features.
_CONVS = {
    0: (3, 64, 11, 4, 2),
    3: (64, 192, 5, 1, 2),
    6: (192, 384, 3, 1, 1),
    8: (384, 256, 3, 1, 1),
    10: (256, 256, 3, 1, 1),
}


class LPIPS(nn.Module):
    """LPIPS distance between two batches of images in [0, 1]: ``forward(x, y) -> (N,)``."""

    shift: torch.Tensor  # buffers (register_buffer), typed for the checker
    scale: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        convs = {str(i): nn.Conv2d(ci, co, k, s, p) for i, (ci, co, k, s, p) in _CONVS.items()}
        self.features = nn.ModuleDict(convs)
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in (64, 192, 384, 256, 256))
        self.register_buffer("shift", torch.tensor(_SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(_SCALE).view(1, 3, 1, 1), persistent=False)

    # --- weights -------------------------------------------------------------------------------
    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False) -> Any:
        """Accept the file's names (``features.N.weight``, ``linI.weight``)."""
        renamed = {}
        for k, v in state_dict.items():
            if k.startswith("lin") and not k.startswith("lins."):
                k = f"lins.{k[3:]}"
            renamed[k] = v.float()
        return super().load_state_dict(renamed, strict=strict, assign=assign)

    @classmethod
    def from_resources(cls, path: str | Path | None = None) -> LPIPS:
        """Load the converted weights (default: the project's ``resources/lpips`` file), eval mode."""
        path = Path(path) if path is not None else DEFAULT_PATH
        if not path.is_file():
            raise BundleError(
                f"LPIPS weights not found at {path}; regenerate them with tools/convert_lpips.py "
                "(see resources/lpips/README.md)"
            )
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            state = load_file(str(path))
            model = cls()
            model.load_state_dict(state)
        except (SafetensorError, RuntimeError, KeyError) as e:
            raise BundleError(f"{path}: not a valid LPIPS weights file ({e})") from e
        model.eval().requires_grad_(False)
        return model

    # --- computation ---------------------------------------------------------------------------
    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """[0, 1] images (N, 1|3, H, W) -> 3-channel, at least MIN_SIDE px, scaled as LPIPS expects."""
        if x.dim() != 4 or x.shape[1] not in (1, 3):
            raise ValueError(f"expected (N, 1|3, H, W) images, got shape {tuple(x.shape)}")
        x = x.to(self.shift.dtype)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        h, w = x.shape[-2:]
        if min(h, w) < MIN_SIDE:
            f = MIN_SIDE / min(h, w)
            size = (math.ceil(h * f), math.ceil(w * f))
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        return ((x * 2 - 1) - self.shift) / self.scale

    def embed(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The five channel-unit-normalised AlexNet ReLU activations of images in [0, 1]."""
        h = self.prepare(x)
        feats = []
        for i, idx in enumerate(_CONVS):
            if i in (1, 2):
                h = F.max_pool2d(h, kernel_size=3, stride=2)
            h = F.relu(self.features[str(idx)](h))
            # eps inside the root: the reference's norm + 1e-10 has a NaN gradient where all channels are 0
            feats.append(h * torch.rsqrt(h.pow(2).sum(1, keepdim=True) + 1e-20))
        return feats

    def compare(self, fx: list[torch.Tensor], fy: list[torch.Tensor]) -> torch.Tensor:
        """LPIPS distance ``(N,)`` between two lists of :meth:`embed` outputs (same batch size)."""
        terms = [lin((a - b).pow(2)).mean((1, 2, 3)) for lin, a, b in zip(self.lins, fx, fy, strict=True)]
        total = terms[0]
        for t in terms[1:]:  # summed in order, as the reference does
            total = total + t
        return total

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Distance ``(N,)`` between ``x`` and ``y`` (N, C, H, W) in [0, 1]; same shapes required."""
        if x.shape != y.shape:
            raise ValueError(f"shape mismatch {tuple(x.shape)} vs {tuple(y.shape)}")
        n = x.shape[0]
        f = self.embed(torch.cat([x, y]))
        return self.compare([t[:n] for t in f], [t[n:] for t in f])


def load_lpips(path: str | Path | None = None) -> LPIPS:
    """The LPIPS network from local weights (never downloaded); raises BundleError if absent."""
    return LPIPS.from_resources(path)
