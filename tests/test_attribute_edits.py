"""The face attribute classifier and the slider-edit measurement, on small synthetic fixtures."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from core.data.imageset import ImageSet
from core.errors import BundleError
from core.evaluation.attribute_edits import better_kind, measure_edits, to_json, to_markdown
from core.nets.attribute_classifier import (
    balanced_accuracy,
    load_attribute_classifier,
    masked_bce,
    save_attribute_classifier,
    train_attribute_classifier,
)


def _faces(n: int, seed: int) -> ImageSet:
    """64x64 'faces' whose brightness says Bright and whose red cast says Red; a quarter of Red unknown."""
    g = torch.Generator().manual_seed(seed)
    bright = torch.rand(n, generator=g) < 0.5
    red = torch.rand(n, generator=g) < 0.5
    x = torch.rand(n, 3, 64, 64, generator=g) * 0.2 + 0.2
    x[bright] += 0.5
    x[red, 0] = (x[red, 0] + 0.3).clamp(0, 1)
    attrs = torch.stack([bright.to(torch.int8) * 2 - 1, red.to(torch.int8) * 2 - 1], 1)
    attrs[torch.arange(n) % 4 == 0, 1] = 0
    return ImageSet(images=(x * 255).round().to(torch.uint8), labels=torch.full((n,), -1), attrs=attrs,
                    attr_names=["Bright", "Red"], source="synthetic")


def test_masked_bce_ignores_unknown_labels():
    logits = torch.tensor([[3.0, -2.0], [0.5, 9.0]])
    attrs = torch.tensor([[1, -1], [-1, 0]], dtype=torch.int8)
    changed = logits.clone()
    changed[1, 1] = -9.0  # only the unknown label's logit moves
    assert torch.isclose(masked_bce(logits, attrs), masked_bce(changed, attrs))
    assert masked_bce(logits, torch.zeros_like(attrs)) == 0


def test_balanced_accuracy_weighs_classes_equally():
    probs = torch.tensor([[0.9], [0.1], [0.1], [0.1], [0.1], [0.1], [0.1], [0.1], [0.1], [0.9]])
    attrs = torch.tensor([[1], [1], [1], [1], [1], [-1], [-1], [-1], [-1], [-1]], dtype=torch.int8)
    assert balanced_accuracy(probs, attrs, ["A"]) == {"A": pytest.approx((0.2 + 0.8) / 2)}


def test_classifier_learns_and_roundtrips(tmp_path, one_thread):
    model = train_attribute_classifier(_faces(384, 0), epochs=6, seed=0, heldout=_faces(128, 1), width=8,
                                       batch=32)
    acc = model.info.heldout_balanced_accuracy
    assert acc["Bright"] > 0.9 and acc["Red"] > 0.9, acc
    path = save_attribute_classifier(model, tmp_path / "fa.safetensors")
    again = load_attribute_classifier(path)
    x = _faces(16, 2).images.float() / 255
    assert torch.allclose(model.probs(x), again.probs(x), atol=2e-2)  # float16 weights
    with pytest.raises(ValueError, match="expects"):
        model(torch.zeros(1, 3, 32, 32))


def test_missing_or_broken_classifier_is_a_bundle_error(tmp_path):
    with pytest.raises(BundleError, match="not found"):
        load_attribute_classifier(tmp_path / "none.safetensors")
    (tmp_path / "bad.safetensors").write_bytes(b"not a safetensors file")
    (tmp_path / "bad.json").write_text('{"attr_names": ["A"]}')
    with pytest.raises(BundleError, match="unreadable"):
        load_attribute_classifier(tmp_path / "bad.safetensors")


class _BrightnessModel:
    """Generates flat images whose brightness is sigmoid(z[0]) and red cast sigmoid(z[1])."""

    def __init__(self) -> None:
        self.config = SimpleNamespace(attribute_scale=1.0)
        self.attributes = {"diff/Bright": torch.tensor([2.0, 0.0, 0.0]),
                           "mean/Bright": torch.tensor([2.0, 2.0, 0.0]),
                           "diff/Red": torch.tensor([0.0, 0.0, 5.0])}  # z[2] does nothing

    def latents(self, lr, n, seed=0, temperature=1.0):
        g = torch.Generator().manual_seed(seed)
        return torch.randn(len(lr), n, 3, generator=g) * 0.5

    def generate(self, lr, z):
        img = torch.zeros(len(z), 3, 4, 4)
        img += torch.sigmoid(z[:, 0])[:, None, None, None]
        img[:, 0] = torch.sigmoid(z[:, 1])[:, None, None]
        return img


class _ReadBack:
    attr_names = ["Bright", "Red", "Pale_Skin"]

    def probs(self, x):
        return torch.stack([x[:, 1].mean((1, 2)), x[:, 0].mean((1, 2)), x.mean((1, 2, 3)) * 0.1], 1)


def test_measure_edits_finds_effect_and_side_effect():
    model, clf = _BrightnessModel(), _ReadBack()
    lr = torch.zeros(50, 3, 1, 1)
    emb = lambda x: x.flatten(1)  # noqa: E731 - an identity "embedder"
    scores, ctx = measure_edits(model, clf, lr, sorted(model.attributes), k=2.0, embed=emb)
    by = {s.direction: s for s in scores}
    assert by["diff/Bright"].up_rate == 1.0 and by["diff/Bright"].down_rate == 1.0
    assert by["diff/Bright"].delta_up > 0 > by["diff/Bright"].delta_down
    # brightness leaves the red channel alone but lifts the (brightness-reading) skin-tone output
    assert by["diff/Bright"].side_attribute == "Pale_Skin" == by["diff/Bright"].skin_attribute
    assert 0.01 < by["diff/Bright"].skin_delta < 0.1
    assert by["mean/Bright"].side_attribute == "Red" and by["mean/Bright"].side_delta > 0.1
    assert by["diff/Red"].up_rate == 0.0 and by["diff/Red"].identity_drift == 0.0  # a dead direction
    assert by["diff/Bright"].identity_drift > 0 and ctx["sample_identity_distance"] > 0
    assert better_kind(scores) == {"Bright": "diff", "Red": "diff"}
    report = to_json(scores, ctx, bundle="stub", embedder="identity")
    md = to_markdown(report)
    assert "`mean/Bright`" in md and "100%" in md and "Red" in md


def test_slider_notes_and_order_from_a_bundle_report(tmp_path):
    from core.evaluation.attribute_edits import load_report, slider_notes, slider_order

    scores, ctx = measure_edits(_BrightnessModel(), _ReadBack(), torch.zeros(20, 3, 1, 1),
                                ["diff/Bright", "mean/Bright", "diff/Red"], k=2.0)
    (tmp_path / "edits.json").write_text(__import__("json").dumps(to_json(scores, ctx)))
    report = load_report(tmp_path)
    notes = slider_notes(report)
    assert "raises Bright in 100%" in notes["diff/Bright"] and "side effect" in notes["mean/Bright"]
    assert slider_order(["mean/Bright", "diff/Red", "diff/Bright"], report) == ["diff/Bright", "mean/Bright",
                                                                                  "diff/Red"]
    assert load_report(tmp_path / "missing") is None and slider_notes(None) == {}
    (tmp_path / "edits.json").write_text("{not json")
    assert load_report(tmp_path) is None
