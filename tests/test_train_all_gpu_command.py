"""The prepared GPU command (tools/train_all_parallel.sh) runs end to end on the CPU with a few steps.

A lent GPU machine is rare and short: the command must not fail on arrival. Here it trains face-8
and its det baseline for two steps each from a tiny packed set and returns the bundles as tars.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import torch

from core.data.imageset import ImageSet
from core.data.pack import save_packed

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_prepared_command_trains_and_returns_bundles(tmp_path: Path) -> None:
    g = torch.Generator().manual_seed(0)
    faces = ImageSet(images=(torch.rand(12, 3, 64, 64, generator=g) * 255).to(torch.uint8),
                     labels=torch.full((12,), -1, dtype=torch.int64), ids=[f"f{i}" for i in range(12)],
                     groups=[f"g{i}" for i in range(12)], source="synthetic")
    packs = tmp_path / "packs"
    packs.mkdir()
    save_packed(faces, packs / "faces64.npz")
    env = {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO),
           "EXTRA_SET": "--set train.steps=2 --set train.batch_size=4 --set train.log_every=1 "
                        "--set train.sample_every=2 --set train.lambda_perceptual=0"}
    out = tmp_path / "out"
    proc = subprocess.run(["bash", str(REPO / "tools" / "train_all_parallel.sh"), str(packs), str(out), "1",
                           "face-8"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr + "".join(
        p.read_text() for p in (tmp_path / "runs").glob("*.log"))
    tars = sorted(out.glob("runs_*.tar"))
    assert tars
    names: set[str] = set()
    for t in tars:  # the runs' tars are concatenated (tar -A) into at most 8 returnable parts
        with tarfile.open(t) as tf:
            names |= set(tf.getnames())
    for run in ("face-8", "face-8-det"):
        assert f"{run}/bundle/model.safetensors" in names and f"{run}/log.csv" in names
        rows = list(csv.DictReader(open(tmp_path / "runs" / run / "log.csv")))
        assert rows and float(rows[-1]["images_per_s"]) > 0 and "mfu" in rows[-1]
