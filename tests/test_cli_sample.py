"""varsr-sample: candidates, manifest and metadata; one clear line and exit 2 on bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from core.cli.sample import main
from core.images import sha256_file
from core.model.degrade import RandomDegradation, degrade
from tests.conftest import REPO


def test_writes_candidates_and_manifest(tiny_bundle: Path, tmp_path: Path) -> None:
    src = tmp_path / "crop.png"
    Image.fromarray((np.random.default_rng(0).random((24, 24, 3)) * 255).astype(np.uint8)).save(src)
    assert main(["--model", str(tiny_bundle), "-n", "3", "--seed", "5", "--out", str(tmp_path / "o"), str(src)]) == 0
    m = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert m["input"]["sha256"] == sha256_file(src) and m["seed"] == 5 and m["n"] == 3
    assert [c["file"] for c in m["candidates"]] == [f"candidate_{i:03d}.png" for i in range(3)]
    assert "not evidence" in m["notice"]
    img = Image.open(tmp_path / "o" / "candidate_000.png")
    assert img.size == (64, 64) and "not evidence" in img.text["Description"]
    assert len(m["candidates"][0]["z"]) == 16
    # the same seed reproduces the same files
    assert main(["--model", str(tiny_bundle), "-n", "3", "--seed", "5", "--out", str(tmp_path / "p"), str(src)]) == 0
    for i in range(3):
        name = f"candidate_{i:03d}.png"
        assert sha256_file(tmp_path / "o" / name) == sha256_file(tmp_path / "p" / name)


def test_candidates_are_drawn_at_the_models_calibrated_temperature(tiny_bundle: Path, tmp_path: Path) -> None:
    src = tmp_path / "crop.png"
    Image.fromarray((np.random.default_rng(0).random((24, 24, 3)) * 255).astype(np.uint8)).save(src)
    cfg = json.loads((tiny_bundle / "config.json").read_text())
    cfg["sample_temperature"] = 3.0
    (tiny_bundle / "config.json").write_text(json.dumps(cfg))
    assert main(["--model", str(tiny_bundle), "-n", "2", "--out", str(tmp_path / "o"), str(src)]) == 0
    assert json.loads((tmp_path / "o" / "manifest.json").read_text())["temperature"] == 3.0
    # an explicit --temperature wins, and gives other candidates
    args = ["--model", str(tiny_bundle), "-n", "2", "--temperature", "1", "--out", str(tmp_path / "p"), str(src)]
    assert main(args) == 0
    assert json.loads((tmp_path / "p" / "manifest.json").read_text())["temperature"] == 1.0
    assert sha256_file(tmp_path / "o" / "candidate_001.png") != sha256_file(tmp_path / "p" / "candidate_001.png")


def test_det_output_is_written_beside_the_candidates(tiny_bundle: Path, tmp_path: Path) -> None:
    from core.model.bundle import save_bundle
    from core.model.varsr import VarSR
    from core.search.faces import read_candidate_folder
    from tests.conftest import tiny_config

    det_cfg = tiny_config("face-8", latent_dim=0)
    det_cfg.name = "face-8-det"
    save_bundle(VarSR(det_cfg), tiny_bundle.parent / "face-8-det")
    src = tmp_path / "crop.png"
    Image.fromarray((np.random.default_rng(1).random((24, 24, 3)) * 255).astype(np.uint8)).save(src)
    assert main(["--model", str(tiny_bundle), "-n", "2", "--out", str(tmp_path / "o"), str(src)]) == 0
    m = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert m["det"]["file"] == "det.png" and m["det"]["model"] == "face-8-det"
    ids, images = read_candidate_folder(tmp_path / "o")  # a face search then uses det + the candidates
    assert ids == ["candidate_000.png", "candidate_001.png", "det.png"] and images.shape[0] == 3
    assert main(["--model", str(tiny_bundle), "-n", "2", "--det", "none", "--out", str(tmp_path / "p"), str(src)]) == 0
    assert not (tmp_path / "p" / "det.png").exists()
    assert "det" not in json.loads((tmp_path / "p" / "manifest.json").read_text())


@pytest.mark.parametrize("content", [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n\x00\x00truncated"])
def test_bad_input_is_one_line_and_exit_2(tiny_bundle: Path, tmp_path: Path, content: bytes) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(content)
    r = subprocess.run([sys.executable, "-m", "core.cli.sample", "--model", str(tiny_bundle), "--out",
                        str(tmp_path / "o"), str(bad)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o" / "manifest.json").exists()


def test_missing_model_is_one_line(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "core.cli.sample", "--model", "no-such", "--out", str(tmp_path),
                        str(tmp_path / "x.png")], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "no model bundle" in r.stderr and "Traceback" not in r.stderr


def test_random_degradation_is_reproducible_and_differs_from_clean() -> None:
    import random

    hr = torch.rand(4, 3, 32, 32)
    deg = RandomDegradation(scale=4, p=1.0)
    a, b = deg(hr, random.Random(1)), deg(hr, random.Random(1))
    assert a.shape == (4, 3, 8, 8) and torch.equal(a, b)
    assert not torch.allclose(a, degrade(hr, 4), atol=1e-3)
    assert 0 <= a.min() and a.max() <= 1
