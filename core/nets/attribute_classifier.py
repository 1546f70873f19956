"""A small multi-label CNN that reads face attributes from 64x64 HR faces, to measure slider edits.

Trained by :func:`train_attribute_classifier` on the *training* split only (CelebA's 40 labels,
UTKFace's Male / Young / Race_*; a label of 0 means "unknown" and is left out of the loss), with
per-attribute held-out balanced accuracy recorded in its sidecar JSON. Saved as
``resources/classifiers/face-attributes.safetensors`` (float16) + ``.json``; never pickled.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from core.data.imageset import ImageSet
from core.nets.classifier import CLASSIFIERS_DIR
from core.nets.sidecar import load_with_sidecar, save_with_sidecar

DEFAULT_NAME = "face-attributes"


@dataclass
class AttributeClassifierInfo:
    """Sidecar JSON: attribute names, input size, provenance and held-out balanced accuracy."""

    attr_names: list[str]
    size: int = 64
    width: int = 32
    n_train: int = 0
    n_heldout: int = 0
    epochs: int = 0
    seed: int = 0
    data: str = ""
    heldout_balanced_accuracy: dict[str, float] = field(default_factory=dict)


class FaceAttributeClassifier(nn.Module):
    """Five conv stages (stride 2 from the second), global average pool, one logit per attribute."""

    def __init__(self, info: AttributeClassifierInfo) -> None:
        super().__init__()
        self.info = info
        w = info.width

        def block(ci: int, co: int, stride: int) -> list[nn.Module]:
            return [nn.Conv2d(ci, co, 3, stride, 1, bias=False), nn.BatchNorm2d(co), nn.ReLU(inplace=True)]

        self.features = nn.Sequential(
            *block(3, w, 1), *block(w, w, 2), *block(w, 2 * w, 2), *block(2 * w, 4 * w, 2), *block(4 * w, 4 * w, 2)
        )
        self.head = nn.Linear(4 * w, len(info.attr_names))

    @property
    def attr_names(self) -> list[str]:
        return self.info.attr_names

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, A)`` for RGB faces ``(N, 3, S, S)`` in [0, 1] in the canonical face frame."""
        s = self.info.size
        if x.dim() != 4 or tuple(x.shape[1:]) != (3, s, s):
            raise ValueError(f"attribute classifier expects (N, 3, {s}, {s}), got {tuple(x.shape)}")
        return self.head(self.features((x.float() - 0.5) / 0.5).mean((2, 3)))

    @torch.inference_mode()
    def probs(self, x: torch.Tensor, batch: int = 512) -> torch.Tensor:
        """Sigmoid probabilities ``(N, A)`` (eval mode, batched)."""
        self.eval()
        if len(x) == 0:
            return x.new_zeros(0, len(self.attr_names))
        return torch.cat([torch.sigmoid(self(x[i : i + batch])) for i in range(0, len(x), batch)])


def masked_bce(logits: torch.Tensor, attrs: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy over the known labels only (attrs: 1 present, -1 absent, 0 unknown)."""
    known = attrs != 0
    if not known.any():
        return logits.sum() * 0.0
    target = (attrs > 0).float()
    return F.binary_cross_entropy_with_logits(logits[known], target[known])


def balanced_accuracy(probs: torch.Tensor, attrs: torch.Tensor, names: list[str]) -> dict[str, float]:
    """Per attribute, the mean of the true-positive and true-negative rates at p = 0.5 (known labels only)."""
    out = {}
    for j, name in enumerate(names):
        pos, neg = attrs[:, j] == 1, attrs[:, j] == -1
        if pos.sum() < 5 or neg.sum() < 5:
            continue
        tpr = float((probs[pos, j] > 0.5).float().mean())
        tnr = float((probs[neg, j] <= 0.5).float().mean())
        out[name] = round((tpr + tnr) / 2, 4)
    return out


def train_attribute_classifier(train: ImageSet, epochs: int = 6, seed: int = 0, width: int = 32,
                               heldout: ImageSet | None = None, batch: int = 128, lr: float = 2e-3,
                               log: Any = None) -> FaceAttributeClassifier:
    """Train on ``train``'s HR faces and attribute table (random horizontal flips), evaluate on ``heldout``."""
    if train.attrs is None or not train.attr_names:
        raise ValueError("train_attribute_classifier needs a data set with attribute labels")
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    size = int(train.images.shape[-1])
    info = AttributeClassifierInfo(attr_names=list(train.attr_names), size=size, width=width,
                                   n_train=len(train), epochs=epochs, seed=seed, data=train.source)
    model = FaceAttributeClassifier(info)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * math.ceil(len(train) / batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    attrs = train.attrs.to(torch.int8)
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(train), generator=g)
        total = 0.0
        for i in range(0, len(train), batch):
            idx = perm[i : i + batch]
            x = train.images[idx].float() / 255.0
            flip = torch.rand(len(idx), generator=g) < 0.5
            x[flip] = x[flip].flip(-1)
            loss = masked_bce(model(x), attrs[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        if log:
            log(f"epoch {epoch + 1}/{epochs}: loss {total / len(train):.4f}")
    model.eval()
    if heldout is not None and heldout.attrs is not None:
        cols = [heldout.attr_names.index(n) if n in heldout.attr_names else -1 for n in info.attr_names]
        table = torch.zeros(len(heldout), len(cols), dtype=torch.int8)
        for j, c in enumerate(cols):
            if c >= 0:
                table[:, j] = heldout.attrs[:, c]
        p = model.probs(heldout.images.float() / 255.0)
        info.heldout_balanced_accuracy = balanced_accuracy(p, table, info.attr_names)
        info.n_heldout = len(heldout)
    return model


def save_attribute_classifier(model: FaceAttributeClassifier, path: str | Path) -> Path:
    """Write ``path`` (.safetensors, float16) and its ``.json`` sidecar atomically."""
    return save_with_sidecar(model, path, asdict(model.info))


def default_path() -> Path:
    """``resources/classifiers/face-attributes.safetensors``."""
    return CLASSIFIERS_DIR / f"{DEFAULT_NAME}.safetensors"


def load_attribute_classifier(path: str | Path | None = None) -> FaceAttributeClassifier:
    """Load a classifier saved by :func:`save_attribute_classifier`; BundleError if missing or unusable."""
    path = Path(path) if path is not None else default_path()
    return load_with_sidecar(path, lambda meta: FaceAttributeClassifier(AttributeClassifierInfo(**meta)),
                             f"face attribute classifier {path.name}")
