"""How the app words a candidate's scores: consistency is how well the candidate agrees with the
evidence once degraded, never a quality, a likelihood or a match; and when a steered one is flagged."""

from __future__ import annotations

from core.errors import VarSRError
from core.workbench.candidates import Candidate
from core.workbench.operators import label, operator

#: A steered candidate whose LR-PSNR is under this, or this much under its parent's, is flagged.
STEER_MIN_DB = 30.0
STEER_MAX_DROP_DB = 6.0
AGREEMENT_TIP = ("How closely the candidate, reduced to the evidence's size with the box filter (the mean of each "
                 "block: an ideal sensor, without the camera's blur, noise or compression), agrees with the "
                 "evidence (mean |LR - degrade(candidate)| out of 255, and LR-PSNR). Many different faces agree "
                 "equally well: it is not a quality, a likelihood or a match score.")


def under(name: str) -> str:
    """The operator a score is under, as the app names it ("box filter", "blur", ...)."""
    return label(name)


def agreement(c: Candidate) -> str:
    """One line: how well ``c`` agrees with the evidence, and under which degradation."""
    return f"agrees with the evidence under {under(c.scored_under)}: {c.lr_psnr:.1f} dB (L1 {c.l1:.2f})"


def agreement_tip(c: Candidate) -> str:
    """What the score means (a tooltip): :data:`AGREEMENT_TIP` for the box filter, else the blur it assumes."""
    if c.scored_under == "ideal":
        return AGREEMENT_TIP
    try:
        how = operator(c.scored_under).describe()
    except VarSRError:
        how = c.scored_under
    return (f"How closely the candidate, degraded as the camera is assumed to have degraded the evidence ({how}; "
            "noise and compression are not modelled), agrees with the evidence (mean |LR - D(candidate)| out of "
            "255, and LR-PSNR). Many different faces agree equally well: it is not a quality, a likelihood or a "
            "match score.")


def steer_flag(base: Candidate, derived: Candidate, min_db: float = STEER_MIN_DB) -> str:
    """A warning when the steered ``derived`` agrees with the evidence much less than ``base`` (or too
    little at all); "" when it is fine."""
    if derived.lr_psnr < min_db or derived.lr_psnr < base.lr_psnr - STEER_MAX_DROP_DB:
        return (f"\u26a0 The steered candidate no longer agrees with the evidence ({derived.lr_psnr:.1f} dB, "
                f"{base.id} {base.lr_psnr:.1f} dB): the sliders have pushed it away from what the camera saw. "
                "Move them back towards 0.")
    return ""


def enforce_shortfall(e: Candidate) -> str:
    """A note when an enforced candidate could not be made to agree exactly (no image in [0, 1] does: the
    evidence is sharper than the assumed blur allows); "" when it agrees to 8-bit rounding."""
    if e.l1 <= 0.5:
        return ""
    return (f"No image agrees exactly with the evidence under {under(e.scored_under)}: the evidence is sharper than "
            f"that blur allows, so the enforced candidate {e.id} comes only as close as {e.lr_psnr:.1f} dB. The "
            "box filter (an ideal sensor) or a smaller blur describes this evidence better.")
