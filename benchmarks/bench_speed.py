"""Speed benchmark: candidates per second and training images per second, fast vs plain fp32.

Each setting runs in its own subprocess so the allocator tuning of the fast path cannot leak
into the baseline. "plain" is fp32, contiguous tensors, glibc's default allocator; "fast" is
what the app and trainer use (bf16 autocast where the CPU has it, channels_last, the allocator
thresholds of core.perf, all cores). Prints a table of times and ratios measured in this run.

    python -m benchmarks.bench_speed [--models face-8,face-16,digit,plate-char] [--reps 7] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

COUNTS = (1, 16, 64, 256)


def _build(name: str):
    """The bundled model when installed, else the architecture of its training config (random weights)."""
    import core
    from core.model.varsr import VarSR
    from core.training.run_config import load_run_config

    if name in core.list_models():
        return core.load_model(name), "bundled weights"
    return VarSR(load_run_config(name).model).eval(), "random weights (no bundle installed)"


def _child(name: str, mode: str, reps: int, train_steps: int) -> dict:
    import torch

    from core.perf import tune_cpu
    from core.training import losses

    if mode == "fast":
        tune_cpu()
    model, weights = _build(name)
    model.fast = mode == "fast"
    cfg = model.config
    lr = torch.rand(cfg.channels, cfg.lr_size[1], cfg.lr_size[0])
    out: dict = {"model": name, "mode": mode, "weights": weights, "threads": torch.get_num_threads(), "sample_s": {}}
    for n in COUNTS:
        model.sample(lr, n, seed=0)  # warm-up (kernel selection, allocator)
        times = []
        for r in range(reps):
            t = time.perf_counter()
            model.sample(lr, n, seed=r)
            times.append(time.perf_counter() - t)
        out["sample_s"][n] = statistics.median(times)
    # training throughput: one optimiser step on a batch of 64, as core.training.train does it
    model.train()
    opt = torch.optim.Adam(model.parameters(), 1e-4)
    w, h = cfg.hr_size
    hr = torch.rand(64, cfg.channels, h, w)
    lr_b = model.degrade(hr)
    fast = mode == "fast"
    if fast:
        model.to(memory_format=torch.channels_last)
        hr, lr_b = hr.contiguous(memory_format=torch.channels_last), lr_b.contiguous(memory_format=torch.channels_last)
    from core.model.varsr import cpu_has_bf16

    times = []
    for i in range(train_steps + 1):
        t = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=fast and cpu_has_bf16()):
            o = model(lr_b, hr)
        loss = losses.pixel_loss(o["sr"], hr)
        if cfg.latent_dim:
            loss = loss + 0.01 * losses.kl_divergence(o["mu_h"], o["logvar_h"], o["mu_l"], o["logvar_l"])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i:
            times.append(time.perf_counter() - t)
    out["train_images_per_s"] = 64 / statistics.median(times)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_speed", description=__doc__.splitlines()[0])
    p.add_argument("--models", default="face-8,face-16,digit,plate-char")
    p.add_argument("--reps", type=int, default=7)
    p.add_argument("--train-steps", type=int, default=5)
    p.add_argument("--json", type=Path)
    p.add_argument("--child", nargs=2, metavar=("MODEL", "MODE"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(_child(args.child[0], args.child[1], args.reps, args.train_steps)))
        return 0
    results = []
    for name in args.models.split(","):
        pair = {}
        for mode in ("plain", "fast"):
            cmd = [sys.executable, "-m", "benchmarks.bench_speed", "--child", name, mode, "--reps", str(args.reps),
                   "--train-steps", str(args.train_steps)]
            r = subprocess.run(cmd, capture_output=True, text=True, check=True)
            pair[mode] = json.loads(r.stdout.strip().splitlines()[-1])
        results.append(pair)
        f, b = pair["fast"], pair["plain"]
        print(f"\n{name} ({f['weights']}, {f['threads']} threads)")
        print(f"{'candidates':>10} {'plain fp32 s':>13} {'fast s':>9} {'speed-up':>9}")
        for n in COUNTS:
            pf, ff = b["sample_s"][str(n)], f["sample_s"][str(n)]  # JSON keys are strings
            print(f"{n:>10} {pf:>13.4f} {ff:>9.4f} {pf / ff:>8.2f}x")
        print(f"{'train img/s':>10} {b['train_images_per_s']:>13.1f} {f['train_images_per_s']:>9.1f} "
              f"{f['train_images_per_s'] / b['train_images_per_s']:>8.2f}x")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
