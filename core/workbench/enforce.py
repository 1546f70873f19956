"""The optional "enforce consistency" step: the smallest change that makes a candidate agree with its input.

:func:`enforce_consistency` returns a new candidate (kind ``consistent``, its parent recorded) whose
:func:`core.model.degrade.degrade` equals the LR input up to 8-bit rounding, by the exact projection
:func:`core.model.degrade.project_consistent` (in the spirit of Explorable SR's consistency enforcing
module). The candidate is still synthetic: agreeing with the input says nothing about the truth.
"""

from __future__ import annotations

from core.model.degrade import project_consistent
from core.workbench.candidates import Candidate
from core.workbench.preprocess import consistency
from core.workbench.recipes import ConsistentRecipe

METHOD = "exact L2 projection onto {x in [0, 1]: box-degrade(x) = LR} (core.degrade.project_consistent)"


def enforce_consistency(cand: Candidate) -> Candidate:
    """The candidate changed as little as possible (L2) so that ``degrade(result) == cand.lr``."""
    scale = int(cand.recipe.get("scale") or cand.image.shape[-1] // cand.lr.shape[-1])
    image = project_consistent(cand.image.float(), cand.lr.float(), scale)
    l1, psnr = consistency(image[None], cand.lr, scale)
    change = (image - cand.image.float()).abs()
    recipe = ConsistentRecipe(
        cand.id or None, METHOD,
        parent_scores={"consistency_l1_0_255": round(cand.l1, 4), "lr_psnr_db": round(cand.lr_psnr, 3)},
        change_0_255={"max": round(float(change.max()) * 255, 3), "mean": round(float(change.mean()) * 255, 3)},
        extends=cand.recipe).to_json()
    return Candidate(image=image, lr=cand.lr, z=cand.z, recipe=recipe, l1=float(l1[0]), lr_psnr=float(psnr[0]))
