"""Attribute directions in the latent space (the paper's Fig. 4a): z_k = z + k * s * Z_att.

Two kinds per attribute, both from E_H^mu over the *training* HR images:

* ``mean/<Att>``: the paper's Z_att, the mean of E_H^mu over images that have the attribute;
* ``diff/<Att>``: mean(with) - mean(without), which removes what all faces share.

The scale ``s`` (``ModelConfig.attribute_scale``) is calibrated so that k = 2 along an average
``diff`` direction moves z by one typical per-image spread of E_H^mu (see :func:`calibrate_scale`).
"""

from __future__ import annotations

import torch

from core.data.imageset import ImageSet
from core.model.varsr import VarSR

DEFAULT_ATTRIBUTES = ("Male", "Smiling", "Eyeglasses", "Young", "Blond_Hair", "Black_Hair", "No_Beard",
                      "Wearing_Hat", "Heavy_Makeup", "Bald")
MIN_IMAGES = 20


@torch.inference_mode()
def encode_all(model: VarSR, data: ImageSet, batch: int = 256) -> torch.Tensor:
    """E_H^mu of every image, ``(N, D)``, in fp32."""
    mus = []
    for i in range(0, len(data), batch):
        mu, _ = model.encode_hr(data.float_images(slice(i, i + batch)))
        mus.append(mu.float())
    return torch.cat(mus)


def directions(mu: torch.Tensor, data: ImageSet, names: tuple[str, ...] = DEFAULT_ATTRIBUTES
               ) -> tuple[dict[str, torch.Tensor], dict[str, dict[str, int]]]:
    """``mean/`` and ``diff/`` vectors for every attribute with at least MIN_IMAGES on each side.

    Returns the vectors and, per attribute, how many images had / lacked it (unknown = 0 ignored).
    """
    if data.attrs is None:
        return {}, {}
    out: dict[str, torch.Tensor] = {}
    counts: dict[str, dict[str, int]] = {}
    for name in names:
        if name not in data.attr_names:
            continue
        col = data.attrs[:, data.attr_names.index(name)]
        has, lacks = col == 1, col == -1
        counts[name] = {"with": int(has.sum()), "without": int(lacks.sum())}
        if has.sum() < MIN_IMAGES or lacks.sum() < MIN_IMAGES:
            continue
        out[f"mean/{name}"] = mu[has].mean(0)
        out[f"diff/{name}"] = mu[has].mean(0) - mu[lacks].mean(0)
    return out, counts


def calibrate_scale(mu: torch.Tensor, dirs: dict[str, torch.Tensor]) -> float:
    """s such that k = 2 along the average ``diff`` direction moves z by the median spread of E_H^mu."""
    diffs = [v.norm() for k, v in dirs.items() if k.startswith("diff/")]
    if not diffs:
        return 1.0
    spread = (mu - mu.mean(0)).norm(dim=1).median()
    return float(spread / (2 * torch.stack(diffs).mean()))
