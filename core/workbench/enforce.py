"""The optional "enforce consistency" step: the smallest change that makes a candidate agree with its input.

:func:`enforce_consistency` returns a new candidate (kind ``consistent``, its parent recorded) that the
chosen consistency operator (:mod:`core.workbench.operators`) maps onto the LR input up to 8-bit
rounding. Under the box filter (the default) that is the exact projection
:func:`core.model.degrade.project_consistent` (in the spirit of Explorable SR's consistency enforcing
module); under a camera condition's nominal operator (Gaussian optics, then the box filter) it is
:func:`core.model.camera.project_nominal`. The recipe records the operator (not written for the box
filter, as before), so the candidate replays bit-identically. The candidate is still synthetic:
agreeing with the input says nothing about the truth.
"""

from __future__ import annotations

from core.workbench.candidates import Candidate
from core.workbench.operators import ConsistencyOperator, operator
from core.workbench.recipes import ConsistentRecipe

METHOD = "exact L2 projection onto {x in [0, 1]: box-degrade(x) = LR} (core.degrade.project_consistent)"


def method(op: ConsistencyOperator) -> str:
    """How the candidate was changed, for the recipe and the report."""
    if op.is_box:
        return METHOD
    return (f"L2 projection onto {{x in [0, 1]: nominal-degrade(x) = LR}} under '{op.name}' (Gaussian {op.sigma:g} "
            "LR px, then the box filter): exact affine projection alternated with clamping to [0, 1] "
            "(core.model.camera.project_nominal)")


def enforce_consistency(cand: Candidate, under: str | ConsistencyOperator | None = None) -> Candidate:
    """The candidate changed as little as possible (L2) so that ``D(result) == cand.lr``, ``D`` the operator
    ``under`` names (None: the box filter)."""
    op = operator(under)
    scale = int(cand.recipe.get("scale") or cand.image.shape[-1] // cand.lr.shape[-1])
    image = op.project(cand.image.float(), cand.lr.float(), scale)
    l1, psnr = op.score(image[None], cand.lr, scale)
    if cand.scored_under == op.name:
        p_l1, p_psnr = cand.l1, cand.lr_psnr
    else:  # the parent's scores under the same operator, for a fair before and after
        a, b = op.score(cand.image.float()[None], cand.lr, scale)
        p_l1, p_psnr = float(a[0]), float(b[0])
    change = (image - cand.image.float()).abs()
    recipe = ConsistentRecipe(
        cand.id or None, method(op),
        parent_scores={"consistency_l1_0_255": round(p_l1, 4), "lr_psnr_db": round(p_psnr, 3)},
        change_0_255={"max": round(float(change.max()) * 255, 3), "mean": round(float(change.mean()) * 255, 3)},
        operator=None if op.is_box else op.name, extends=cand.recipe).to_json()
    return Candidate(image=image, lr=cand.lr, z=cand.z, recipe=recipe, l1=float(l1[0]), lr_psnr=float(psnr[0]),
                     scored_under=op.name)
