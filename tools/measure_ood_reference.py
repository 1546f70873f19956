"""Measure each face model's out-of-distribution reference (``ood.json`` in its bundle) from held-out faces.

Usage: ``python tools/measure_ood_reference.py [--data ../shared/data] [--models face-8 face-16 ...]``
(``tools/ship_bundle.py`` runs it for each face bundle it installs.)

Held-out (test split) UTKFace and CelebA faces in the canonical frame are reduced to each model's input
with the box filter (the app's own reduction of a crop); half fit the reference (:mod:`core.workbench.ood`),
the other half give the score percentiles. The file is tied to the weights' SHA-256.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from core.data.celeba import load_celeba
from core.data.utkface import load_utkface
from core.model.bundle import load_model, models_dir
from core.model.degrade import degrade
from core.workbench.ood import measure_reference, save_reference


def held_out_faces(data: Path, per_set: int = 400) -> torch.Tensor:
    """Held-out (test split) UTKFace and CelebA faces in the face frame, 64x64 in [0, 1], shuffled (seed 0)."""
    hr = torch.cat([load_utkface(data / "utkface", split="test", size=64, limit=per_set).float_images(),
                    load_celeba(data / "celeba", split="test", size=64, limit=per_set).float_images()])
    return hr[torch.randperm(hr.shape[0], generator=torch.Generator().manual_seed(0))]


def measure_bundle(folder: Path, hr: torch.Tensor) -> Path | None:
    """Write ``ood.json`` into a face bundle (None for other models): half of ``hr`` fits, half scores."""
    model = load_model(folder)
    if model.config.domain != "face" or not model.config.latent_dim:
        return None
    model.eval()
    hw, hh = model.config.hr_size
    if tuple(hr.shape[-2:]) != (hh, hw):  # e.g. face-12's 48x48 frame: the same faces, resized
        hr = torch.nn.functional.interpolate(hr, size=(hh, hw), mode="bilinear", antialias=True, align_corners=False)
    lr = degrade(hr, model.config.scale)
    n = lr.shape[0] // 2
    ref = measure_reference(model, lr[:n], lr[n:], {"data": "utkface:test+celeba:test", "reduction": "box"})
    return save_reference(ref, folder)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    ap.add_argument("--models", nargs="*", default=None, help="default: every installed face model with a latent")
    ap.add_argument("--per-set", type=int, default=400, help="faces taken from each data set")
    args = ap.parse_args()
    hr = held_out_faces(Path(args.data), args.per_set)
    root = models_dir()
    names = args.models or sorted(p.name for p in root.iterdir() if (p / "config.json").is_file())
    for name in names:
        path = measure_bundle(root / name, hr)
        if path is not None:
            print(f"{name}: wrote {path}")


if __name__ == "__main__":
    main()
