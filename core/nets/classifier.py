"""A small CNN that classifies HR digits (24x24) and plate characters (8x16), for Tables 4 and 5.

The evaluation asks it what each super-resolved candidate depicts. It is trained with
:func:`train_classifier` on the train split only and saved as ``<domain>.safetensors`` (float16
weights) plus ``<domain>.json`` (classes, input size, held-out accuracy, provenance) under
``resources/classifiers/``.
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from core.data.imageset import ImageSet
from core.model.degrade import gaussian_blur
from core.nets.sidecar import load_with_sidecar, save_with_sidecar

CLASSIFIERS_DIR = Path(__file__).resolve().parents[2] / "resources" / "classifiers"


@dataclass
class ClassifierInfo:
    """The sidecar JSON: what the network expects and how well it did on held-out real data."""

    classes: list[str]
    size: tuple[int, int]  # (w, h)
    channels: int = 1
    heldout_accuracy: float | None = None
    n_train: int = 0
    n_heldout: int = 0
    epochs: int = 0
    seed: int = 0
    data: str = ""
    width: int = 32  # channels of the first block (the second pair has twice as many)
    extra: dict[str, Any] = field(default_factory=dict)


class CharClassifier(nn.Module):
    """convW-convW-pool-conv2W-conv2W-pool-fc2W-fc(K) (W = ``info.width``, 32 unless set); inputs in
    [0, 1] at ``info.size``."""

    def __init__(self, info: ClassifierInfo) -> None:
        super().__init__()
        self.info = info
        w, h = info.size
        c = info.channels
        cw = info.width

        def block(ci: int, co: int) -> list[nn.Module]:
            return [nn.Conv2d(ci, co, 3, padding=1, bias=False), nn.BatchNorm2d(co), nn.ReLU(inplace=True)]

        self.features = nn.Sequential(
            *block(c, cw), *block(cw, cw), nn.MaxPool2d(2), *block(cw, 2 * cw), *block(2 * cw, 2 * cw), nn.MaxPool2d(2)
        )
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(2 * cw * (h // 4) * (w // 4), 2 * cw),
            nn.ReLU(inplace=True),
            nn.Dropout(0.3),
            nn.Linear(2 * cw, len(info.classes)),
        )

    @property
    def classes(self) -> list[str]:
        return self.info.classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, K)`` for images ``(N, C, H, W)`` in [0, 1]."""
        w, h = self.info.size
        if x.dim() != 4 or tuple(x.shape[1:]) != (self.info.channels, h, w):
            raise ValueError(f"classifier expects (N, {self.info.channels}, {h}, {w}), got {tuple(x.shape)}")
        return self.head(self.features((x.float() - 0.5) / 0.5))

    @torch.inference_mode()
    def probs(self, x: torch.Tensor, batch: int = 1024) -> torch.Tensor:
        """Softmax probabilities ``(N, K)`` (eval mode, batched); images of another size are first
        resized to the classifier's with the area filter (a 12x24 plate candidate read at 8x16)."""
        self.eval()
        if len(x) == 0:
            return x.new_zeros(0, len(self.classes))
        w, h = self.info.size
        if tuple(x.shape[-2:]) != (h, w):
            x = F.interpolate(x.float(), size=(h, w), mode="area")
        return torch.cat([F.softmax(self(x[i : i + batch]), 1) for i in range(0, len(x), batch)])

    def accuracy(self, images: torch.Tensor, labels: torch.Tensor) -> float:
        """Top-1 accuracy on float images with labels in this classifier's class indices."""
        return float((self.probs(images).argmax(1) == labels).float().mean()) if len(labels) else float("nan")


def _shift(x: torch.Tensor, rng: torch.Generator, max_px: int = 1) -> torch.Tensor:
    """Random translation by up to ``max_px`` pixels (replicate padding), one offset per batch."""
    dx, dy = (int(v) for v in torch.randint(-max_px, max_px + 1, (2,), generator=rng))
    p = max_px
    xp = F.pad(x, (p, p, p, p), mode="replicate")
    h, w = x.shape[-2:]
    return xp[..., p + dy : p + dy + h, p + dx : p + dx + w]


def _augment(x: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    """A +-1 px shift, then a Gaussian blur on a random half of the batch.

    The blur (sigma up to 1.5 px at 24 px, scaled with the image) keeps the classifier reading
    soft but legible candidates (a deterministic model's, bicubic) instead of collapsing to one
    class on anything less sharp than the training images.
    """
    x = _shift(x, rng)
    half = torch.rand(len(x), generator=rng) < 0.5
    if half.any():
        sigma = float(torch.rand((), generator=rng)) * 1.5 * min(x.shape[-2:]) / 24
        x = x.clone()
        x[half] = gaussian_blur(x[half], sigma)
    return x


def train_classifier(
    train: ImageSet,
    epochs: int = 8,
    seed: int = 0,
    heldout: ImageSet | None = None,
    batch: int = 128,
    lr: float = 2e-3,
    log: Any = None,
    width: int = 32,
) -> CharClassifier:
    """Train on the labelled images of ``train``; report accuracy on ``heldout`` (same classes) if given.
    ``width``: the network's first channel count (:class:`CharClassifier`)."""
    keep = train.labels >= 0
    x = train.images[keep].float() / 255.0
    y = train.labels[keep].long()
    if len(y) == 0 or not train.classes:
        raise ValueError("train_classifier needs labelled images with class names")
    torch.manual_seed(seed)
    random.seed(seed)
    g = torch.Generator().manual_seed(seed)
    c, h, w = x.shape[1:]
    info = ClassifierInfo(
        classes=list(train.classes),
        size=(w, h),
        channels=c,
        n_train=len(y),
        epochs=epochs,
        seed=seed,
        data=train.source,
        width=width,
    )
    model = CharClassifier(info)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * math.ceil(len(y) / batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(y), generator=g)
        total = 0.0
        for i in range(0, len(y), batch):
            idx = perm[i : i + batch]
            xb = _augment(x[idx], g)
            loss = F.cross_entropy(model(xb), y[idx], label_smoothing=0.05)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        if log:
            log(f"epoch {epoch + 1}/{epochs}: loss {total / len(y):.4f}")
    model.eval()
    if heldout is not None:
        xh, yh = labelled_for(model, heldout)
        info.heldout_accuracy = round(model.accuracy(xh, yh), 4) if len(yh) else None
        info.n_heldout = len(yh)
    return model


def class_map(classifier_classes: list[str], data_classes: list[str]) -> torch.Tensor:
    """For each data-set class index, the classifier's index of the same name (-1 if it has none)."""
    where = {name: i for i, name in enumerate(classifier_classes)}
    return torch.tensor([where.get(name, -1) for name in data_classes], dtype=torch.long)


def labelled_for(model: CharClassifier, data: ImageSet) -> tuple[torch.Tensor, torch.Tensor]:
    """Float images and classifier-index labels of the images whose class the classifier knows."""
    labels = map_labels(model, data)
    keep = labels >= 0
    return data.images[keep].float() / 255.0, labels[keep]


def map_labels(model: CharClassifier, data: ImageSet) -> torch.Tensor:
    """``data.labels`` translated to the classifier's class indices (-1: unlabelled or unknown class)."""
    if not data.classes:
        return torch.full_like(data.labels, -1)
    cmap = class_map(model.classes, data.classes)
    lab = data.labels.clone()
    ok = lab >= 0
    lab[ok] = cmap[lab[ok]]
    return lab


def save_classifier(model: CharClassifier, path: str | Path) -> Path:
    """Write ``path`` (.safetensors, float16) and its ``.json`` sidecar atomically; returns the weights path."""
    meta = asdict(model.info)
    meta["size"] = list(model.info.size)
    return save_with_sidecar(model, path, meta)


def default_path(domain: str) -> Path:
    """``resources/classifiers/<domain>.safetensors``."""
    return CLASSIFIERS_DIR / f"{domain}.safetensors"


def load_classifier(path: str | Path) -> CharClassifier:
    """Load a classifier saved by :func:`save_classifier` (eval mode); BundleError if unusable."""

    def build(meta: dict[str, Any]) -> CharClassifier:
        meta["size"] = tuple(int(v) for v in meta["size"])
        return CharClassifier(ClassifierInfo(**meta))

    return load_with_sidecar(path, build, f"classifier {Path(path)}")
