"""The bundled trainer, readable top to bottom (in the spirit of nanoGPT's train.py).

Phase 1 trains E_H, E_L and G with the pixel, KL and perceptual terms; phase 2 (from
``adv_start``) adds the WGAN-GP critic. The learning rate is decayed once at ``decay_at``.
Everything that varies is in the run config and the seed; a checkpoint every ``ckpt_every``
steps makes ``--resume`` lose at most one interval. Several GPUs: launch with ``torchrun``.
"""

from __future__ import annotations

import csv
import json
import os
import platform
import random
import signal
import time
from dataclasses import asdict
from functools import partial
from pathlib import Path

import torch
import torch.distributed as dist
from PIL import Image
from tqdm import tqdm

from core.data.imageset import ImageSet
from core.errors import BundleError, DataError
from core.images import tensor_to_pil
from core.model.bundle import save_bundle
from core.model.config import ModelConfig
from core.model.degrade import RandomDegradation, degrade, upsample_nearest
from core.model.varsr import VarSR, cpu_has_bf16
from core.nets import Critic
from core.perf import tune_cpu
from core.training import losses
from core.training.checkpoint import load_checkpoint, save_checkpoint
from core.training.run_config import DataConfig, RunConfig, TrainConfig


def default_data_root() -> Path:
    """``$VARSR_DATA`` or the ``shared/data`` folder beside the repository."""
    env = os.environ.get("VARSR_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[3] / "shared" / "data"


def load_training_data(data: DataConfig, model_size: tuple[int, int], channels: int, root: Path,
                       split: str = "train", cache_dir: Path | None = None, limit: int | None = None) -> ImageSet:
    """All sources of a run config, decoded at the HR size and concatenated."""
    from core.data.registry import concat, load_dataset

    sets = []
    for src in data.sources:
        src = dict(src)
        kind, rel = src.pop("kind"), src.pop("root")
        path = Path(rel) if Path(rel).is_absolute() else root / rel
        sets.append(load_dataset(kind, path, split, size=model_size, channels=channels, limit=limit,
                                 cache_dir=cache_dir, **src))
    if not sets:
        raise DataError("the run config names no data sources")
    return concat(sets) if len(sets) > 1 else sets[0]


def init_weights(model: VarSR, start: VarSR, cfg: ModelConfig) -> list[str]:
    """Copy ``start``'s weights into ``model``; returns the tensors left freshly initialised.

    Same architecture and sizes: every tensor is copied. Another input size at the same scale,
    latent and widths (e.g. face-12 from face-16): the fully convolutional generator and the
    encoders' convolutions are copied, and only the size-dependent linear heads (E_L, E_H) start
    fresh. Anything else is refused.
    """
    same_arch = (start.config.scale, start.config.latent_dim, start.config.width, start.config.n_res_blocks,
                 tuple(start.config.up_widths), start.config.channels) == (
                 cfg.scale, cfg.latent_dim, cfg.width, cfg.n_res_blocks, tuple(cfg.up_widths), cfg.channels)
    if not same_arch:
        raise BundleError("the init bundle's architecture does not match the run config")
    if start.config.hr_size == cfg.hr_size:
        model.load_state_dict(start.state_dict())
        return []
    own = model.state_dict()
    theirs = start.state_dict()
    fresh = sorted(k for k in own if k not in theirs or theirs[k].shape != own[k].shape)
    if any(not k.endswith(("head.weight", "head.bias")) for k in fresh):
        raise BundleError(f"the init bundle differs beyond the size-dependent heads: {fresh}")
    model.load_state_dict({k: (own[k] if k in fresh else theirs[k]) for k in own})
    return fresh


def train(run: RunConfig, out_dir: Path, data: ImageSet, resume: bool = False,
          max_minutes: float | None = None, device: str | None = None, fit_schedule: bool = False,
          init: Path | None = None, identity: torch.nn.Module | None = None) -> Path:
    """Train ``run`` on ``data`` into ``out_dir``; returns the exported bundle folder.

    ``identity``: the frozen, differentiable face embedder (frames -> descriptors) the identity term
    needs when ``train.lambda_identity > 0`` (the CLI builds it; ``core.training`` imports no search code).

    ``init``: start from a bundle's weights (e.g. the shipped model) with fresh optimisers.
    ``fit_schedule`` (with ``max_minutes``): after a short warm-up, measure the speed and scale
    ``steps``, ``adv_start`` and ``decay_at`` together so the whole schedule fits the time.
    """
    cfg, tc = run.model, run.train
    # -- distributed / device set-up ------------------------------------------------------------
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if world > 1:
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    if device is None:
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
        torch.backends.cudnn.benchmark = True
    else:
        tune_cpu()
    main_proc = rank == 0
    use_bf16 = dev.type == "cuda" or cpu_has_bf16()
    channels_last = torch.channels_last

    # -- seeds, data, networks, optimisers -----------------------------------------------------
    torch.manual_seed(tc.seed + rank)
    rng = random.Random(tc.seed + rank)
    g_data = torch.Generator().manual_seed(tc.seed * 1000 + rank)
    images = data.images.to(dev)
    n_images = images.shape[0]
    if n_images == 0:
        raise DataError("no training images")
    model = VarSR(cfg).to(dev).to(memory_format=channels_last)
    if init is not None and not resume:
        from core.model.bundle import load_model

        start = load_model(init)
        fresh = init_weights(model, start, cfg)
        if fresh:
            print(f"{init}: another input size; re-initialised {', '.join(fresh)}", flush=True)
        run.model.training = {"init_from": str(init), "init_training": start.config.training,
                              **({"init_reinitialised": fresh} if fresh else {})}
    critic = Critic(cfg.channels, cfg.hr_size, cfg.critic_width).to(dev).to(memory_format=channels_last)
    opt_g = torch.optim.Adam(model.parameters(), lr=tc.lr, betas=tc.betas)
    opt_d = torch.optim.Adam(critic.parameters(), lr=tc.lr, betas=tc.betas)
    perceptual = None
    if tc.lambda_perceptual > 0:
        from core.nets.lpips import load_lpips

        perceptual = load_lpips().to(dev).eval().requires_grad_(False)
    if tc.lambda_identity > 0:
        if identity is None:
            raise DataError("train.lambda_identity > 0 needs a face embedder (varsr-train builds it)")
        identity = identity.to(dev)
    p_degrade = float(run.data.random_degradation)
    rand_degrade = RandomDegradation(cfg.scale, p=p_degrade) if p_degrade > 0 else None
    if run.data.degradation:
        from core.model.camera import CameraDegradation, condition

        rand_degrade = CameraDegradation(condition(run.data.degradation), (cfg.lr_size[1], cfg.lr_size[0]))
    flops_per_image = training_flops_per_image(model, cfg, tc)
    peak_flops = device_peak_flops(dev)

    # -- resume ---------------------------------------------------------------------------------
    out_dir.mkdir(parents=True, exist_ok=True)
    ckpt_dir = out_dir / "checkpoint"
    step, elapsed_before = 0, 0.0
    if resume and (ckpt_dir / "checkpoint.json").is_file():
        modules, optims = {"model": model, "critic": critic}, {"opt_g": opt_g, "opt_d": opt_d}
        meta, rng_state = load_checkpoint(ckpt_dir, modules, optims)
        step, elapsed_before = int(meta["step"]), float(meta["elapsed_s"])
        g_data.set_state(rng_state["data"])
        torch.set_rng_state(rng_state["torch"])
        version, internal, gauss = json.loads(meta["py_rng"])
        rng.setstate((version, tuple(internal), gauss))
        if main_proc:
            print(f"resumed from step {step}")
    ddp_model = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
    ddp_critic = torch.nn.parallel.DistributedDataParallel(critic) if world > 1 else critic
    if main_proc:
        (out_dir / "run_config.json").write_text(json.dumps(run.to_dict(), indent=1), encoding="utf-8")
    fixed = images[torch.arange(min(8, n_images))].float().div(255)

    def checkpoint() -> None:
        if not main_proc:
            return
        state = rng.getstate()
        save_checkpoint(
            ckpt_dir, {"model": model, "critic": critic}, {"opt_g": opt_g, "opt_d": opt_d},
            {"data": g_data.get_state(), "torch": torch.get_rng_state()},
            {"step": step, "elapsed_s": elapsed_before + time.time() - t0,
             "py_rng": json.dumps([state[0], list(state[1]), state[2]])},
        )

    stop = {"now": False}
    signal.signal(signal.SIGINT, lambda *_: stop.update(now=True))
    log_path = out_dir / "log.csv"
    log_file = open(log_path, "a", newline="") if main_proc else None
    writer = csv.writer(log_file) if log_file else None
    if writer and log_path.stat().st_size == 0:
        writer.writerow(["step", "time_s", "lr", "pixel", "kl", "perceptual", "adv_g", "critic", "sigma_l",
                         "images_per_s", "mfu", "diversity", "identity", "best_of"])
    t0 = time.time()
    t_log, step_log = t0, step
    bar = tqdm(total=tc.steps, initial=step, disable=not main_proc, dynamic_ncols=True, desc=cfg.name)

    # -- the loop -------------------------------------------------------------------------------
    while step < tc.steps:
        lr_now = tc.lr * (tc.lr_decay if step >= tc.decay_at else 1.0)
        for o in (opt_g, opt_d):
            for group in o.param_groups:
                group["lr"] = lr_now
        adversarial = step >= tc.adv_start and tc.lambda_adv > 0

        idx = torch.randint(n_images, (tc.batch_size,), generator=g_data).to(dev)
        hr = images[idx].float().div_(255)
        if run.data.hflip:
            flip = torch.rand(tc.batch_size, generator=g_data).to(dev) < 0.5
            hr = torch.where(flip[:, None, None, None], hr.flip(-1), hr)
        lr_img = rand_degrade(hr, rng) if rand_degrade else degrade(hr, cfg.scale)
        hr = hr.contiguous(memory_format=channels_last)
        lr_img = lr_img.contiguous(memory_format=channels_last)

        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=use_bf16):
            out = ddp_model(lr_img, hr)
        sr = out["sr"].float()

        # critic step (phase 2): eq. 8 with the gradient penalty, in fp32
        l_critic = torch.zeros((), device=dev)
        if adversarial:
            opt_d.zero_grad(set_to_none=True)
            every = max(1, tc.gp_every)
            l_critic = losses.critic_loss(ddp_critic, hr, sr.detach(), tc.gp_delta,
                                          penalty_weight=float(every) if step % every == 0 else 0.0)
            l_critic.backward()
            opt_d.step()

        # generator + encoders step: eq. 9
        l_pix = losses.pixel_loss(sr, hr)
        l_kl = (losses.kl_free_bits(out["mu_h"], out["logvar_h"], out["mu_l"], out["logvar_l"], tc.kl_free_bits)
                if cfg.latent_dim else torch.zeros((), device=dev))
        l_perc = perceptual(sr, hr).mean() if perceptual is not None else torch.zeros((), device=dev)
        l_adv = losses.generator_adv_loss(critic, sr) if adversarial else torch.zeros((), device=dev)
        l_div = torch.zeros((), device=dev)
        if tc.lambda_diversity > 0 and cfg.latent_dim:
            nd = batch_share(tc.batch_size, tc.diversity_share)
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=use_bf16):
                l_div = losses.diversity_hinge(model.generator, lr_img[:nd], out["mu_l"][:nd], out["logvar_l"][:nd],
                                               tc.diversity_target, cfg.scale)
        l_best = torch.zeros((), device=dev)
        if tc.lambda_best_of > 0:
            # best of K prior samples (reparameterised: the prior may spread where faces differ); a det
            # model's one output, so its baseline gets the same weight of reconstruction
            nb = batch_share(tc.batch_size, tc.best_of_share)
            samples = (prior_samples(model, lr_img[:nb], out["mu_l"][:nb], out["logvar_l"][:nb],
                                     tc.best_of_samples, use_bf16) if cfg.latent_dim else sr[:nb, None])
            l_best = losses.best_of_reconstruction(samples, hr[:nb], perceptual, tc.lambda_perceptual)
        l_id = torch.zeros((), device=dev)
        if tc.lambda_identity > 0 and identity is not None:
            # best of K prior samples (reparameterised, so the prior may spread where faces differ);
            # a det model's one output
            ni = batch_share(tc.batch_size, tc.identity_share)
            samples = (prior_samples(model, lr_img[:ni], out["mu_l"][:ni], out["logvar_l"][:ni],
                                     tc.identity_samples, use_bf16) if cfg.latent_dim else sr[:ni, None])
            chip = tc.identity_chip
            if tc.identity_chip_jitter > 0:
                chip = round(chip * rng.uniform(1 - tc.identity_chip_jitter, 1 + tc.identity_chip_jitter))
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=use_bf16):
                l_id = losses.identity_best_of(partial(identity, chip_size=chip), samples, hr[:ni])
        loss = (tc.lambda_pixel * l_pix + tc.lambda_kl * l_kl + tc.lambda_perceptual * l_perc
                + tc.lambda_adv * l_adv + tc.lambda_diversity * l_div + tc.lambda_identity * l_id
                + tc.lambda_best_of * l_best)
        opt_g.zero_grad(set_to_none=True)
        loss.backward()
        opt_g.step()
        step += 1
        bar.update(1)
        if fit_schedule and max_minutes and step == WARMUP_STEPS // 4:
            t_warm = time.time()
        if fit_schedule and max_minutes and step == WARMUP_STEPS:
            rate = (WARMUP_STEPS - WARMUP_STEPS // 4) / (time.time() - t_warm)
            fit_to_time(tc, step, rate, max_minutes * 60 - 15 - (time.time() - t0))
            bar.total = tc.steps
            if main_proc:
                print(f"schedule fitted to {max_minutes} min: {tc.steps} steps, adversarial from {tc.adv_start}, "
                      f"lr decay at {tc.decay_at}")

        # logging, samples, checkpoints
        if main_proc and (step % tc.log_every == 0 or step == tc.steps):
            sigma = torch.exp(0.5 * out["logvar_l"]).mean().item() if cfg.latent_dim else 0.0
            now = time.time()
            ips = (step - step_log) * tc.batch_size * world / max(now - t_log, 1e-9)
            mfu = ips * flops_per_image / peak_flops if peak_flops else 0.0
            t_log, step_log = now, step
            row = [step, round(elapsed_before + now - t0, 1), lr_now, l_pix.item(), l_kl.item(),
                   l_perc.item(), l_adv.item(), l_critic.item(), sigma, round(ips, 1), round(mfu, 5), l_div.item(),
                   l_id.item(), l_best.item()]
            writer.writerow(row)
            log_file.flush()
            bar.set_postfix(pix=f"{row[3]:.4f}", kl=f"{row[4]:.3f}", adv=f"{row[6]:.3f}", sig=f"{sigma:.2f}",
                            img_s=f"{ips:.0f}", mfu=f"{mfu:.2%}")
        if main_proc and (step % tc.sample_every == 0 or step == tc.steps):
            save_sample_grid(model, fixed, out_dir / "samples" / f"step_{step:07d}.png")
        out_of_time = max_minutes is not None and (time.time() - t0) / 60 >= max_minutes
        if step % tc.ckpt_every == 0 or step == tc.steps or out_of_time or stop["now"]:
            checkpoint()
        if out_of_time or stop["now"]:
            if main_proc:
                print(f"stopped at step {step} ({'time limit' if out_of_time else 'interrupt'}); --resume continues")
            break
    bar.close()
    if log_file:
        log_file.close()
    bundle = out_dir / "bundle"
    if main_proc:
        bundle = export_bundle(model, run, data, bundle, step, elapsed_before + time.time() - t0, dev)
    if world > 1:
        dist.destroy_process_group()
    return bundle


WARMUP_STEPS = 200


def batch_share(batch_size: int, share: float) -> int:
    """How many of a batch's inputs an extra term (best-of, identity, diversity) sees: ``share`` of
    them, at least one."""
    return max(1, int(batch_size * share))


def prior_samples(model: VarSR, lr: torch.Tensor, mu_l: torch.Tensor, logvar_l: torch.Tensor, k: int,
                  use_bf16: bool) -> torch.Tensor:
    """``(N, K, C, H, W)``: K reparameterised draws from p(z | I_L) per input, through the generator
    (gradients reach the prior's mean and spread as well as G)."""
    n, k = lr.shape[0], max(1, k)
    std = torch.exp(0.5 * logvar_l)
    z = (mu_l[:, None] + std[:, None] * torch.randn(n, k, mu_l.shape[1], device=lr.device)).flatten(0, 1)
    with torch.autocast(lr.device.type, dtype=torch.bfloat16, enabled=use_bf16):
        out = model.generator(lr.repeat_interleave(k, 0), z).float()
    return out.view(n, k, *out.shape[1:])


def extra_generator_passes(tc: TrainConfig, latent_dim: int) -> float:
    """Generator passes per training image beyond the model's own: the prior samples of the best-of,
    identity and diversity terms (a det model reuses its one output for the first two)."""
    if not latent_dim:
        return 0.0
    extra = 0
    if tc.lambda_best_of > 0:
        extra += batch_share(tc.batch_size, tc.best_of_share) * max(1, tc.best_of_samples)
    if tc.lambda_identity > 0:
        extra += batch_share(tc.batch_size, tc.identity_share) * max(1, tc.identity_samples)
    if tc.lambda_diversity > 0:
        extra += 2 * batch_share(tc.batch_size, tc.diversity_share)
    return extra / tc.batch_size


def training_flops_per_image(model: VarSR, cfg, tc: TrainConfig | None = None) -> float:
    """Forward + backward FLOPs of one training image (3x the forward's multiply-adds x 2), measured once,
    with the extra generator passes of ``tc``'s sampling terms (:func:`extra_generator_passes`); the
    frozen LPIPS, critic and face-embedder networks are not counted."""
    from torch.utils.flop_counter import FlopCounterMode

    was = model.training
    dev = next(model.parameters()).device
    hr = torch.zeros(1, cfg.channels, *cfg.hr_size, device=dev)
    lr = torch.zeros(1, cfg.channels, *cfg.lr_size, device=dev)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(lr, hr)
    total = counter.get_total_flops()
    extra = extra_generator_passes(tc, cfg.latent_dim) if tc is not None else 0.0
    if extra:
        with torch.no_grad(), FlopCounterMode(display=False) as gen:
            model.generator(lr, torch.zeros(1, cfg.latent_dim, device=dev))
        total += extra * gen.get_total_flops()
    model.train(was)
    return 3.0 * total


def device_peak_flops(dev: torch.device) -> float:
    """Peak dense bf16 FLOP/s of the device, for MFU (0 when unknown).

    H100/H200: 989 TFLOP/s dense bf16. CPU: cores x 2 AVX-512 FMA units x 32 bf16 lanes x 2 x 2.5 GHz,
    a nominal figure (``VARSR_PEAK_FLOPS`` overrides either).
    """
    env = os.environ.get("VARSR_PEAK_FLOPS")
    if env:
        return float(env)
    if dev.type == "cuda":
        name = torch.cuda.get_device_name(dev)
        return 989e12 if ("H100" in name or "H200" in name) else 312e12 if "A100" in name else 0.0
    return torch.get_num_threads() * 2 * 32 * 2 * 2.5e9


def fit_to_time(tc, done: int, rate: float, remaining_s: float) -> None:
    """Scale the step schedule (steps, adv_start, decay_at) so the rest fits ``remaining_s``.

    ``rate`` is the measured phase-1 speed (steps/s); a phase-2 step (critic + gradient
    penalty) is counted as 1.6 phase-1 steps.
    """
    frac_adv = max(0.0, 1 - tc.adv_start / tc.steps) if tc.lambda_adv > 0 else 0.0
    total = done + int(rate * remaining_s / (1 + 0.6 * frac_adv))
    ratio = max(total, done + 1) / tc.steps
    tc.steps = max(total, done + 1)
    tc.adv_start = int(tc.adv_start * ratio)
    tc.decay_at = int(tc.decay_at * ratio)


def export_bundle(model: VarSR, run: RunConfig, data: ImageSet, folder: Path, step: int, seconds: float,
                  dev: torch.device) -> Path:
    """Write the trained model as a bundle, its config recording data, steps, time and hardware."""
    if dev.type == "cuda":
        hardware = torch.cuda.get_device_name(dev)
    else:
        hardware = f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    cfg = model.config
    cfg.data = data.source
    cfg.training = {
        **({"init_from": run.model.training["init_from"], "init_training": run.model.training["init_training"]}
           if "init_from" in run.model.training else {}),
        "steps": step, "seconds": round(seconds, 1), "hardware": hardware,
        "n_train_images": len(data), "seed": run.train.seed, "train": asdict(run.train),
        "sources": run.data.sources, "random_degradation": run.data.random_degradation,
        "degradation": run.data.degradation or "box",
        "torch": torch.__version__,
    }
    cpu_model = VarSR(cfg)
    cpu_model.load_state_dict({k: v.detach().float().cpu() for k, v in model.state_dict().items()})
    return save_bundle(cpu_model, folder, half=True)  # fp16 storage halves the shipped size


@torch.no_grad()
def save_sample_grid(model: VarSR, hr: torch.Tensor, path: Path, n: int = 4) -> None:
    """Rows: HR, LR (nearest), then ``n`` samples (posterior from E_L) — a quick visual check."""
    was_training = model.training
    model.eval()
    s = model.config.scale
    lr = degrade(hr, s)
    samples = model.sample(lr, n if model.config.latent_dim else 1, seed=0)  # (B, n, C, H, W), eq. 4
    rows = [hr, upsample_nearest(lr, s), *samples.transpose(0, 1)]
    grid = torch.cat([torch.cat(list(r.float().cpu()), dim=-1) for r in rows], dim=-2)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensor_to_pil(grid).resize((grid.shape[-1] * 2, grid.shape[-2] * 2), Image.NEAREST).save(path)
    model.train(was_training)
