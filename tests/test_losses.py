"""The trainer's loss terms that the paper does not define."""

from __future__ import annotations

import pytest
import torch


def test_diversity_hinge_pushes_prior_samples_apart_only_below_the_target() -> None:
    from core.training.losses import diversity_hinge

    torch.manual_seed(0)
    lr = torch.rand(3, 1, 4, 4)
    mu, logvar = torch.zeros(3, 8), torch.zeros(3, 8)

    class Ignores(torch.nn.Module):  # a collapsed generator: the same output whatever z
        def forward(self, x, z):
            return x.repeat_interleave(2, -1).repeat_interleave(2, -2)

    class Adds(torch.nn.Module):  # spreads z over a pattern the 2x2 box filter averages away
        def forward(self, x, z):
            up = x.repeat_interleave(2, -1).repeat_interleave(2, -2)
            checker = torch.tensor([[1.0, -1.0], [-1.0, 1.0]]).repeat(4, 4)
            return up + z[:, :1, None, None] * checker

    collapsed = diversity_hinge(Ignores(), lr, mu, logvar, target=0.03, scale=2)
    assert collapsed.item() == pytest.approx(0.03)  # the whole target missed, and no disagreement
    spread = diversity_hinge(Adds(), lr, mu, logvar, target=0.03, scale=2)
    assert spread.item() == pytest.approx(0.0, abs=1e-6)  # apart by |z1 - z2| >> 0.03, reductions agree
