"""The networks, losses and the public sampling API."""

from __future__ import annotations

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from core.model.degrade import degrade, project_consistent
from core.model.varsr import VarSR
from core.nets import Critic, GaussianEncoder
from core.training import losses
from tests.conftest import DOMAINS, tiny_config


@pytest.mark.parametrize("name", list(DOMAINS))
def test_shapes_for_every_domain(name: str) -> None:
    cfg = tiny_config(name)
    m = VarSR(cfg)
    w, h = cfg.lr_size
    W, H = cfg.hr_size
    lr = torch.rand(3, cfg.channels, h, w)
    hr = torch.rand(3, cfg.channels, H, W)
    out = m(lr, hr)
    assert out["sr"].shape == hr.shape
    assert out["mu_h"].shape == out["mu_l"].shape == (3, cfg.latent_dim)
    assert m.sample(lr[0], 5, seed=1).shape == (5, cfg.channels, H, W)
    assert m.sample(lr, 2, seed=1).shape == (3, 2, cfg.channels, H, W)
    assert Critic(cfg.channels, cfg.hr_size, 8)(hr).shape == (3,)
    assert m.degrade(hr).shape == lr.shape


def test_deterministic_baseline_has_no_latent_and_identical_samples() -> None:
    m = VarSR(tiny_config("digit", latent_dim=0)).eval()
    assert m.enc_lr is None and m.config.deterministic
    s = m.sample(torch.rand(1, 6, 6), 4, seed=3)
    assert torch.equal(s[0], s[3])


def test_logvar_is_bounded() -> None:
    enc = GaussianEncoder(1, (6, 6), 8, width=8, logvar_bound=3.0)
    with torch.no_grad():
        enc.head.bias.fill_(1e4)
    _, logvar = enc(torch.rand(2, 1, 6, 6))
    assert logvar.max() <= 3.0


def test_kl_matches_torch_distributions() -> None:
    g = torch.Generator().manual_seed(0)
    mu_q, mu_p = torch.randn(4, 7, generator=g), torch.randn(4, 7, generator=g)
    lv_q, lv_p = torch.randn(4, 7, generator=g), torch.randn(4, 7, generator=g)
    ref = kl_divergence(Normal(mu_q, (0.5 * lv_q).exp()), Normal(mu_p, (0.5 * lv_p).exp()))
    assert torch.allclose(losses.kl_per_dim(mu_q, lv_q, mu_p, lv_p), ref, atol=1e-5)
    # the stated reduction: mean over latent dimensions and batch
    assert torch.allclose(losses.kl_divergence(mu_q, lv_q, mu_p, lv_p), ref.mean(), atol=1e-6)
    assert losses.kl_divergence(mu_q, lv_q, mu_q, lv_q).abs() < 1e-6


def test_gradient_penalty_is_zero_for_unit_gradient_critic() -> None:
    class Linear(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:  # gradient norm exactly 1
            return x.flatten(1)[:, 0]

    real, fake = torch.rand(4, 1, 8, 8), torch.rand(4, 1, 8, 8)
    assert losses.gradient_penalty(Linear(), real, fake, delta=10).abs() < 1e-6

    class Double(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:  # gradient norm 2 -> (2-1)^2 * 10
            return 2 * x.flatten(1)[:, 0]

    assert torch.isclose(losses.gradient_penalty(Double(), real, fake, delta=10), torch.tensor(10.0))


def test_seed_reproduces_candidates_exactly_and_differs_across_seeds() -> None:
    torch.manual_seed(0)
    m = VarSR(tiny_config("face-8")).eval()
    with torch.no_grad():  # make the latent matter in an untrained net
        for p in m.generator.parameters():
            p.add_(0.05 * torch.randn_like(p))
    lr = torch.rand(3, 8, 8)
    a, b = m.sample(lr, 6, seed=42), m.sample(lr, 6, seed=42)
    assert torch.equal(a, b)
    assert not torch.equal(a, m.sample(lr, 6, seed=43))
    assert not torch.equal(a[0], a[1])  # diverse within a set
    assert torch.equal(m.sample(lr, 6, seed=42, temperature=0)[0], m.sample(lr, 6, seed=7, temperature=0)[1])


def test_generate_matches_sample_with_the_same_latents() -> None:
    torch.manual_seed(0)
    m = VarSR(tiny_config("digit")).eval()
    lr = torch.rand(1, 1, 6, 6)
    z = m.latents(lr, 4, seed=5)[0]
    via_sample = m.sample(lr[0], 4, seed=5)
    via_generate = m.generate(lr.expand(4, -1, -1, -1), z)
    assert torch.allclose(via_sample, via_generate, atol=1e-6)


def test_degrade_is_the_box_mean_and_projection_is_consistent() -> None:
    hr = torch.arange(16.0).view(1, 1, 4, 4) / 16
    lr = degrade(hr, 2)
    assert torch.allclose(lr[0, 0], torch.tensor([[2.5, 4.5], [10.5, 12.5]]) / 16)
    sr = torch.rand(2, 3, 16, 16) * 0.2 + 0.4
    target = torch.rand(2, 3, 4, 4) * 0.2 + 0.4
    proj = project_consistent(sr, target, 4)
    assert torch.allclose(degrade(proj, 4), target, atol=1e-6)
    with pytest.raises(ValueError):
        degrade(torch.rand(1, 1, 5, 5), 2)


def test_tune_cpu_respects_omp_num_threads() -> None:
    import subprocess
    import sys

    from tests.conftest import REPO

    code = "import torch; from core.perf import tune_cpu; tune_cpu(); print(torch.get_num_threads())"
    env = {"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "1", out.stderr
