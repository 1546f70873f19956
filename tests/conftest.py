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
    from core.model.config import ModelConfig

    args = dict(DOMAINS[name], name=name, latent_dim=latent_dim, width=16, n_res_blocks=1, enc_width=8,
                critic_width=8)
    args.update(kw)
    return ModelConfig(**args)


@pytest.fixture
def tiny_bundle(tmp_path: Path) -> Path:
    """An untrained, tiny face-8 bundle with two attribute directions."""
    from core.model.bundle import save_bundle
    from core.model.varsr import VarSR

    torch.manual_seed(0)
    m = VarSR(tiny_config("face-8"))
    m.attributes = {"mean/Male": torch.randn(16), "diff/Male": torch.randn(16)}
    return save_bundle(m, tmp_path / "face-8")


@pytest.fixture(scope="module")
def tiny_face_model(tmp_path_factory: pytest.TempPathFactory):
    """A loaded tiny face-8 bundle with one attribute direction, built once per test module (one thread)."""
    import core
    from core.model.bundle import save_bundle
    from core.model.varsr import VarSR

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


# -- a case's models, evidence and a saved case holding every kind of candidate --------------------------
@pytest.fixture
def models_root(tmp_path: Path) -> Path:
    """Tiny untrained face-8 (with attribute directions) and plate-char bundles."""
    from core.model.bundle import save_bundle
    from core.model.varsr import VarSR

    torch.set_num_threads(1)
    root = tmp_path / "models"
    torch.manual_seed(0)
    face = VarSR(tiny_config("face-8"))
    face.attributes = {"mean/Male": torch.randn(16), "diff/Smiling": torch.randn(16)}
    save_bundle(face, root / "face-8")
    save_bundle(VarSR(tiny_config("plate-char")), root / "plate-char")
    return root


@pytest.fixture
def evidence_png(tmp_path: Path) -> Path:
    """A 48x40 evidence image with a face-coloured box, in ``incoming/``."""
    from PIL import Image

    img = Image.new("RGB", (48, 40), (70, 90, 110))
    img.paste((220, 180, 150), (16, 10, 32, 30))
    img.paste((30, 30, 30), (19, 16, 22, 18))
    p = tmp_path / "incoming" / "evidence.png"
    p.parent.mkdir()
    img.save(p)
    return p


@pytest.fixture
def saved_case(models_root: Path, evidence_png: Path, tmp_path: Path):
    """A saved case holding every kind of candidate, each shortlisted: (case, kind -> candidate id)."""
    from core import case as K
    from core.workbench import session as S
    from tests.helpers.cases import do_work

    session = S.Session(models_root)
    case = K.Case.create(tmp_path / "cases" / "CASE-1", session, "Examiner A")
    ids = do_work(session, evidence_png, tmp_path)
    case.save()
    return case, ids
