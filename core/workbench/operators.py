"""The consistency operator: how the camera is assumed to have degraded the evidence (issue 12, section 1).

Consistency scores (mean |LR - D(candidate)| and LR-PSNR) and *Enforce consistency* compare a
candidate, degraded by an operator ``D``, with the evidence. The session picks ``D``:

* ``ideal``, the **box filter** (an ideal sensor: the mean of each block, :func:`core.model.degrade.degrade`),
  the default and exactly what the app always used;
* a camera condition of :mod:`core.model.camera` (``blur``, ``camera``): its deterministic **nominal
  operator**, Gaussian optics of the condition's ``nominal_sigma`` LR pixels, then the box filter
  (:func:`core.model.camera.nominal_degrade`; enforcement by :func:`core.model.camera.project_nominal`).
  Noise and compression are not modelled by the score: they cannot be undone, only blurred over.

A candidate's scores say which operator they were computed under (``Candidate.scored_under``; the case
records ``scores_operator`` beside a candidate's scores when it is not the box filter, so old cases read
as the box filter). No Qt here.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from core.errors import VarSRError
from core.model.camera import condition, nominal_degrade, nominal_matrix, project_nominal
from core.model.degrade import project_consistent
from core.workbench.preprocess import consistency

if TYPE_CHECKING:
    from core.workbench.candidates import Candidate

#: The default: the box filter, the models' own training degradation.
DEFAULT = "ideal"
#: The operators the app offers, in the order it lists them.
CHOICES = ("ideal", "blur", "camera")


@dataclass(frozen=True)
class ConsistencyOperator:
    """A deterministic degradation ``D``: Gaussian optics of ``sigma`` LR px (0: none), then the box filter."""

    name: str
    sigma: float
    #: Short, for "agrees with the evidence under <label>".
    label: str

    @property
    def is_box(self) -> bool:
        return self.sigma <= 0

    def describe(self) -> str:
        """What ``D`` does, in one phrase."""
        if self.is_box:
            return "the box filter (the mean of each block: an ideal sensor, core.model.degrade.degrade)"
        return (f"a Gaussian blur of {self.sigma:g} LR px, then the box filter (the '{self.name}' condition's "
                "nominal operator, core.model.camera.nominal_degrade)")

    def degrade(self, hr: torch.Tensor, scale: int) -> torch.Tensor:
        """``D(hr)``: ``(C, H, W)`` or ``(N, C, H, W)`` to the LR grid."""
        return nominal_degrade(hr, scale, self.sigma)

    def score(self, images: torch.Tensor, lr: torch.Tensor, scale: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Per image of ``images (n, C, H, W)``: mean |LR - D(image)| (0-255) and LR-PSNR (dB, capped at 100)."""
        if self.is_box:  # exactly as candidates have always been scored
            return consistency(images, lr, scale)
        # D is separable: A_y x A_x^T with the exact matrices of nominal_degrade (BLAS, not a 29-tap conv)
        ay, ax = (_matrix(n, scale, self.sigma) for n in images.shape[-2:])
        d = ay @ images.float() @ ax.T - lr.float()[None]
        l1 = d.abs().mean(dim=(1, 2, 3)) * 255.0
        mse = (d**2).mean(dim=(1, 2, 3)).clamp_min(1e-10)
        return l1, (10 * torch.log10(1.0 / mse)).clamp(max=100.0)

    def project(self, sr: torch.Tensor, lr: torch.Tensor, scale: int) -> torch.Tensor:
        """The image nearest ``sr`` (in [0, 1]) that ``D`` maps onto ``lr`` (the box filter's exact projection,
        else :func:`core.model.camera.project_nominal`)."""
        if self.is_box:
            return project_consistent(sr, lr, scale)
        return project_nominal(sr, lr, scale, self.sigma)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "sigma_lr_px": self.sigma, "description": self.describe()}


@functools.lru_cache(maxsize=32)
def _matrix(n_hr: int, scale: int, sigma: float) -> torch.Tensor:
    """:func:`core.model.camera.nominal_matrix` in float32 (one per size, kept)."""
    return nominal_matrix(n_hr, scale, sigma).float()


_LABELS = {"ideal": "box filter", "blur": "blur", "camera": "camera"}


def operator(name: str | ConsistencyOperator | None) -> ConsistencyOperator:
    """The operator a name records (None: the box filter, as cases without one); :class:`VarSRError` if unknown."""
    if isinstance(name, ConsistencyOperator):
        return name
    name = name or DEFAULT
    try:
        sigma = float(condition(name).nominal_sigma)
    except ValueError:
        raise VarSRError(f"unknown consistency operator {name!r}; known: {', '.join(CHOICES)}") from None
    return ConsistencyOperator(name, sigma, _LABELS.get(name, name))


def label(name: str) -> str:
    """How a score's operator is named ("box filter", "blur"...); an unknown name as it is."""
    try:
        return operator(name).label
    except VarSRError:
        return name


def title(name: str) -> str:
    """How the app lists an operator (its choice box)."""
    op = operator(name)
    if op.is_box:
        return "Box filter (ideal sensor)"
    return f"{op.name.capitalize()}: Gaussian {op.sigma:g} LR px, then the box filter"


def scale_of(c: Candidate) -> int | None:
    """How many HR pixels one LR pixel of ``c`` covers (None when its image is not a whole multiple of its input)."""
    (h, w), (lh, lw) = c.image.shape[-2:], c.lr.shape[-2:]
    if lh < 1 or lw < 1 or h % lh or w % lw or h // lh != w // lw:
        return None
    return h // lh


Scored = list[tuple["Candidate", float, float]]
#: Candidates scored in one batch (bounded memory for a large session).
BATCH = 64


def scores_under(cands: Iterable[Candidate | None], name: str | ConsistencyOperator | None) -> Scored:
    """``(candidate, l1, lr_psnr)`` under the operator ``name`` for each candidate not yet scored under it,
    changing nothing; batched by input and size (a thousand 128x128 candidates take about 0.3 s on one core)."""
    op = operator(name)
    groups: dict[tuple, list[Candidate]] = {}
    seen: set[int] = set()
    for c in cands:
        if c is None or id(c) in seen or c.scored_under == op.name:
            continue
        seen.add(id(c))
        scale = scale_of(c)
        if scale is not None:  # one batch per input (a session holds many crops) and size
            lr = c.lr.detach().float().cpu().contiguous()
            key = (tuple(c.image.shape), scale, hashlib.sha256(lr.numpy().tobytes()).hexdigest())
            groups.setdefault(key, []).append(c)
    out: Scored = []
    for (_, scale, _), group in groups.items():
        for start in range(0, len(group), BATCH):
            part = group[start:start + BATCH]
            images = torch.stack([c.image.detach().float().cpu() for c in part])
            l1, psnr = op.score(images, part[0].lr.detach().float().cpu(), scale)
            out += [(c, float(a), float(b)) for c, a, b in zip(part, l1.tolist(), psnr.tolist(), strict=True)]
    return out


def rescore(cands: Iterable[Candidate | None], name: str | ConsistencyOperator | None) -> list[Candidate]:
    """Score every candidate not yet scored under the operator ``name`` again, under it (in place). Returns the
    candidates rescored; a candidate already under it is left exactly as it is."""
    op = operator(name)
    done: list[Candidate] = []
    for c, l1, psnr in scores_under(cands, op):
        c.l1, c.lr_psnr, c.scored_under = l1, psnr, op.name
        done.append(c)
    return done


def score_record(c: Candidate) -> dict[str, Any]:
    """A candidate's scores as the case records them (``scores_operator`` only when it is not the box filter)."""
    rec: dict[str, Any] = {"l1": c.l1, "lr_psnr": c.lr_psnr}
    if c.scored_under != DEFAULT:
        rec["scores_operator"] = c.scored_under
    return rec
