"""The best-of-K reconstruction term: the closest sample only, the trainer's use of it."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from core.training import losses
from core.training.run_config import load_run_config
from core.training.train import train
from tests.test_identity_training import FACE_TINY, faces


def test_best_of_k_costs_the_closest_sample_and_pulls_only_it() -> None:
    hr = torch.full((1, 3, 4, 4), 0.5)
    samples = torch.stack([torch.full((3, 4, 4), v) for v in (0.0, 0.45, 1.0)])[None].requires_grad_(True)
    loss = losses.best_of_reconstruction(samples, hr)
    assert torch.isclose(loss, torch.tensor(0.05), atol=1e-6)
    loss.backward()
    grad = samples.grad.abs().flatten(2).sum(2)[0]
    assert grad[1] > 0 and grad[0] == 0 and grad[2] == 0


def test_one_sample_is_the_plain_l1_and_the_perceptual_cost_can_change_the_choice() -> None:
    g = torch.Generator().manual_seed(0)
    hr, sr = torch.rand(2, 3, 4, 4, generator=g), torch.rand(2, 3, 4, 4, generator=g)
    assert torch.isclose(losses.best_of_reconstruction(sr[:, None], hr), (sr - hr).abs().mean())
    samples = torch.stack([hr + 0.1, hr - 0.2], 1)  # by L1 the first is closer

    def penalise_bright(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return (a.mean(dim=(1, 2, 3)) > b.mean(dim=(1, 2, 3))).float()

    plain = losses.best_of_reconstruction(samples, hr)
    with_perc = losses.best_of_reconstruction(samples, hr, penalise_bright, lambda_perceptual=1.0)
    assert torch.isclose(plain, torch.tensor(0.1), atol=1e-5)
    assert torch.isclose(with_perc, torch.tensor(0.2), atol=1e-5)  # the brighter one now costs 1.1


@pytest.mark.parametrize("det", [False, True])
def test_trainer_logs_the_best_of_term_and_repeats_from_its_seed(tmp_path: Path, det: bool) -> None:
    over = [o for o in FACE_TINY if "identity" not in o] + ['data.degradation=""', "train.lambda_best_of=1.0",
                                                          "train.best_of_share=0.5", "train.best_of_samples=3"]
    run = load_run_config("face-8", over, det=det)
    logs = []
    for name in ("a", "b"):
        train(run, tmp_path / name, faces())
        with open(tmp_path / name / "log.csv") as f:
            logs.append([float(r["best_of"]) for r in csv.DictReader(f)])
    assert len(logs[0]) == 3 and all(v > 0 for v in logs[0])
    assert logs[0] == logs[1]


def test_mfu_counts_the_prior_samples_of_the_sampling_terms() -> None:
    from core.model.varsr import VarSR
    from core.training.train import extra_generator_passes, training_flops_per_image

    over = [o for o in FACE_TINY if "identity" not in o] + ['data.degradation=""']
    plain = load_run_config("face-8", over)
    best = load_run_config("face-8", over + ["train.lambda_best_of=1.0", "train.best_of_share=0.5",
                                             "train.best_of_samples=4"])
    assert extra_generator_passes(plain.train, plain.model.latent_dim) == 0.0
    assert extra_generator_passes(best.train, best.model.latent_dim) == 2.0
    assert extra_generator_passes(best.train, 0) == 0.0  # a det model reuses its one output
    model = VarSR(plain.model)
    base, more = training_flops_per_image(model, plain.model, plain.train), training_flops_per_image(
        model, best.model, best.train)
    assert more > base * 1.5  # two more generator passes on a model that is mostly generator
