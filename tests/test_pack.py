"""Packed training sets: lossless raw round trip, lossy WebP within tolerance, no pickle."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from core.data.imageset import ImageSet
from core.data.pack import load_packed, save_packed
from core.errors import DataError


def sample_set(channels: int) -> ImageSet:
    g = torch.Generator().manual_seed(0)
    base = torch.linspace(0, 255, 32).view(1, 1, 1, 32).expand(6, channels, 32, 32)
    imgs = (base + torch.randint(-8, 8, (6, channels, 32, 32), generator=g)).clamp(0, 255).to(torch.uint8)
    attrs = torch.tensor([[1, -1], [0, 1], [1, 1], [-1, -1], [1, 0], [0, 0]], dtype=torch.int8)
    return ImageSet(images=imgs, labels=torch.arange(6), classes=[str(i) for i in range(6)], attrs=attrs,
                    attr_names=["Male", "Young"], ids=[f"img{i}.jpg" for i in range(6)],
                    groups=[f"id{i // 2}" for i in range(6)], skipped=2, source="unit-test")


@pytest.mark.parametrize("channels", [1, 3])
def test_raw_round_trip_is_exact(tmp_path: Path, channels: int) -> None:
    s = sample_set(channels)
    save_packed(s, tmp_path / "s.npz")
    t = load_packed(tmp_path / "s.npz")
    assert torch.equal(t.images, s.images) and torch.equal(t.labels, s.labels) and torch.equal(t.attrs, s.attrs)
    assert (t.classes, t.attr_names, t.ids, t.groups, t.skipped, t.source) == (
        s.classes, s.attr_names, s.ids, s.groups, s.skipped, s.source)


def test_lossy_round_trip_stays_close(tmp_path: Path) -> None:
    s = sample_set(3)
    save_packed(s, tmp_path / "s.npz", quality=90)
    t = load_packed(tmp_path / "s.npz")
    assert t.images.shape == s.images.shape
    mse = ((t.images.float() - s.images.float()) ** 2).mean()
    assert 10 * torch.log10(255**2 / mse) > 30  # dB


def test_garbage_and_object_arrays_are_refused(tmp_path: Path) -> None:
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError):
        load_packed(tmp_path / "bad.npz")
    np.savez(tmp_path / "obj.npz", version=np.array(1), meta=np.array([{"a": 1}], dtype=object))
    with pytest.raises(DataError):
        load_packed(tmp_path / "obj.npz")
