"""The trainer: a tiny overfit whose loss falls, checkpoints, resume, and the CLI end to end."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from core.data.imageset import ImageSet
from core.errors import BundleError
from core.model.bundle import load_model
from core.training.run_config import load_run_config
from core.training.train import train
from tests.conftest import REPO

TINY = ["model.width=16", "model.n_res_blocks=1", "model.enc_width=8", "model.critic_width=8",
        "model.latent_dim=8", "train.batch_size=8", "train.log_every=1", "train.sample_every=1000",
        "train.lambda_perceptual=0.0"]


def digits(n: int = 16) -> ImageSet:
    g = torch.Generator().manual_seed(0)
    imgs = torch.zeros(n, 1, 24, 24, dtype=torch.uint8)
    for i in range(n):  # bright bars at varying places: learnable structure
        r = int(torch.randint(2, 20, (1,), generator=g))
        imgs[i, 0, r : r + 3, 4:20] = 255
    return ImageSet(images=imgs, labels=torch.zeros(n, dtype=torch.long), source="bars")


def read_log(run: Path) -> list[dict[str, str]]:
    with open(run / "log.csv") as f:
        return list(csv.DictReader(f))


def test_tiny_overfit_loss_falls(tmp_path: Path) -> None:
    run = load_run_config("digit", TINY + ["train.steps=60", "train.adv_start=1000", "train.lr=0.003"])
    train(run, tmp_path / "run", digits())
    rows = read_log(tmp_path / "run")
    first = np.mean([float(r["pixel"]) for r in rows[:5]])
    last = np.mean([float(r["pixel"]) for r in rows[-5:]])
    assert last < 0.5 * first, (first, last)


def test_checkpoint_resume_continues_where_it_stopped(tmp_path: Path) -> None:
    run = load_run_config("plate-char", TINY + ["train.steps=4", "train.adv_start=2", "train.ckpt_every=2"])
    data = ImageSet(images=torch.randint(0, 256, (16, 1, 16, 8), dtype=torch.uint8), labels=torch.zeros(16).long())
    train(run, tmp_path / "a", data)  # 4 steps straight
    train(run, tmp_path / "b", data, max_minutes=0)  # stops after 1 step with a checkpoint
    assert read_log(tmp_path / "b")[-1]["step"] == "1"
    train(run, tmp_path / "b", data, resume=True)
    assert [r["step"] for r in read_log(tmp_path / "b")] == ["1", "2", "3", "4"]
    a, b = load_model(tmp_path / "a" / "bundle"), load_model(tmp_path / "b" / "bundle")
    assert a.config.training["steps"] == b.config.training["steps"] == 4
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert ka == kb and torch.allclose(va, vb, atol=1e-4), ka


def test_det_config_is_the_same_run_without_latent() -> None:
    vae, det = load_run_config("face-8"), load_run_config("face-8", det=True)
    assert det.model.latent_dim == 0 and det.model.name == "face-8-det"
    assert det.train == vae.train and det.data == vae.data


def write_idx(root: Path, n: int = 40) -> None:
    g = np.random.default_rng(0)
    imgs = (g.random((n, 28, 28)) * 255).astype(np.uint8)
    labels = g.integers(0, 10, n).astype(np.uint8)
    root.mkdir(parents=True)
    (root / "train-images-idx3-ubyte").write_bytes(
        np.array([2051, n, 28, 28], dtype=">i4").tobytes() + imgs.tobytes())
    (root / "train-labels-idx1-ubyte").write_bytes(np.array([2049, n], dtype=">i4").tobytes() + labels.tobytes())


def test_cli_trains_two_steps_then_resumes(tmp_path: Path) -> None:
    write_idx(tmp_path / "data" / "mnist")
    sets = [x for t in TINY + ["train.ckpt_every=1"] for x in ("--set", t)]
    base = [sys.executable, "-m", "core.cli.train", "--config", "digit", "--data-root", str(tmp_path / "data"),
            "--out", str(tmp_path / "run"), *sets]
    r = subprocess.run([*base, "--set", "train.steps=2"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([*base, "--set", "train.steps=3", "--resume"], cwd=REPO, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert "resumed from step 2" in r.stdout
    assert [row["step"] for row in read_log(tmp_path / "run")] == ["1", "2", "3"]
    assert load_model(tmp_path / "run" / "bundle").config.training["steps"] == 3
    bad = subprocess.run([*base[:-len(sets)], "--data-root", str(tmp_path / "nothing")], cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and bad.stderr.strip()


def test_fit_to_time_scales_the_whole_schedule() -> None:
    from core.training.run_config import TrainConfig
    from core.training.train import fit_to_time

    tc = TrainConfig(steps=1000, adv_start=600, decay_at=800, lambda_adv=0.001)
    # 40 % of the schedule is phase 2, whose steps cost 1.6x: 1000 / (1 + 0.6 * 0.4) more steps fit
    fit_to_time(tc, done=200, rate=10.0, remaining_s=100.0)
    assert tc.steps == 200 + int(1000 / 1.24)
    assert tc.adv_start == int(600 * tc.steps / 1000) and tc.decay_at == int(800 * tc.steps / 1000)


def test_init_starts_from_a_bundle(tmp_path: Path) -> None:
    run = load_run_config("digit", TINY + ["train.steps=1", "train.adv_start=1000"])
    first = load_model(train(run, tmp_path / "a", digits()))
    train(run, tmp_path / "b", digits(), init=tmp_path / "a" / "bundle")
    moved = load_model(tmp_path / "b" / "bundle")
    other_seed = load_run_config("digit", TINY + ["train.steps=1", "train.adv_start=1000", "train.seed=1"])
    fresh = load_model(train(other_seed, tmp_path / "c", digits()))
    d_init = sum((p - q).abs().sum() for p, q in zip(first.parameters(), moved.parameters(), strict=True))
    d_fresh = sum((p - q).abs().sum() for p, q in zip(fresh.parameters(), moved.parameters(), strict=True))
    assert d_init < d_fresh  # one step away from where it started, not from a fresh initialisation


def test_init_from_another_input_size_copies_all_but_the_size_dependent_heads(tmp_path: Path) -> None:
    from core.model.varsr import VarSR
    from core.training.train import init_weights

    small = load_run_config("face-16", TINY).model
    src = VarSR(small)
    twelve = load_run_config("face-12", TINY).model
    dst = VarSR(twelve)
    fresh = init_weights(dst, src, twelve)
    assert fresh == ["enc_hr.head.weight", "enc_lr.head.weight"]
    ours, theirs = dst.state_dict(), src.state_dict()
    assert all(torch.equal(ours[k], theirs[k]) for k in ours if k not in fresh)
    assert not torch.equal(ours["enc_lr.head.weight"][:, :10], theirs["enc_lr.head.weight"][:, :10])
    # the generator now answers a 12x12 face with a 48x48 one
    assert dst.sample(torch.rand(1, 3, 12, 12), n=2, seed=0).shape == (1, 2, 3, 48, 48)
    other = load_run_config("face-8", TINY).model  # another scale: refused
    with pytest.raises(BundleError):
        init_weights(VarSR(other), src, other)
