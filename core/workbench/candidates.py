"""Candidates and how they are made: sampling (eq. 4), slider steering, more-like-this, reference
transfer and plate rows. Pure functions the app runs in workers; each candidate carries its recipe.

Every candidate is a synthetic, plausible image: an investigative lead, never evidence.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from PIL import Image

from core.errors import GenerationCancelled, VarSRError
from core.images import pil_to_tensor, to_mode
from core.model.config import ModelConfig
from core.model.varsr import VarSR
from core.workbench.evidence import Point, faces_module
from core.workbench.preprocess import consistency
from core.workbench.recipes import (
    ModelRef,
    MoreLikeThisRecipe,
    Recipe,
    ReferenceRecipe,
    RowRecipe,
    SampleRecipe,
    SlidersRecipe,
    parse_recipe,
)

N_RANGE = (4, 256)
Progress = Callable[[int, int], None]
CancelCheck = Callable[[], bool]


@dataclass
class Candidate:
    """One synthetic candidate with what it takes to regenerate it (``recipe``, JSON-ready)."""

    image: torch.Tensor
    lr: torch.Tensor
    z: torch.Tensor | None
    recipe: dict[str, Any]
    l1: float
    lr_psnr: float
    id: str = ""
    parts: list[Candidate] = field(default_factory=list)
    #: The consistency operator ``l1`` and ``lr_psnr`` were computed under (:mod:`core.workbench.operators`).
    scored_under: str = "ideal"

    @property
    def kind(self) -> str:
        return str(self.recipe.get("kind", "sample"))

    @property
    def model_name(self) -> str:
        """The bundle the candidate was drawn with ("" when unrecorded)."""
        return str(self.recipe.get("model", ""))

    @property
    def slider_values(self) -> dict[str, float]:
        """Attribute slider values applied to it (empty for an unsteered candidate)."""
        return {str(k): float(v) for k, v in (self.recipe.get("sliders") or {}).items()}

    @property
    def parent_id(self) -> str | None:
        """The candidate it was derived from, if any."""
        p = self.recipe.get("parent")
        return str(p) if p else None

    @property
    def spec(self) -> Recipe:
        """The recipe, typed and checked (:func:`core.workbench.recipes.parse_recipe`)."""
        return parse_recipe(self.recipe)

    @property
    def scores(self) -> str:
        under = "" if self.scored_under == "ideal" else f" ({self.scored_under})"
        return f"L1 {self.l1:.2f} \u00b7 {self.lr_psnr:.1f} dB{under}"

    def recipe_json(self) -> dict[str, Any]:
        """The recipe with z and the consistency scores, for the manifest."""
        d = dict(self.recipe)
        d["id"] = self.id
        d["z"] = [round(float(v), 6) for v in self.z] if self.z is not None else None
        d["consistency_l1_0_255"] = round(self.l1, 4)
        d["lr_psnr_db"] = round(self.lr_psnr, 3)
        if self.scored_under != "ideal":  # the box filter's scores say nothing, as they always did
            d["scores_operator"] = self.scored_under
        return d


@dataclass
class CandidateSet:
    """Candidates generated together (one grid section)."""

    id: str
    title: str
    candidate_ids: list[str]


def _scored(model: VarSR, images: torch.Tensor, lr: torch.Tensor, zs: list[torch.Tensor | None],
            recipes: list[dict[str, Any]]) -> list[Candidate]:
    l1, psnr = consistency(images, lr, model.config.scale)
    images = images.detach().cpu()
    # each candidate owns its pixels: a view would keep the whole batch alive as long as any one
    # candidate of it is (a starred one, say) after the session has let the others go
    return [Candidate(image=images[i].clone(), lr=lr.cpu(), z=zs[i], recipe=recipes[i], l1=float(l1[i]),
                      lr_psnr=float(psnr[i])) for i in range(images.shape[0])]


def _generate_chunked(model: VarSR, lr: torch.Tensor, z: torch.Tensor | None, n: int, chunk: int,
                      progress: Progress | None, cancelled: CancelCheck | None) -> torch.Tensor:
    outs = []
    for start in range(0, n, chunk):
        if cancelled and cancelled():
            raise GenerationCancelled("generation cancelled")
        stop = min(n, start + chunk)
        x = lr[None].expand(stop - start, *lr.shape).contiguous()
        outs.append(model.generate(x, z[start:stop] if z is not None else None))
        if progress:
            progress(stop, n)
    return torch.cat(outs)


def generate_candidates(model: VarSR, lr: torch.Tensor, n: int = 16, seed: int = 0, temperature: float = 1.0,
                        *, source: dict[str, Any] | None = None, progress: Progress | None = None,
                        cancelled: CancelCheck | None = None, chunk: int = 16) -> list[Candidate]:
    """Eq. 4: ``n`` candidates ``G(I_L, z_i)``, ``z_i ~ N(mu, (temperature * sigma)^2)``; reproducible.

    A deterministic model (``latent_dim == 0``) gives one candidate.
    """
    if not N_RANGE[0] <= n <= N_RANGE[1]:
        raise VarSRError(f"the number of candidates must be {N_RANGE[0]} to {N_RANGE[1]}, not {n}")
    deterministic = model.config.latent_dim == 0
    if deterministic:
        n = 1
    z = None if deterministic else model.latents(lr[None], n, seed, temperature)[0].float()
    images = _generate_chunked(model, lr, z, n, chunk, progress, cancelled)
    ref = ModelRef.of(model)
    recipes = [SampleRecipe(ref, int(seed), i, float(temperature), int(n), int(chunk), source or {}).to_json()
               for i in range(n)]
    zs = [z[i] if z is not None else None for i in range(n)]
    return _scored(model, images, lr, zs, recipes)


def attribute_offset(model: VarSR, sliders: dict[str, float]) -> torch.Tensor:
    """``sum_k k * s * Z_att`` over the sliders (Fig. 4a: ``z_k = z + k s Z_att``)."""
    off = torch.zeros(model.config.latent_dim)
    for key, k in sliders.items():
        if key not in model.attributes:
            raise VarSRError(f"model '{model.config.name}' has no attribute direction '{key}'")
        off += float(k) * float(model.config.attribute_scale) * model.attributes[key].float().cpu()
    return off


def derive_with_sliders(model: VarSR, base: Candidate, sliders: dict[str, float]) -> Candidate:
    """``G(I_L, z + sum_k k s Z_att)`` for a candidate; the slider values go into the recipe."""
    if base.z is None or model.config.latent_dim == 0:
        raise VarSRError("this candidate has no latent code to steer")
    sliders = {k: float(v) for k, v in sliders.items() if v}
    z = (base.z.float() + attribute_offset(model, sliders))[None]
    img = model.generate(base.lr[None], z)
    recipe = SlidersRecipe(base.id or None, sliders, float(model.config.attribute_scale),
                           extends=base.recipe).to_json()
    return _scored(model, img, base.lr, [z[0]], [recipe])[0]


def more_like_this(model: VarSR, base: Candidate, n: int = 16, seed: int = 0, temperature: float = 0.3,
                   *, progress: Progress | None = None,
                   cancelled: CancelCheck | None = None) -> list[Candidate]:
    """``n`` candidates around ``base``'s z: ``z_i = z + temperature * sigma_L * eps_i``."""
    if base.z is None or model.config.latent_dim == 0:
        raise VarSRError("this candidate has no latent code to sample around")
    with torch.inference_mode():
        _, logvar = model.encode_lr(base.lr[None].float())
    std = torch.exp(0.5 * logvar.float())[0].cpu()
    g = torch.Generator().manual_seed(int(seed))
    eps = torch.randn(n, model.config.latent_dim, generator=g)
    z = base.z.float()[None] + float(temperature) * std[None] * eps
    images = _generate_chunked(model, base.lr, z, n, 16, progress, cancelled)
    recipes = [MoreLikeThisRecipe(base.id or None, int(seed), i, float(temperature), int(n), 16,
                                  extends=base.recipe).to_json() for i in range(n)]
    return _scored(model, images, base.lr, [z[i] for i in range(n)], recipes)


def align_reference(reference: Image.Image, cfg: ModelConfig,
                    eyes: tuple[Point, Point] | None = None) -> tuple[Image.Image, dict[str, Any]]:
    """The reference in the model's HR frame, and how it was put there (recorded in the recipe).

    Faces with ``eyes`` (image left, image right, e.g. MTCNN's landmarks): rotated, scaled and
    shifted so the eyes land where the face models were trained to expect them
    (:func:`core.model.faces.align_by_eyes`). Faces without: the centre square, resized (a poor fit
    unless the photo is already framed like the training faces). Other domains: resized.
    """
    ref = to_mode(reference, "L" if cfg.channels == 1 else "RGB")
    w, h = cfg.hr_size
    faces = faces_module()
    if cfg.domain == "face" and eyes is not None and faces is not None:
        left, right = sorted(((float(eyes[0][0]), float(eyes[0][1])), (float(eyes[1][0]), float(eyes[1][1]))))
        out = faces.align_by_eyes(ref, left, right, faces.FRAME)
        if out.size != (w, h):
            out = out.resize((w, h), Image.Resampling.LANCZOS)
        return out, {"method": "eyes", "eyes": [[float(v) for v in left], [float(v) for v in right]],  # exact: replayed
                     "reference_size": list(reference.size)}
    if ref.size == (w, h):
        return ref, {"method": "as given", "reference_size": list(reference.size)}
    if cfg.domain == "face":
        side = min(ref.width, ref.height * w / h)
        cw, ch = side, side * h / w
        x0, y0 = (ref.width - cw) / 2, (ref.height - ch) / 2
        out = ref.resize((w, h), Image.Resampling.LANCZOS, box=(x0, y0, x0 + cw, y0 + ch))
        return out, {"method": "centre", "reference_size": list(reference.size)}
    return ref.resize((w, h), Image.Resampling.LANCZOS), {"method": "resize",
                                                          "reference_size": list(reference.size)}


def reference_transfer(model: VarSR, lr: torch.Tensor, reference: Image.Image, reference_sha256: str,
                       *, source: dict[str, Any] | None = None,
                       eyes: tuple[Point, Point] | None = None) -> Candidate:
    """Fig. 4b: ``G(I_L, E_H(reference))``, the reference first put in the model's HR frame
    (:func:`align_reference`: by its eyes when given, else the centre)."""
    if model.config.latent_dim == 0:
        raise VarSRError("a deterministic model has no latent code for a reference")
    ref, how = align_reference(reference, model.config, eyes)
    with torch.inference_mode():
        mu, _ = model.encode_hr(pil_to_tensor(ref)[None])
    z = mu.float().cpu()
    img = model.generate(lr[None], z)
    recipe = ReferenceRecipe(ModelRef.of(model), reference_sha256, how, source or {}).to_json()
    return _scored(model, img, lr, [z[0]], [recipe])[0]


def generate_cells(model: VarSR, cell_lrs: list[torch.Tensor], n: int, seed: int, temperature: float,
                   *, source: dict[str, Any] | None = None, progress: Progress | None = None,
                   cancelled: CancelCheck | None = None) -> list[list[Candidate]]:
    """``n`` candidates per character cell; cell ``i`` uses seed ``seed + i``."""
    out = []
    total = len(cell_lrs)
    for i, lr in enumerate(cell_lrs):
        cell_source = {**(source or {}), "cell": i}
        out.append(generate_candidates(model, lr, n, seed + i, temperature, source=cell_source,
                                       cancelled=cancelled))
        if progress:
            progress(i + 1, total)
    return out


def assemble_row(model: VarSR, cells: list[list[Candidate]], choices: list[int]) -> Candidate:
    """One whole plate (or digit string): the chosen sample of each cell, side by side."""
    parts = [cells[i][c] for i, c in enumerate(choices)]
    image = torch.cat([p.image for p in parts], dim=2)
    lr = torch.cat([p.lr for p in parts], dim=2)
    recipe = RowRecipe(ModelRef.of(model), list(choices), [p.recipe_json() for p in parts],
                       {k: v for k, v in parts[0].recipe.get("source", {}).items() if k != "cell"}).to_json()
    c = _scored(model, image[None], lr, [None], [recipe])[0]
    c.parts = parts
    return c

