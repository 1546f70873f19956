"""Framing a tiny face: where the face model expects the eyes in the analyst's region, and how much the
candidates change when the eyes move by one pixel (a jitter ensemble). No Qt.

A face model was trained on one canonical frame (:mod:`core.model.faces`); on a 12 px face one pixel
of framing is a twelfth of the face, and the candidates can change identity with it. The sensitivity
is measured by drawing the same candidates (same seed, temperature and noise) from the region
shifted by +-1 px right, left, down and up, and comparing each with its unshifted twin once the shift
itself is undone (the face moves by a few output pixels: that is not a change of the face); the spread
between the unshifted candidates themselves gives the scale (a shift that changes the candidates as
much as drawing other candidates does matters).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from PIL import Image

from core.errors import GenerationCancelled
from core.model.faces import FRAME, LEFT_EYE, RIGHT_EYE
from core.model.varsr import VarSR
from core.workbench.candidates import CancelCheck, Progress
from core.workbench.evidence import Point, Region, crop_region
from core.workbench.preprocess import prepare_lr

#: The four one-pixel shifts of the jitter ensemble: name and (dx, dy).
SHIFTS: tuple[tuple[str, tuple[float, float]], ...] = (("right", (1.0, 0.0)), ("left", (-1.0, 0.0)),
                                                        ("down", (0.0, 1.0)), ("up", (0.0, -1.0)))


def expected_eyes(region: Region | None, image_size: tuple[int, int]) -> tuple[Point, Point] | None:
    """Where the face model expects the eye centres, in image pixels, for a box region (or the whole
    image): the crop is reduced to the model's square input, so the canonical eyes land at the same
    fractions of the box. None for eye and quad regions (eye clicks are drawn as they are)."""
    if region is None:
        x0, y0, x1, y1 = 0.0, 0.0, float(image_size[0]), float(image_size[1])
    elif region.kind == "box" and region.box:
        x0, y0, x1, y1 = (float(v) for v in region.box)
    else:
        return None
    w, h = x1 - x0, y1 - y0

    def at(p: Point) -> Point:
        return (x0 + p[0] / FRAME * w, y0 + p[1] / FRAME * h)

    return at(LEFT_EYE), at(RIGHT_EYE)


def shifted(region: Region | None, image_size: tuple[int, int], dx: float, dy: float) -> Region:
    """``region`` (None: the whole image) moved by (dx, dy) pixels: the eyes of an eye region, the box of a box
    region, the corners of a quad (so the model's eyes move by the same amount within its frame)."""
    return (region or Region.from_box(0, 0, *image_size)).moved(dx, dy)


@dataclass(frozen=True)
class ShiftedInput:
    """The model's input for the region moved by one pixel, and where that moves the face in the model's output:
    ``offset`` (x, y) in output pixels, so that ``shifted[u] ~ unshifted[u + offset]``."""

    name: str
    lr: torch.Tensor
    offset: tuple[float, float] = (0.0, 0.0)


def jitter_inputs(image: Image.Image, region: Region | None, model: VarSR) -> list[ShiftedInput]:
    """The model's input for each one-pixel shift of the region (shifts that leave the image are skipped)."""
    cw, ch = crop_region(image, region or Region.from_box(0, 0, *image.size)).size
    hw, hh = model.config.hr_size
    out = []
    for name, (dx, dy) in SHIFTS:
        try:
            crop = crop_region(image, shifted(region, image.size, dx, dy))
        except Exception:  # the shift leaves the image: that direction cannot be measured
            continue
        out.append(ShiftedInput(name, prepare_lr(crop, model.config)[0], (dx * hw / cw, dy * hh / ch)))
    return out


def _aligned(a: torch.Tensor, b: torch.Tensor, offset: tuple[float, float]) -> tuple[torch.Tensor, torch.Tensor]:
    """The overlapping parts of ``a`` and ``b`` with ``a[u]`` beside ``b[u + offset]`` (the shift itself undone,
    to the nearest output pixel), so that only what changed in the face is measured."""
    h, w = a.shape[-2:]

    def cut(s: int, n: int) -> tuple[slice, slice]:
        s = max(-(n // 2), min(n // 2, s))
        return (slice(0, n - s), slice(s, n)) if s >= 0 else (slice(-s, n), slice(0, n + s))

    ax, bx = cut(round(offset[0]), w)
    ay, by = cut(round(offset[1]), h)
    return a[..., ay, ax], b[..., by, bx]


@dataclass
class Sensitivity:
    """How much a one-pixel eye shift changes the candidates, beside how much candidates differ anyway."""

    n: int
    per_shift: dict[str, float] = field(default_factory=dict)  # mean |change| (0-255) per shift direction
    lpips_per_shift: dict[str, float] = field(default_factory=dict)
    between: float = 0.0  # mean |difference| (0-255) between two unshifted candidates
    lpips_between: float | None = None

    @property
    def change(self) -> float:
        return sum(self.per_shift.values()) / max(1, len(self.per_shift))

    @property
    def lpips(self) -> float | None:
        v = self.lpips_per_shift
        return sum(v.values()) / len(v) if v else None

    @property
    def ratio(self) -> float:
        """The shift's change relative to the difference between candidates (1: as much as another draw)."""
        return self.change / self.between if self.between > 0 else float("inf")

    def text(self) -> str:
        """Two short lines for the analyst's panel (:meth:`detail` says more)."""
        if not self.per_shift:
            return "Eye-shift test: no shifted region fits inside the image."
        lp = f", LPIPS {self.lpips:.3f}" if self.lpips is not None else ""
        verdict = "\u26a0 sensitive to framing" if self.sensitive else "stable"
        return (f"Eye-shift \u00b11 px: candidates change {self.change:.1f}/255{lp}, against {self.between:.1f}/255 "
                f"between candidates: {verdict}.")

    @property
    def sensitive(self) -> bool:
        """A one-pixel shift changes the candidates at least half as much as drawing others does."""
        return self.ratio >= 0.5

    def detail(self) -> str:
        """What the numbers mean (a tooltip)."""
        if not self.per_shift:
            return self.text()
        shifts = ", ".join(f"{k} {v:.1f}" for k, v in self.per_shift.items())
        lpb = f" (LPIPS {self.lpips_between:.3f})" if self.lpips_between is not None else ""
        return (f"{self.n} candidates were drawn again (same seed and temperature) with the region moved by one "
                f"pixel each way, and compared with their unshifted twins after undoing the shift itself: mean "
                f"change per direction (0-255) {shifts}. Two unshifted candidates differ by {self.between:.1f}"
                f"{lpb}. " + ("One pixel of framing changes the candidates about as much as drawing others: place "
                              "the eyes carefully (E) and compare the framings." if self.sensitive else
                              "One pixel of framing changes them much less than drawing others does."))

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "per_shift": dict(self.per_shift), "lpips_per_shift": dict(self.lpips_per_shift),
                "between": self.between, "lpips_between": self.lpips_between, "change": self.change,
                "ratio": self.ratio, "sensitive": self.sensitive}


def _pairs_between(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each candidate beside the next one (a ring), for the spread between candidates."""
    return x, torch.roll(x, 1, dims=0)


def eye_shift_sensitivity(model: VarSR, base_lr: torch.Tensor, shifted_inputs: list[ShiftedInput],
                          n: int = 8, seed: int = 0, temperature: float = 1.0, lpips: Any | None = None,
                          progress: Progress | None = None, cancelled: CancelCheck | None = None) -> Sensitivity:
    """Draw ``n`` candidates (same seed and temperature) from the unshifted and from each shifted input and
    compare each with its twin, the shift itself undone; ``lpips``: an :class:`core.nets.lpips.LPIPS` to add the
    perceptual change."""
    steps = len(shifted_inputs) + 1
    base = model.sample(base_lr, n, seed, temperature)
    out = Sensitivity(n=n)
    a, b = _pairs_between(base)
    out.between = float((a - b).abs().mean() * 255) if n > 1 else 0.0
    with torch.inference_mode():
        if lpips is not None and n > 1:
            out.lpips_between = float(lpips(a, b).mean())
        if progress:
            progress(1, steps)
        for i, sh in enumerate(shifted_inputs, start=2):
            if cancelled and cancelled():
                raise GenerationCancelled("cancelled")
            cand, twin = _aligned(model.sample(sh.lr, n, seed, temperature), base, sh.offset)
            out.per_shift[sh.name] = float((cand - twin).abs().mean() * 255)
            if lpips is not None:
                out.lpips_per_shift[sh.name] = float(lpips(cand.contiguous(), twin.contiguous()).mean())
            if progress:
                progress(i, steps)
    return out
