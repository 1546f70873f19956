"""VarSR: E_L, E_H and G in one module, with the small API the app and the CLIs use."""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path

import torch
from torch import nn

from core.model.config import ModelConfig
from core.model.degrade import degrade
from core.nets import GaussianEncoder, Generator

#: Models with smaller outputs run faster in plain fp32 than with bf16 + channels_last
#: (docs/PERFORMANCE.md). Decided per model, never per batch, so chunking cannot change results.
FAST_MIN_OUTPUT_PIXELS = 32 * 32


class VarSR(nn.Module):
    """The variational SR network of the paper (or, with ``latent_dim == 0``, its 'Det.' baseline).

    Images are float tensors in [0, 1], ``(N, C, H, W)``. Inference runs under
    :meth:`inference_context`, which picks bf16 autocast on CPUs that support it.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        config.validate()
        self.config = config
        c, d = config.channels, config.latent_dim
        self.generator = Generator(
            c, config.scale, d, config.width, config.n_res_blocks, config.up_widths, config.norm
        )
        self.enc_lr: GaussianEncoder | None = None  # a deterministic model (latent_dim 0) has no encoders
        self.enc_hr: GaussianEncoder | None = None
        if d:
            self.enc_lr = GaussianEncoder(c, config.lr_size, d, config.enc_width, config.logvar_bound)
            self.enc_hr = GaussianEncoder(c, config.hr_size, d, config.enc_width, config.logvar_bound)
        self.attributes: dict[str, torch.Tensor] = {}
        #: Set by :func:`core.model.bundle.load_model`: the bundle folder and the weights' recorded SHA-256.
        self.bundle_path: Path | None = None
        self.weights_sha256: str | None = None
        self.fast = True

    # -- the public API ---------------------------------------------------------------------
    def degrade(self, hr: torch.Tensor) -> torch.Tensor:
        """What this model sees of a high-resolution image."""
        return degrade(hr, self.config.scale)

    def encode_lr(self, lr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """E_L: (mu, logvar) of p(z | I_L); zeros of width 0 for a deterministic model."""
        if self.enc_lr is None:
            z = lr.new_zeros(lr.shape[0], 0)
            return z, z
        return self.enc_lr(lr)

    def encode_hr(self, hr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """E_H: (mu, logvar) of q(z | I_H)."""
        if self.enc_hr is None:
            z = hr.new_zeros(hr.shape[0], 0)
            return z, z
        return self.enc_hr(hr)

    def generate(self, lr: torch.Tensor, z: torch.Tensor | None) -> torch.Tensor:
        """G(I_L, z), clamped to [0, 1]; ``lr (N, C, h, w)``, ``z (N, D)``."""
        with self.inference_context():
            return self._run_generator(lr, z).float().clamp_(0, 1)

    def latents(self, lr: torch.Tensor, n: int, seed: int = 0, temperature: float = 1.0) -> torch.Tensor:
        """``n`` latents per input drawn from E_L, ``(B, n, D)``; reproducible from ``seed``.

        ``temperature`` scales sigma (0 gives the mean of p(z | I_L) every time).
        """
        b = lr.shape[0]
        d = self.config.latent_dim
        g = torch.Generator().manual_seed(int(seed))
        eps = torch.randn(b, n, d, generator=g)
        if d == 0:
            return eps
        with torch.inference_mode():
            mu, logvar = self.encode_lr(lr.float())
        std = torch.exp(0.5 * logvar.float()).cpu()
        z = mu.float().cpu()[:, None, :] + float(temperature) * std[:, None, :] * eps
        return z.to(lr.device)

    def sample(self, lr: torch.Tensor, n: int = 16, seed: int = 0, temperature: float = 1.0) -> torch.Tensor:
        """Eq. 4: ``n`` candidates per input. ``(C,h,w) -> (n,C,H,W)``; ``(B,C,h,w) -> (B,n,C,H,W)``."""
        one = lr.dim() == 3
        x = lr[None] if one else lr
        b = x.shape[0]
        z = self.latents(x, n, seed, temperature)
        x_rep = x[:, None].expand(b, n, *x.shape[1:]).reshape(b * n, *x.shape[1:])
        z_flat = z.reshape(b * n, -1) if self.config.latent_dim else None
        with self.inference_context():
            base = self.generator.upscale_input(x)  # once per input, not once per candidate
            base = base[:, None].expand(b, n, *base.shape[1:]).reshape(b * n, *base.shape[1:])
            out = self._run_generator(x_rep, z_flat, base).float().clamp_(0, 1)
        out = out.reshape(b, n, *self._out_shape(x))
        return out[0] if one else out

    # -- internals --------------------------------------------------------------------------
    def _out_shape(self, x: torch.Tensor) -> tuple[int, int, int]:
        s = self.config.scale
        return (x.shape[1], x.shape[2] * s, x.shape[3] * s)

    @property
    def uses_fast_path(self) -> bool:
        """bf16 autocast + channels_last on the CPU: on for large outputs on a bf16-capable CPU."""
        w, h = self.config.hr_size
        return self.fast and w * h >= FAST_MIN_OUTPUT_PIXELS

    def _run_generator(self, lr: torch.Tensor, z: torch.Tensor | None, base: torch.Tensor | None = None
                       ) -> torch.Tensor:
        if self.uses_fast_path and lr.device.type == "cpu":
            lr = lr.contiguous(memory_format=torch.channels_last)
        return self.generator(lr, z, base)

    def inference_context(self) -> contextlib.AbstractContextManager:
        """inference_mode plus, for large outputs on a CPU with native bf16, bf16 autocast (~2x faster)."""
        stack = contextlib.ExitStack()
        stack.enter_context(torch.inference_mode())
        on_cpu = next(self.parameters()).device.type == "cpu"
        if self.uses_fast_path and cpu_has_bf16() and on_cpu:
            stack.enter_context(torch.autocast("cpu", dtype=torch.bfloat16))
        return stack

    def forward(self, lr: torch.Tensor, hr: torch.Tensor) -> dict[str, torch.Tensor]:
        """Training pass (Fig. 2a): z ~ q(z | I_H) by reparameterisation, and both posteriors."""
        out: dict[str, torch.Tensor] = {}
        if self.enc_hr is not None and self.enc_lr is not None:  # latent_dim > 0
            mu_h, logvar_h = self.enc_hr(hr)
            mu_l, logvar_l = self.enc_lr(lr)
            z = mu_h + torch.exp(0.5 * logvar_h) * torch.randn_like(mu_h)
            out.update(mu_h=mu_h, logvar_h=logvar_h, mu_l=mu_l, logvar_l=logvar_l, z=z)
        else:
            z = None
        out["sr"] = self.generator(lr, z)
        return out


@functools.cache
def cpu_has_bf16() -> bool:
    """True when this CPU runs bf16 matrix kernels natively (AVX-512 BF16 or AMX)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return ("avx512_bf16" in flags) or ("amx_bf16" in flags)
