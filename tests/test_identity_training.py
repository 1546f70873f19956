"""The identity term of training: best of K, differentiable chips, the trainer's use of it."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from core.data.imageset import ImageSet
from core.errors import DataError
from core.training import losses
from core.training.run_config import load_run_config
from core.training.train import train
from tests.test_train import TINY


class MeanColour(torch.nn.Module):
    """A stand-in embedder: each frame's mean colour plus a constant, so cos is informative."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0
        self.chips: list[int | None] = []

    def forward(self, frames: torch.Tensor, chip_size: int | None = None) -> torch.Tensor:
        self.calls += 1
        self.chips.append(chip_size)
        return torch.cat([frames.mean(dim=(2, 3)), torch.full_like(frames[:, :1, 0, 0], 0.1)], 1)


def test_best_of_k_takes_the_closest_sample_and_pulls_only_it() -> None:
    embed = MeanColour()
    hr = torch.zeros(1, 3, 4, 4)
    hr[:, 0] = 1.0  # a red face
    samples = torch.zeros(1, 3, 3, 4, 4)
    samples[0, 0, 1] = 1.0  # green: far
    samples[0, 1, 0] = 0.9  # nearly red: the best
    samples[0, 2, 2] = 1.0  # blue: far
    samples.requires_grad_(True)
    loss = losses.identity_best_of(embed, samples, hr)
    target = torch.tensor([1.0, 0, 0, 0.1])
    best = torch.tensor([0.9, 0, 0, 0.1])
    expected = 1 - torch.nn.functional.cosine_similarity(best, target, dim=0)
    assert torch.isclose(loss, expected, atol=1e-6)
    loss.backward()
    grad = samples.grad.abs().flatten(2).sum(2)[0]
    assert grad[1] > 0 and grad[0] == 0 and grad[2] == 0


def test_frame_identity_matches_the_search_descriptors_and_passes_gradients() -> None:
    from core.search.embedders import DlibFaceEmbedder

    emb = DlibFaceEmbedder()
    g = torch.Generator().manual_seed(0)
    frames = torch.rand(2, 3, 64, 64, generator=g).requires_grad_(True)
    net = emb.identity_loss_net()
    got = net(frames)
    want = torch.from_numpy(emb.embed_frames(frames.detach()))
    assert torch.allclose(got.detach(), want, atol=1e-3)
    got.sum().backward()
    assert frames.grad is not None and frames.grad.abs().sum() > 0
    assert all(p.grad is None for p in net.net.parameters())
    small = emb.identity_loss_net(112)(frames.detach())
    assert small.shape == (2, 128)
    net.train()
    assert not net.net.training  # the frozen network keeps its batch statistics


def faces(n: int = 16) -> ImageSet:
    g = torch.Generator().manual_seed(1)
    return ImageSet(images=(torch.rand(n, 3, 32, 32, generator=g) * 255).to(torch.uint8),
                    labels=torch.zeros(n, dtype=torch.long), source="noise")


FACE_TINY = TINY + ["model.lr_size=[8, 8]", "model.scale=4", "model.up_widths=[16, 16]", "train.steps=3",
                    "train.adv_start=1000", "train.lambda_identity=0.5", "train.identity_share=0.25",
                    "train.identity_samples=3"]


@pytest.mark.parametrize("det", [False, True])
def test_trainer_logs_the_identity_term(tmp_path: Path, det: bool) -> None:
    run = load_run_config("face-8", FACE_TINY + ['data.degradation=""'], det=det)
    embed = MeanColour()
    train(run, tmp_path / "run", faces(), identity=embed)
    with open(tmp_path / "run" / "log.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 and all(float(r["identity"]) > 0 for r in rows)
    assert embed.calls == 2 * 3  # the HR descriptors and the samples' at every step


def test_chip_size_jitters_reproducibly_within_its_range(tmp_path: Path) -> None:
    run = load_run_config("face-8", FACE_TINY + ['data.degradation=""', "train.steps=6", "train.identity_chip=100",
                                                 "train.identity_chip_jitter=0.2"])
    seen = []
    for name in ("a", "b"):
        embed = MeanColour()
        train(run, tmp_path / name, faces(), identity=embed)
        seen.append(embed.chips)
    assert seen[0] == seen[1]  # from the run's seed
    assert all(80 <= c <= 120 for c in seen[0]) and len(set(seen[0])) > 1
    assert seen[0][0::2] == seen[0][1::2]  # the HR face and its samples share each step's chip


def test_identity_term_without_an_embedder_is_refused(tmp_path: Path) -> None:
    run = load_run_config("face-8", FACE_TINY)
    with pytest.raises(DataError, match="lambda_identity"):
        train(run, tmp_path / "run", faces())
