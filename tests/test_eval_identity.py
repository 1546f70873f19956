"""``identity_best`` in ``varsr-eval``: the embedder hook, the bundled dlib embedder for face models,
``--no-identity``, and the JSON meta that says what the number is."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from core.data.imageset import ImageSet
from core.evaluation.evaluate import evaluate
from core.nets.lpips import load_lpips
from tests.conftest import tiny_config

pytestmark = pytest.mark.usefixtures("one_thread")


def _face_bundles(root: Path) -> Path:
    from core.model.bundle import save_bundle
    from core.model.varsr import VarSR

    torch.manual_seed(0)
    save_bundle(VarSR(tiny_config("face-8")), root / "face-8")
    save_bundle(VarSR(dataclasses.replace(tiny_config("face-8", latent_dim=0), name="face-8-det")), root / "face-8-det")
    return root / "face-8"


def _faces(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(rng.integers(60, 200, (n, 1, 1, 3)) + rng.normal(0, 30, (n, 64, 64, 3)), 0, 255).astype(np.uint8)


class ColourEmbedder:
    """A tiny stand-in: per-channel means and spreads."""

    name = "colour"
    version = "v0"

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x.mean((2, 3)), x.std((2, 3))], 1) + 0.1


def test_identity_hook_with_a_tiny_embedder(tmp_path: Path) -> None:
    import core

    model = core.load_model(_face_bundles(tmp_path))
    data = ImageSet(images=torch.from_numpy(_faces(3)).permute(0, 3, 1, 2).contiguous(), labels=torch.full((3,), -1),
                    source="fixture")
    r = evaluate(model, data, n_samples=3, lpips=load_lpips(), embedder=ColourEmbedder(), batch=2)
    for name in ("varsr", "bicubic"):
        v = r["methods"][name]["identity_best"]
        assert v is not None and math.isfinite(v) and 0 <= v <= 2, (name, v)
    meta = r["meta"]["identity"]
    assert meta["embedder"] == "colour" and "1 - cos" in meta["metric"] and meta["seconds"] >= 0
    r = evaluate(model, data, n_samples=3, lpips=load_lpips(), batch=2)
    assert r["methods"]["varsr"]["identity_best"] is None and r["meta"]["identity"] is None


def test_cli_uses_the_bundled_embedder_for_faces(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from core.cli.eval import main

    monkeypatch.setattr("core.perf.tune_cpu", lambda: None)
    bundle = _face_bundles(tmp_path / "models")
    root = tmp_path / "faces"
    root.mkdir()
    for i, a in enumerate(_faces(3, seed=1)):
        Image.fromarray(a).save(root / f"face{i}.png")
    base = ["--model", str(bundle), "--dataset", "folder", "--root", str(root), "--split", "all",
            "--n-samples", "2", "--quiet"]
    assert main(base + ["--json", str(tmp_path / "r.json")]) == 0
    r = json.loads((tmp_path / "r.json").read_text())
    assert r["meta"]["identity"]["embedder"] == "dlib-face-resnet"
    assert len(r["meta"]["identity"]["weights_sha256"]) == 64
    for name in ("varsr", "det", "bicubic"):
        v = r["methods"][name]["identity_best"]
        assert v is not None and math.isfinite(v) and 0 <= v <= 2, (name, v)
    assert "Identity (1 - cos)" in capsys.readouterr().out
    assert main(base + ["--json", str(tmp_path / "r2.json"), "--no-identity"]) == 0
    r2 = json.loads((tmp_path / "r2.json").read_text())
    assert r2["meta"]["identity"] is None
    assert all(m["identity_best"] is None for m in r2["methods"].values())
