"""How the app words a candidate's scores: consistency is how well the candidate agrees with the
evidence once degraded, never a quality, a likelihood or a match; and when a steered one is flagged."""

from __future__ import annotations

from core.workbench.candidates import Candidate

#: A steered candidate whose LR-PSNR is under this, or this much under its parent's, is flagged.
STEER_MIN_DB = 30.0
STEER_MAX_DROP_DB = 6.0
AGREEMENT_TIP = ("How closely the candidate, reduced to the evidence's size with the box filter (the mean of each "
                 "block: an ideal sensor, without the camera's blur, noise or compression), agrees with the "
                 "evidence (mean |LR - degrade(candidate)| out of 255, and LR-PSNR). Many different faces agree "
                 "equally well: it is not a quality, a likelihood or a match score.")


def agreement(c: Candidate) -> str:
    """One line: how well ``c`` agrees with the evidence."""
    return f"agrees with the evidence: {c.lr_psnr:.1f} dB (L1 {c.l1:.2f})"


def steer_flag(base: Candidate, derived: Candidate, min_db: float = STEER_MIN_DB) -> str:
    """A warning when the steered ``derived`` agrees with the evidence much less than ``base`` (or too
    little at all); "" when it is fine."""
    if derived.lr_psnr < min_db or derived.lr_psnr < base.lr_psnr - STEER_MAX_DROP_DB:
        return (f"\u26a0 The steered candidate no longer agrees with the evidence ({derived.lr_psnr:.1f} dB, "
                f"{base.id} {base.lr_psnr:.1f} dB): the sliders have pushed it away from what the camera saw. "
                "Move them back towards 0.")
    return ""
