"""Measure what an attribute slider does: ``z_k = z + k * s * Z_att`` judged by a face attribute classifier.

For each direction (``mean/<Att>``, the paper's Z_att, and ``diff/<Att>``) and held-out LR inputs,
one latent z per input is drawn from E_L and the candidates at k = 0, +k and -k are generated.
The classifier (:mod:`core.nets.attribute_classifier`, trained on HR training faces) then says

* how often +k raises P(attribute) over k = 0, and how often -k lowers it (``up_rate`` / ``down_rate``);
* the mean change of P(attribute) each way;
* the largest side effect: the other attribute whose mean |change of P| over +-k is largest, and
  the largest such change among skin-tone outputs (``Pale_Skin``, ``Race_*``);
* with an embedder, identity drift: the mean embedding distance between the k = 0 and +-k
  candidates, beside the distance between two independent samples of the same input (for scale).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from core.model.varsr import VarSR
from core.nets.attribute_classifier import FaceAttributeClassifier

SKIN_TONE = ("Pale_Skin", "Race_White", "Race_Black", "Race_Asian", "Race_Indian", "Race_Others")
Embed = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class EditScore:
    """The effect of one direction at +-k over a set of inputs."""

    direction: str
    attribute: str
    n: int
    up_rate: float
    down_rate: float
    delta_up: float
    delta_down: float
    side_attribute: str
    side_delta: float
    skin_attribute: str
    skin_delta: float
    identity_drift: float | None = None

    @property
    def success(self) -> float:
        """Mean of up_rate and down_rate: 1.0 is an edit that always moves the intended way."""
        return (self.up_rate + self.down_rate) / 2


def _generate(model: VarSR, lr: torch.Tensor, z: torch.Tensor, batch: int = 128) -> torch.Tensor:
    return torch.cat([model.generate(lr[i : i + batch], z[i : i + batch]) for i in range(0, len(lr), batch)])


def _embed(embed: Embed, x: torch.Tensor, batch: int = 128) -> torch.Tensor:
    return torch.cat([embed(x[i : i + batch]).float() for i in range(0, len(x), batch)])


@torch.inference_mode()
def measure_edits(model: VarSR, clf: FaceAttributeClassifier, lr: torch.Tensor, directions: list[str],
                  k: float = 2.0, seed: int = 0, embed: Embed | None = None,
                  log: Callable[[str], Any] | None = None) -> tuple[list[EditScore], dict[str, float]]:
    """Score each of ``directions`` (keys of ``model.attributes``) on LR inputs ``lr (N, C, h, w)``.

    Returns the scores and a context dict (``sample_identity_distance``: the mean embedding
    distance between two independent k = 0 samples of the same input, when ``embed`` is given).
    """
    names = clf.attr_names
    s = float(model.config.attribute_scale)
    z0 = model.latents(lr, 2, seed)
    base = _generate(model, lr, z0[:, 0])
    p0 = clf.probs(base)
    context: dict[str, float] = {"k": float(k), "attribute_scale": s, "n_inputs": float(len(lr))}
    e0 = None
    if embed is not None:
        e0 = _embed(embed, base)
        other = _embed(embed, _generate(model, lr, z0[:, 1]))
        context["sample_identity_distance"] = float((e0 - other).norm(dim=1).mean())
    scores = []
    for key in directions:
        att = key.split("/", 1)[1]
        if att not in names:
            continue
        j = names.index(att)
        off = k * s * model.attributes[key].float().to(z0.device)
        up, down = _generate(model, lr, z0[:, 0] + off), _generate(model, lr, z0[:, 0] - off)
        pu, pd = clf.probs(up), clf.probs(down)
        side = ((pu - p0).abs().mean(0) + (pd - p0).abs().mean(0)) / 2
        side[j] = -1.0
        js = int(side.argmax())
        skin = [names.index(n) for n in SKIN_TONE if n in names and n != att]
        jk = max(skin, key=lambda c: float(side[c])) if skin else js
        drift = None
        if embed is not None and e0 is not None:
            du = (_embed(embed, up) - e0).norm(dim=1).mean()
            dd = (_embed(embed, down) - e0).norm(dim=1).mean()
            drift = float((du + dd) / 2)
        sc = EditScore(direction=key, attribute=att, n=len(lr),
                       up_rate=float((pu[:, j] > p0[:, j]).float().mean()),
                       down_rate=float((pd[:, j] < p0[:, j]).float().mean()),
                       delta_up=float((pu[:, j] - p0[:, j]).mean()), delta_down=float((pd[:, j] - p0[:, j]).mean()),
                       side_attribute=names[js], side_delta=float(side[js]),
                       skin_attribute=names[jk], skin_delta=float(side[jk]), identity_drift=drift)
        scores.append(sc)
        if log:
            log(f"{key}: up {sc.up_rate:.2f} down {sc.down_rate:.2f} side {sc.side_attribute} {sc.side_delta:.3f}")
    return scores, context


def better_kind(scores: list[EditScore]) -> dict[str, str]:
    """Per attribute, the direction kind (``mean`` or ``diff``) with the higher success rate."""
    best: dict[str, EditScore] = {}
    for sc in scores:
        cur = best.get(sc.attribute)
        if cur is None or sc.success > cur.success:
            best[sc.attribute] = sc
    return {att: sc.direction.split("/", 1)[0] for att, sc in sorted(best.items())}


def to_json(scores: list[EditScore], context: dict[str, float], **extra: Any) -> dict[str, Any]:
    """A JSON-ready report (``edits.json`` in a face bundle)."""
    return {**extra, "context": context, "better_kind": better_kind(scores),
            "scores": [{**asdict(sc), "success": sc.success} for sc in scores]}


def to_markdown(report: dict[str, Any]) -> str:
    """The card's table: one row per direction."""
    ctx = report["context"]
    rows = ["| direction | +k raises P | -k lowers P | mean dP (+k / -k) | largest side effect | "
            "skin tone side effect | identity drift |", "|---|---|---|---|---|---|---|"]
    for sc in report["scores"]:
        drift = "-" if sc.get("identity_drift") is None else f"{sc['identity_drift']:.3f}"
        rows.append(f"| `{sc['direction']}` | {sc['up_rate']:.0%} | {sc['down_rate']:.0%} | "
                    f"{sc['delta_up']:+.3f} / {sc['delta_down']:+.3f} | {sc['side_attribute']} "
                    f"{sc['side_delta']:.3f} | {sc['skin_attribute']} {sc['skin_delta']:.3f} | {drift} |")
    kinds = ", ".join(f"{a}: {k}" for a, k in report["better_kind"].items())
    note = (f"k = +-{ctx['k']:g}, s = {ctx['attribute_scale']:.3f}, {int(ctx['n_inputs'])} held-out inputs, one "
            f"latent each. Side effects are mean |change of P| of the other classifier outputs.")
    if "sample_identity_distance" in ctx:
        note += (f" Identity drift is the mean {report.get('embedder', 'embedding')} distance between the k = 0 "
                 f"and +-k candidates; two independent samples of one input are "
                 f"{ctx['sample_identity_distance']:.3f} apart.")
    return "\n".join(rows) + f"\n\n{note}\n\nBetter kind per attribute (higher success rate): {kinds}.\n"


def load_report(bundle: str | Path | None) -> dict[str, Any] | None:
    """A bundle's ``edits.json`` (written by tools/measure_attribute_edits.py), or None if absent/unreadable."""
    if bundle is None:
        return None
    path = Path(bundle) / "edits.json"
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return report if isinstance(report, dict) and isinstance(report.get("scores"), list) else None


def slider_notes(report: dict[str, Any] | None) -> dict[str, str]:
    """Per direction key, one line an analyst can read: how reliably it edits and what else it moves."""
    notes: dict[str, str] = {}
    if not report:
        return notes
    for sc in report["scores"]:
        try:
            text = (f"measured at k = +-{report['context']['k']:g} on held-out faces: +k raises "
                    f"{sc['attribute'].replace('_', ' ')} in {sc['up_rate']:.0%}, -k lowers it in "
                    f"{sc['down_rate']:.0%}; largest side effect {sc['side_attribute'].replace('_', ' ')} "
                    f"(mean |dP| {sc['side_delta']:.2f})")
            if sc.get("identity_drift") is not None:
                text += f"; identity drift {sc['identity_drift']:.2f}"
        except (KeyError, TypeError, ValueError):
            continue
        notes[str(sc.get("direction"))] = text
    return notes


def slider_order(keys: list[str], report: dict[str, Any] | None) -> list[str]:
    """Directions sorted by attribute, the measured better kind of each attribute first."""
    better = (report or {}).get("better_kind", {})

    def rank(key: str) -> tuple[str, int, str]:
        kind, _, att = key.partition("/")
        return (att, 0 if better.get(att, "diff") == kind else 1, kind)

    return sorted(keys, key=rank)
