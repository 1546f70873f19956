"""The encoder's out-of-distribution score (core.workbench.ood) with the shipped face models and their
references, and the framing helpers (core.workbench.framing): the face frame's eyes, shifted regions and
the eye-shift sensitivity."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from core.model.bundle import load_model
from core.model.degrade import degrade
from core.workbench import framing, ood
from core.workbench.evidence import Region
from tests.conftest import REPO, SHARED_DATA, requires_shared_data

SHIPPED = REPO / "resources" / "models"


@pytest.fixture(scope="module")
def face8():
    if not (SHIPPED / "face-8" / ood.OOD_FILE).is_file():
        pytest.skip("the shipped face-8 has no ood.json (tools/measure_ood_reference.py writes it)")
    model = load_model(SHIPPED / "face-8")
    model.eval()
    return model, ood.load_reference(model)


def _flat(colour: tuple[float, float, float], size: int = 8) -> torch.Tensor:
    return torch.tensor(colour)[:, None, None].expand(3, size, size).clone()


def test_the_shipped_reference_matches_the_weights_and_flags_flat_and_noise_crops(face8):
    model, ref = face8
    assert ref is not None and ref.weights_sha256 == model.weights_sha256 and len(ref.held_out) >= 100
    for name, lr in (("grey", _flat((0.5, 0.5, 0.5))), ("wall", _flat((0.62, 0.55, 0.48))),
                     ("noise", torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(1)))):
        s = ood.score_lr(model, ref, lr)
        assert s.unusual, (name, s)
        assert s.text().startswith("\u26a0")


@requires_shared_data("utkface")
def test_real_faces_score_better_than_flat_or_noise_crops(face8):
    from core.data.utkface import load_utkface

    model, ref = face8
    # faces the reference did not see (it took the first 400 of the test split)
    hr = load_utkface(SHARED_DATA / "utkface", split="test", size=64, limit=460).float_images()[400:]
    faces = [ood.score_lr(model, ref, lr) for lr in degrade(hr, 8)]
    flagged = sum(f.unusual for f in faces) / len(faces)
    assert flagged <= 0.1  # a warning for a few real faces at most
    noise = torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(2))
    worst_odd = min(ood.score_lr(model, ref, lr).unlikeness
                    for lr in (_flat((0.5, 0.5, 0.5)), _flat((0.62, 0.55, 0.48)), noise))
    median_face = sorted(f.unlikeness for f in faces)[len(faces) // 2]
    assert worst_odd > median_face and worst_odd >= ood.WARN_PERCENTILE


def test_a_reference_round_trips_and_is_refused_for_other_weights(tiny_face_model, tmp_path: Path):
    model = tiny_face_model
    lrs = torch.rand(40, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    ref = ood.measure_reference(model, lrs[:20], lrs[20:], {"data": "random"}, k=4)
    model.bundle_path, model.weights_sha256 = tmp_path, "a" * 64
    ref.weights_sha256 = "a" * 64
    ood.save_reference(ref, tmp_path)
    back = ood.load_reference(model)
    assert back is not None and back.components.shape == (4, 2 * model.config.latent_dim)
    assert ood.score_lr(model, back, lrs[0]).score == pytest.approx(ood.score_lr(model, ref, lrs[0]).score, rel=1e-4)
    model.weights_sha256 = "b" * 64
    assert ood.load_reference(model) is None  # measured for other weights
    (tmp_path / ood.OOD_FILE).write_text("{not json")
    model.weights_sha256 = "a" * 64
    assert ood.load_reference(model) is None


def test_expected_eyes_and_shifted_regions():
    left, right = framing.expected_eyes(Region.from_box(16, 10, 32, 30), (48, 40))
    assert left == pytest.approx((16 + 19.5 / 64 * 16, 10 + 18.6 / 64 * 20))
    assert right == pytest.approx((16 + 44.5 / 64 * 16, 10 + 18.6 / 64 * 20))
    assert framing.expected_eyes(None, (64, 64)) == ((19.5, 18.6), (44.5, 18.6))
    assert framing.expected_eyes(Region("eyes", eyes=((1, 1), (5, 1))), (10, 10)) is None
    eyes = Region("eyes", eyes=((10.0, 12.0), (20.0, 12.0)))
    assert framing.shifted(eyes, (40, 40), 1, 0).eyes == ((11.0, 12.0), (21.0, 12.0))
    assert framing.shifted(None, (40, 30), 0, -1).box == (0, -1, 40, 29)


def test_eye_shift_sensitivity_compares_each_shift_with_its_twin(tiny_face_model):
    from PIL import Image

    img = Image.new("RGB", (48, 40), (70, 90, 110))
    img.paste((220, 180, 150), (16, 10, 32, 30))
    img.paste((30, 30, 30), (19, 16, 22, 18))
    region = Region.from_box(14, 8, 34, 30)
    from core.workbench.evidence import crop_region
    from core.workbench.preprocess import prepare_lr

    base = prepare_lr(crop_region(img, region), tiny_face_model.config)[0]
    shifted = framing.jitter_inputs(img, region, tiny_face_model)
    assert [sh.name for sh in shifted] == ["right", "left", "down", "up"]
    assert shifted[0].offset == pytest.approx((64 / 20, 0.0))  # 1 px of a 20 px crop is 3.2 px of the output
    steps: list[tuple[int, int]] = []
    s = framing.eye_shift_sensitivity(tiny_face_model, base, shifted, n=4, seed=3,
                                      progress=lambda i, n: steps.append((i, n)))
    assert set(s.per_shift) == {"right", "left", "down", "up"} and steps[-1] == (5, 5)
    assert all(v >= 0 for v in s.per_shift.values()) and s.between > 0
    same = framing.eye_shift_sensitivity(tiny_face_model, base, [framing.ShiftedInput("none", base)], n=4, seed=3)
    assert same.per_shift["none"] == pytest.approx(0.0, abs=1e-4)  # the twin of itself: no change
    assert "Eye-shift" in s.text() and "undoing the shift" in s.detail()


def test_the_shift_itself_is_undone_before_comparing():
    base = torch.zeros(1, 1, 8, 8)
    base[..., 2:5, 3:6] = 1.0  # a square
    moved = torch.roll(base, shifts=(-1, -2), dims=(2, 3))  # the region moved right 2 and down 1: content moves back
    a, b = framing._aligned(moved, base, (2.0, 1.0))
    assert a.shape == b.shape == (1, 1, 7, 6) and torch.equal(a, b)
