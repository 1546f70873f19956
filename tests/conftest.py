"""Shared fixtures: tiny bundles and paths; nothing here needs ../shared/data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

DOMAINS = {
    "face-8": dict(domain="face", channels=3, lr_size=(8, 8), scale=8, up_widths=(16, 16, 16)),
    "face-16": dict(domain="face", channels=3, lr_size=(16, 16), scale=4, up_widths=(16, 16)),
    "digit": dict(domain="digit", channels=1, lr_size=(6, 6), scale=4, up_widths=(16, 16)),
    "plate-char": dict(domain="plate-char", channels=1, lr_size=(2, 4), scale=4, up_widths=(16, 16)),
}


def tiny_config(name: str = "face-8", latent_dim: int = 16, **kw):
    from core.config import ModelConfig

    args = dict(DOMAINS[name], name=name, latent_dim=latent_dim, width=16, n_res_blocks=1, enc_width=8,
                critic_width=8)
    args.update(kw)
    return ModelConfig(**args)


@pytest.fixture
def tiny_bundle(tmp_path: Path) -> Path:
    """An untrained, tiny face-8 bundle with two attribute directions."""
    from core.bundle import save_bundle
    from core.model import VarSR

    torch.manual_seed(0)
    m = VarSR(tiny_config("face-8"))
    m.attributes = {"mean/Male": torch.randn(16), "diff/Male": torch.randn(16)}
    return save_bundle(m, tmp_path / "face-8")


@pytest.fixture(scope="module")
def tiny_face_model(tmp_path_factory: pytest.TempPathFactory):
    """A loaded tiny face-8 bundle with one attribute direction, built once per test module (one thread)."""
    import core
    from core.bundle import save_bundle
    from core.model import VarSR

    torch.manual_seed(0)
    torch.set_num_threads(1)
    m = VarSR(tiny_config("face-8"))
    m.attributes = {"mean/Male": torch.randn(16)}
    return core.load_model(save_bundle(m, tmp_path_factory.mktemp("bundle") / "face-8"))


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread: tiny workloads only lose to thread sync on a shared, busy CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def requires_shared_data(sub: str = "") -> pytest.MarkDecorator:
    path = SHARED_DATA / sub
    return pytest.mark.skipif(not path.exists(), reason=f"real data not present at ../shared/data/{sub}")
