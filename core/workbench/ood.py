"""How unlike the model's training inputs a crop is, read from the encoder E_L (no Qt).

E_L maps an input to the (mu, logvar) of p(z | I_L). Over real, in-distribution inputs both vectors
keep to a typical range per latent dimension; a blank wall, noise or a crop framed far from the
face frame pushes them out of it. The reference (the per-dimension mean and spread of mu and logvar
over a few hundred held-out training-domain inputs, and the scores of a further held-out set) is
measured once per model by ``tools/measure_ood_reference.py`` and kept in the bundle as ``ood.json``,
tied to the weights' SHA-256: a reference measured for other weights is not used.

The score is a whitened distance of (mu, logvar) from the training inputs' mean, along their main
directions and outside them (about 1 for a typical input); its percentile among the held-out inputs
says how unusual a crop is. A uniform, face-coloured blob is close to the encoder's "average face" and
scores as typical, so the input's own contrast is compared with the held-out inputs' too (a flat crop
has none). It is a warning, not a verdict: a real face can be unusual (a profile, a hand in front),
and an in-range score does not make a crop a face (the face detector checks that).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from core.model.varsr import VarSR

#: The bundle file holding a model's reference.
OOD_FILE = "ood.json"
#: A crop scoring above this percentile of the held-out inputs is reported as unlike the training data.
WARN_PERCENTILE = 99.0


#: Principal components of E_L's (mu, logvar) kept in a reference.
COMPONENTS = 16
#: The spread of a component is floored at this (a direction E_L never moves would divide by 0).
MIN_STD = 1e-4


@dataclass
class OODReference:
    """Where E_L's (mu, logvar) of in-distribution inputs lie: their mean, principal directions with their
    spreads and the mean energy left outside them; the sorted scores and contrasts of held-out inputs."""

    mean: torch.Tensor  # (2D,)
    components: torch.Tensor  # (k, 2D), orthonormal rows
    spread: torch.Tensor  # (k,)
    residual: float  # mean squared distance outside the components
    held_out: list[float]
    contrast: list[float]  # the held-out inputs' brightness standard deviations, sorted
    weights_sha256: str | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        def r(v: torch.Tensor) -> list[Any]:
            return [round(float(x), 6) for x in v.flatten()]

        return {"version": 1, "weights_sha256": self.weights_sha256, "info": self.info,
                "mean": r(self.mean), "components": [r(c) for c in self.components], "spread": r(self.spread),
                "residual": self.residual, "held_out": [round(float(s), 5) for s in self.held_out],
                "contrast": [round(float(c), 5) for c in self.contrast]}

    @staticmethod
    def from_json(d: dict[str, Any]) -> OODReference:
        def t(v: Any) -> torch.Tensor:
            return torch.tensor(v, dtype=torch.float32)

        ref = OODReference(t(d["mean"]), t(d["components"]), t(d["spread"]), float(d["residual"]),
                           sorted(float(s) for s in d["held_out"]), sorted(float(c) for c in d["contrast"]),
                           d.get("weights_sha256"), dict(d.get("info", {})))
        k, n = ref.components.shape if ref.components.dim() == 2 else (0, 0)
        if not k or n != ref.mean.numel() or ref.spread.numel() != k or not ref.held_out or not ref.contrast:
            raise ValueError("an OOD reference of inconsistent shapes or without held-out scores")
        return ref

    @property
    def latent_dim(self) -> int:
        return self.mean.numel() // 2

    def scores(self, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """Per input: the root of the mean squared whitened distance along the components plus the energy
        outside them relative to the in-distribution mean (about 1 for typical inputs)."""
        x = torch.cat([mu, logvar], 1).float() - self.mean
        proj = x @ self.components.T
        inside = (proj / self.spread).pow(2).mean(1)
        outside = (x - proj @ self.components).pow(2).sum(1) / max(self.residual, 1e-12)
        return torch.sqrt((inside + outside) / 2)


@dataclass(frozen=True)
class OODScore:
    """A crop's encoder score and contrast, and their percentiles among held-out training-domain inputs."""

    score: float
    percentile: float  # of the score: higher than this share of the held-out inputs
    typical: float  # the held-out inputs' median score
    contrast: float  # the input's brightness standard deviation (0-255)
    contrast_percentile: float

    @property
    def unusual(self) -> bool:
        return self.percentile >= WARN_PERCENTILE or self.contrast_percentile <= 100 - WARN_PERCENTILE

    @property
    def unlikeness(self) -> float:
        """One number to rank crops by (0-100): the more extreme of the two percentiles."""
        return max(self.percentile, 100 - self.contrast_percentile)

    def text(self) -> str:
        """One or two short lines for the analyst's panel (:meth:`detail` says more)."""
        if self.contrast_percentile <= 100 - WARN_PERCENTILE:
            return (f"\u26a0 Flatter than any training input (contrast {self.contrast:.1f}): the candidates come "
                    "from the model's prior, not from this crop.")
        if self.unusual:
            return (f"\u26a0 Unlike the training inputs (encoder score {self.score:.2f}, typical {self.typical:.2f}): "
                    "check the region, its framing and the domain.")
        return f"Encoder check: like the training inputs (score {self.score:.2f}, typical {self.typical:.2f})."

    def detail(self) -> str:
        """What the numbers mean (a tooltip)."""
        return (f"The model's encoder E_L read this crop as the model sees it. Score {self.score:.2f}: higher than "
                f"{self.percentile:.1f} % of held-out training-domain inputs (their median is {self.typical:.2f}). "
                f"Contrast {self.contrast:.1f}/255: lower than {100 - self.contrast_percentile:.1f} % of them. A crop "
                f"is flagged above the {WARN_PERCENTILE:g}th percentile of the score or below the "
                f"{100 - WARN_PERCENTILE:g}st of the contrast. It is a warning, not a verdict: a real face can be "
                "unusual, and a typical score does not make a crop a face.")


def encoder_stats(model: VarSR, lrs: torch.Tensor, batch: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """E_L's (mu, logvar) of ``lrs (N, C, h, w)`` in [0, 1], as float32 ``(N, D)`` each."""
    mus, lvs = [], []
    with torch.inference_mode():
        for i in range(0, lrs.shape[0], batch):
            mu, lv = model.encode_lr(lrs[i:i + batch].float())
            mus.append(mu.float().cpu())
            lvs.append(lv.float().cpu())
    return torch.cat(mus), torch.cat(lvs)


def contrast(lrs: torch.Tensor) -> torch.Tensor:
    """Standard deviation of each input's brightness ``(N, C, h, w)`` on the 0-255 scale (a uniform colour has
    none, whatever its hue)."""
    return lrs.float().mean(1).flatten(1).std(1) * 255.0


def measure_reference(model: VarSR, fit_lrs: torch.Tensor, held_out_lrs: torch.Tensor,
                      info: dict[str, Any] | None = None, k: int = COMPONENTS) -> OODReference:
    """The reference of ``model`` from in-distribution inputs: the statistics from ``fit_lrs``, the score
    distribution from ``held_out_lrs`` (other images, so that the percentiles are honest)."""
    mu, lv = encoder_stats(model, fit_lrs)
    x = torch.cat([mu, lv], 1)
    mean = x.mean(0)
    xc = x - mean
    _u, s, v = torch.linalg.svd(xc, full_matrices=False)
    k = min(k, v.shape[0])
    comps = v[:k]
    spread = (s[:k] / max(1, x.shape[0] - 1) ** 0.5).clamp_min(MIN_STD)
    residual = float((xc - (xc @ comps.T) @ comps).pow(2).sum(1).mean())
    ref = OODReference(mean, comps, spread, residual, [], [], model.weights_sha256, dict(info or {}))
    hmu, hlv = encoder_stats(model, held_out_lrs)
    ref.held_out = sorted(ref.scores(hmu, hlv).tolist())
    ref.contrast = sorted(contrast(held_out_lrs).tolist())
    ref.info.update(n_fit=int(fit_lrs.shape[0]), n_held_out=int(held_out_lrs.shape[0]), components=k)
    return ref


def load_reference(model: VarSR) -> OODReference | None:
    """The model's reference from its bundle (None when absent, unreadable, or measured for other weights)."""
    if model.bundle_path is None:
        return None
    path = Path(model.bundle_path) / OOD_FILE
    try:
        ref = OODReference.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if ref.weights_sha256 and model.weights_sha256 and ref.weights_sha256 != model.weights_sha256:
        return None
    if ref.latent_dim != model.config.latent_dim:
        return None
    return ref


def save_reference(ref: OODReference, bundle: str | Path) -> Path:
    path = Path(bundle) / OOD_FILE
    path.write_text(json.dumps(ref.to_json()), encoding="utf-8")
    return path


def _percentile(sorted_values: list[float], v: float) -> float:
    return 100.0 * sum(1 for h in sorted_values if h < v) / len(sorted_values)


def score_lr(model: VarSR, ref: OODReference, lr: torch.Tensor) -> OODScore:
    """The score of one input ``lr (C, h, w)`` exactly as the model sees it."""
    mu, lv = encoder_stats(model, lr[None])
    s = float(ref.scores(mu, lv)[0])
    if not math.isfinite(s):
        s = float("inf")
    c = float(contrast(lr[None])[0])
    return OODScore(s, _percentile(ref.held_out, s), ref.held_out[len(ref.held_out) // 2], c,
                    _percentile(ref.contrast, c))
