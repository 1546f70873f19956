"""The terms of eq. 9: pixel L2 (eq. 6), KL (eq. 7), WGAN-GP (eq. 8) and a perceptual term.

Reductions, stated because lambda_KL depends on them:

* ``pixel_loss``: mean over batch, channels and pixels, images in [0, 1] (eq. 6 exactly).
* ``kl_divergence``: KL(q(z|I_H) || p(z|I_L)) in closed form for diagonal Gaussians, **mean
  over the latent dimensions and the batch** (so lambda_KL = 0.01 weighs one nat per dimension
  like 0.01 of mean squared error; a sum over D = 256 would need lambda / 256).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


def pixel_loss(sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
    """Eq. 6: mean squared error per pixel."""
    return torch.mean((sr.float() - hr.float()) ** 2)


def kl_per_dim(mu_q: torch.Tensor, logvar_q: torch.Tensor, mu_p: torch.Tensor, logvar_p: torch.Tensor) -> torch.Tensor:
    """Elementwise KL(N(mu_q, var_q) || N(mu_p, var_p)) for diagonal Gaussians, shape (N, D)."""
    return 0.5 * (logvar_p - logvar_q + (logvar_q.exp() + (mu_q - mu_p) ** 2) / logvar_p.exp() - 1.0)


def kl_divergence(
    mu_q: torch.Tensor, logvar_q: torch.Tensor, mu_p: torch.Tensor, logvar_p: torch.Tensor
) -> torch.Tensor:
    """Eq. 7 with q = E_H(I_H), p = E_L(I_L); mean over latent dims and batch (see module doc)."""
    return kl_per_dim(mu_q, logvar_q, mu_p, logvar_p).mean()


def kl_free_bits(mu_q: torch.Tensor, logvar_q: torch.Tensor, mu_p: torch.Tensor, logvar_p: torch.Tensor,
                 free: float) -> torch.Tensor:
    """Eq. 7 with free bits (Kingma et al., 2016): per dimension, max(free, batch-mean KL), then mean.

    Same reduction as :func:`kl_divergence` (mean over dimensions), so lambda_KL keeps its meaning;
    with ``free = 0`` it equals :func:`kl_divergence`.
    """
    per_dim = kl_per_dim(mu_q, logvar_q, mu_p, logvar_p).mean(0)
    return per_dim.clamp_min(free).mean()


def diversity_hinge(generator: nn.Module, lr: torch.Tensor, mu_l: torch.Tensor, logvar_l: torch.Tensor,
                    target: float, scale: int) -> torch.Tensor:
    """Keep samples apart (a hinged mode-seeking term, after Mao et al., 2019): two latents drawn from
    p(z | I_L) per input must give outputs at least ``target`` apart (mean absolute pixel difference),
    and their box-filtered reductions must agree, so the spread lands where the evidence is silent.

    Gradients reach G only (the prior's mean and spread are detached). Returns ``spread + agree``.
    """
    from core.model.degrade import degrade

    mu, std = mu_l.detach(), torch.exp(0.5 * logvar_l.detach())
    z = torch.cat([mu + std * torch.randn_like(mu), mu + std * torch.randn_like(mu)])
    a, b = generator(torch.cat([lr, lr]), z).float().chunk(2)
    apart = (a - b).abs().flatten(1).mean(1)
    spread = torch.relu(target - apart).mean()
    agree = (degrade(a, scale) - degrade(b, scale)).abs().mean()
    return spread + agree


def best_of_reconstruction(samples: torch.Tensor, hr: torch.Tensor,
                           perceptual: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
                           lambda_perceptual: float = 0.0) -> torch.Tensor:
    """Best-of-K reconstruction (a best-of-many objective, Bhattacharyya et al., 2018): per input, the
    cost ``L1 + lambda_perceptual * LPIPS`` of the *closest* of its ``K`` prior samples to the HR image;
    mean over inputs.

    ``samples`` is ``(N, K, C, H, W)`` (K = 1 for a det model: then it is the plain reconstruction
    loss). Only the best sample is pulled towards the truth, so the other draws stay free to cover
    other faces the evidence allows: what best-of-10 PSNR / LPIPS measure, trained directly.
    """
    n, k = samples.shape[:2]
    flat = samples.flatten(0, 1)
    rep = hr.repeat_interleave(k, 0)
    cost = (flat - rep).abs().flatten(1).mean(1)
    if perceptual is not None and lambda_perceptual > 0:
        cost = cost + lambda_perceptual * perceptual(flat, rep).flatten()
    return cost.view(n, k).min(dim=1).values.mean()


def identity_best_of(embed: Callable[[torch.Tensor], torch.Tensor], samples: torch.Tensor,
                     hr: torch.Tensor) -> torch.Tensor:
    """Best-of-K identity term: per input, ``1 - cos`` between the face embedder's descriptor of the
    HR face and of the *closest* of its ``K`` samples; mean over inputs.

    ``samples`` is ``(N, K, C, H, W)`` (K = 1 for a det model: then it is the plain identity loss).
    Only the best sample is pulled towards the person, so the K samples may keep differing where the
    evidence is silent while one of them must land on the right identity (a best-of-many objective,
    Bhattacharyya et al., 2018). The embedder is frozen; the HR descriptors carry no gradient.
    """
    n, k = samples.shape[:2]
    with torch.no_grad():
        target = embed(hr).float()
    got = embed(samples.flatten(0, 1)).float().view(n, k, -1)
    dist = 1 - torch.nn.functional.cosine_similarity(got, target[:, None], dim=-1)
    return dist.min(dim=1).values.mean()


def gradient_penalty(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor, delta: float = 10.0) -> torch.Tensor:
    """Eq. 8's penalty: delta * E[(||grad D(x_hat)||_2 - 1)^2] on random interpolates."""
    eps = torch.rand(real.shape[0], 1, 1, 1, device=real.device, dtype=real.dtype)
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    out = critic(x_hat)
    (grad,) = torch.autograd.grad(out.sum(), x_hat, create_graph=True)
    norm = grad.flatten(1).norm(2, dim=1)
    return delta * ((norm - 1) ** 2).mean()


def critic_loss(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor, delta: float = 10.0,
                penalty_weight: float = 1.0) -> torch.Tensor:
    """Eq. 8 for the critic: E[D(fake)] - E[D(real)] + gradient penalty.

    ``penalty_weight``: lazy regularisation (StyleGAN2): the trainer computes the penalty only every
    ``k``-th critic step with weight ``k`` (0 skips it), which keeps its double backward from
    dominating a CPU step while the expected penalty stays eq. 8's.
    """
    fake = fake.detach()
    loss = critic(fake).mean() - critic(real).mean()
    if penalty_weight > 0:
        loss = loss + penalty_weight * gradient_penalty(critic, real, fake, delta)
    return loss


def generator_adv_loss(critic: nn.Module, fake: torch.Tensor) -> torch.Tensor:
    """The generator's side of eq. 8: -E[D(fake)]."""
    return -critic(fake).mean()
