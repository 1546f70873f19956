"""The camera model of degradation: named, seeded conditions and the consistency operators."""

from __future__ import annotations

import random

import pytest
import torch

from core.model.camera import (
    BLUR,
    CAMERA,
    CONDITIONS,
    MIXTURE,
    CameraParams,
    apply_camera,
    area_matrix,
    blur_kernel,
    condition,
    degrade_condition,
    nominal_degrade,
    project_nominal,
)
from core.model.degrade import degrade, project_consistent


def smooth_faces(n: int, size: int = 64, seed: int = 0, base: int = 8) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, base, base, generator=g)
    return torch.nn.functional.interpolate(low, size=size, mode="bicubic", align_corners=False).clamp(0, 1)


def test_ideal_is_exactly_the_box_filter() -> None:
    hr = smooth_faces(4)
    assert torch.equal(degrade_condition(hr, (16, 16), "ideal", 0), degrade(hr, 4))
    assert torch.equal(degrade_condition(hr, (8, 8), "ideal", 3), degrade(hr, 8))


def test_conditions_are_seeded_and_differ_between_draws() -> None:
    hr = smooth_faces(6)
    a = degrade_condition(hr, (16, 16), "camera", 7)
    assert torch.equal(a, degrade_condition(hr, (16, 16), "camera", 7))
    assert not torch.equal(a, degrade_condition(hr, (16, 16), "camera", 8))
    assert a.shape == (6, 3, 16, 16) and a.min() >= 0 and a.max() <= 1
    assert torch.equal(a, a.mul(255).round().div(255)), "camera frames are 8-bit"


def test_draws_never_enlarge_and_stay_in_range() -> None:
    rng = random.Random(0)
    for _ in range(300):
        p = MIXTURE.draw(rng)
        assert p.ideal or 1.0 <= p.capture <= 1.25
        assert abs(p.shift[0]) <= 0.5 and abs(p.shift[1]) <= 0.5
        assert 0 <= p.jpeg_offset[0] < 8 and 0 <= p.jpeg_offset[1] < 8
        assert p.jpeg_quality == 0 or 30 <= p.jpeg_quality <= 95
    kinds = {CAMERA.draw(random.Random(s)).blur for s in range(200)}
    assert {"gaussian", "defocus", "motion"} <= kinds
    with pytest.raises(ValueError, match="known: ideal"):
        condition("fisheye")
    assert set(CONDITIONS) == {"ideal", "blur", "camera", "mixture", "balanced"}


def test_blur_condition_matches_its_nominal_operator() -> None:
    hr = smooth_faces(4)
    lr = degrade_condition(hr, (16, 16), "blur", 0)
    nominal = nominal_degrade(hr, 4, BLUR.nominal_sigma)
    assert (lr - nominal).abs().max() < 2.5 / 255  # kernel truncation and 8-bit rounding only
    assert (lr - degrade(hr, 4)).abs().max() > 5 / 255  # and it is not the box filter


def test_area_matrix_is_the_box_filter_and_shifts_by_fractions() -> None:
    box = area_matrix(8, 2, 0.0, 4.0)
    assert torch.allclose(box, torch.tensor([[0.25] * 4 + [0.0] * 4, [0.0] * 4 + [0.25] * 4]))
    half = area_matrix(8, 1, 2.0, 4.0)  # a pixel straddling two boxes
    assert torch.allclose(half, torch.tensor([[0, 0, 0.25, 0.25, 0.25, 0.25, 0, 0]]))
    frac = area_matrix(4, 1, 0.5, 2.0)  # fractional footprint: half of pixel 0, pixel 1, half of pixel 2
    assert torch.allclose(frac, torch.tensor([[0.25, 0.5, 0.25, 0.0]]))


def test_sub_pixel_shift_moves_the_sampling_grid() -> None:
    ramp = torch.arange(64.0).div(63).expand(1, 3, 64, 64).contiguous()
    still = apply_camera(ramp, (16, 16), [CameraParams()])
    moved = apply_camera(ramp, (16, 16), [CameraParams(shift=(0.0, 0.5))])
    # half an LR pixel to the right on a ramp: about half an LR step brighter, away from the border
    step = 4 / 63
    assert torch.allclose((moved - still)[..., 2:-2], torch.full_like(still[..., 2:-2], step / 2), atol=1.5 / 255)


def test_kernels_are_normalised_and_shaped() -> None:
    for kind, size in (("gaussian", 0.8), ("defocus", 1.0), ("motion", 2.0)):
        k = blur_kernel(kind, size, 0.0, 4.0)
        assert abs(float(k.sum()) - 1) < 1e-5
    motion = blur_kernel("motion", 2.0, 0.0, 4.0)  # horizontal streak: all weight on the middle row
    mid = motion.shape[0] // 2
    assert float(motion[mid].sum()) > 0.99
    assert torch.equal(blur_kernel("none", 1.0, 0.0, 4.0), torch.ones(1, 1))


def test_jpeg_block_grid_depends_on_the_frame_offset() -> None:
    hr = smooth_faces(1, base=4) * 0.5 + 0.25
    a = apply_camera(hr, (16, 16), [CameraParams(jpeg_quality=50, jpeg_offset=(0, 0))])
    b = apply_camera(hr, (16, 16), [CameraParams(jpeg_quality=50, jpeg_offset=(3, 5))])
    clean = apply_camera(hr, (16, 16), [CameraParams()])
    assert not torch.equal(a, b)
    assert 0 < (a - clean).abs().mean() < 0.05


def test_noise_level_is_what_was_drawn() -> None:
    grey = torch.full((1, 3, 64, 64), 0.5)
    noisy = apply_camera(grey, (16, 16), [CameraParams(noise_std=0.05, noise_seed=1)])
    assert abs(float(noisy.std()) - 0.05) < 0.01


def test_size_jitter_reduces_a_larger_capture_to_the_model_input() -> None:
    hr = smooth_faces(2, base=4)
    out = apply_camera(hr, (8, 8), [CameraParams(capture=1.25), CameraParams(capture=1.0)])
    assert out.shape == (2, 3, 8, 8)
    assert (out[0] - degrade(hr[:1], 8)[0]).abs().mean() < 0.03  # still the same face, resampled


def test_projection_onto_the_nominal_operator() -> None:
    hr = smooth_faces(2) * 0.6 + 0.2  # the evidence of a face that needs no saturated pixel
    lr = nominal_degrade(hr, 4, 0.6)
    sr = (hr + 0.05 * torch.randn(hr.shape, generator=torch.Generator().manual_seed(0))).clamp(0.05, 0.95)
    out = project_nominal(sr, lr, 4, 0.6)
    assert (nominal_degrade(out, 4, 0.6) - lr).abs().max() < 1e-5
    assert (out - sr).abs().mean() < (hr - sr).abs().mean() + 0.01  # a small move, not a replacement
    box_lr = degrade(hr, 4)
    assert torch.equal(project_nominal(sr, box_lr, 4, 0.0), project_consistent(sr, box_lr, 4))
