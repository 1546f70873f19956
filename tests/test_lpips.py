"""LPIPS: behaviour of the converted network and safety of the converter's unpickler."""

from __future__ import annotations

import importlib.util
import math
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from core.errors import BundleError
from core.model.degrade import gaussian_blur
from core.nets.lpips import LPIPS, load_lpips

ROOT = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def lpips() -> LPIPS:
    return load_lpips()


def textured(n: int = 2, c: int = 3, h: int = 64, w: int = 64, seed: int = 0) -> torch.Tensor:
    """Real-ish images: oriented gratings, a checkerboard, soft blobs and fine noise."""
    g = torch.Generator().manual_seed(seed)
    ys, xs = torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32)
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    out = []
    for _ in range(n):
        img = torch.zeros(c, h, w)
        for ch in range(c):
            a, f = torch.rand(2, generator=g) * torch.tensor([math.pi, 0.6]) + torch.tensor([0, 0.2])
            img[ch] += 0.25 * torch.sin(f * (xx * torch.cos(a) + yy * torch.sin(a)))
            img[ch] += 0.15 * (((xx // 4 + yy // 4) % 2) * 2 - 1)
            cx, cy = torch.rand(2, generator=g) * torch.tensor([w, h])
            img[ch] += 0.3 * torch.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * (h / 6) ** 2))
        img += 0.05 * torch.randn(c, h, w, generator=g)
        out.append((img + 0.5).clamp(0, 1))
    return torch.stack(out)


def test_identical_is_zero(lpips: LPIPS) -> None:
    x = textured(3)
    with torch.inference_mode():
        d = lpips(x, x.clone())
    assert d.shape == (3,)
    assert d.abs().max().item() < 1e-6


def test_grows_with_blur(lpips: LPIPS) -> None:
    x = textured(2)
    with torch.inference_mode():
        d = [lpips(x, gaussian_blur(x, s)).mean().item() for s in (0.5, 1.0, 2.0, 3.0)]
    assert all(a < b for a, b in zip(d, d[1:], strict=False)), d
    assert d[0] > 0


@pytest.mark.parametrize("shape", [(4, 3, 64, 64), (5, 1, 24, 24), (3, 1, 16, 8), (2, 3, 48, 80)])
def test_shapes(lpips: LPIPS, shape: tuple[int, ...]) -> None:
    x = textured(shape[0], *shape[1:], seed=1)
    y = textured(shape[0], *shape[1:], seed=2)
    with torch.inference_mode():
        d = lpips(x, y)
        feats = lpips.embed(x)
    assert d.shape == (shape[0],)
    assert torch.isfinite(d).all() and (d > 0).all()
    assert [f.shape[1] for f in feats] == [64, 192, 384, 256, 256]
    assert all(f.shape[0] == shape[0] for f in feats)


def test_grey_equals_repeated_rgb(lpips: LPIPS) -> None:
    x, y = textured(2, 1, 24, 24, seed=3), textured(2, 1, 24, 24, seed=4)
    with torch.inference_mode():
        grey = lpips(x, y)
        rgb = lpips(x.repeat(1, 3, 1, 1), y.repeat(1, 3, 1, 1))
    torch.testing.assert_close(grey, rgb)


def test_embed_compare_matches_forward(lpips: LPIPS) -> None:
    x, y = textured(3, seed=5), textured(3, seed=6)
    with torch.inference_mode():
        split = lpips.compare(lpips.embed(x), lpips.embed(y))
        torch.testing.assert_close(split, lpips(x, y), atol=1e-5, rtol=1e-5)


def test_missing_weights_is_bundle_error(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="convert_lpips"):
        load_lpips(tmp_path / "nope.safetensors")


# --- the converter -------------------------------------------------------------------------------
def _converter():
    spec = importlib.util.spec_from_file_location("convert_lpips", ROOT / "tools" / "convert_lpips.py")
    mod = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(mod)
    return mod


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_restricted_unpickler_refuses_os_system(tmp_path: Path) -> None:
    conv = _converter()
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"AlexNet_0": {"x": _Evil(marker)}})
    with pytest.raises(pickle.UnpicklingError, match="system"):
        conv.restricted_loads(payload)
    assert not marker.exists()


def test_restricted_unpickler_loads_arrays_but_not_object_dtype() -> None:
    conv = _converter()
    tree = {"a": {"kernel": np.arange(6, dtype=np.float32).reshape(2, 3)}}
    back = conv.restricted_loads(pickle.dumps(tree, protocol=3))
    np.testing.assert_array_equal(back["a"]["kernel"], tree["a"]["kernel"])
    with pytest.raises(pickle.UnpicklingError):
        conv.restricted_loads(pickle.dumps(np.array([1, "x"], dtype=object), protocol=3))
