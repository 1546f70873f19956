"""Measure each face model's out-of-distribution reference (``ood.json`` in its bundle) from held-out faces.

Usage: ``python tools/measure_ood_reference.py [--data ../shared/data] [--models face-8 face-16 ...]``

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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    ap.add_argument("--models", nargs="*", default=None, help="default: every installed face model with a latent")
    ap.add_argument("--per-set", type=int, default=400, help="faces taken from each data set")
    args = ap.parse_args()
    torch.manual_seed(0)
    data = Path(args.data)
    hr = torch.cat([load_utkface(data / "utkface", split="test", size=64, limit=args.per_set).float_images(),
                    load_celeba(data / "celeba", split="test", size=64, limit=args.per_set).float_images()])
    hr = hr[torch.randperm(hr.shape[0], generator=torch.Generator().manual_seed(0))]
    root = models_dir()
    names = args.models or sorted(p.name for p in root.iterdir() if (p / "config.json").is_file())
    for name in names:
        model = load_model(root / name)
        if model.config.domain != "face" or not model.config.latent_dim:
            continue
        model.eval()
        lr = degrade(hr, model.config.scale)
        n = lr.shape[0] // 2
        ref = measure_reference(model, lr[:n], lr[n:], {"data": "utkface:test+celeba:test", "reduction": "box"})
        path = save_reference(ref, root / name)
        h = ref.held_out
        print(f"{name}: {path} (held-out median {h[len(h) // 2]:.2f}, 99th percentile {h[int(0.99 * len(h))]:.2f})")


if __name__ == "__main__":
    main()
