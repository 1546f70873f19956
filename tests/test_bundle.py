"""Bundles: round trip, and refusal of anything altered or malformed (never unpickling)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from core.errors import BundleError
from core.model.bundle import list_models, load_model, save_bundle
from core.model.varsr import VarSR
from tests.conftest import tiny_config


def test_round_trip_gives_identical_candidates(tiny_bundle: Path) -> None:
    m = load_model(tiny_bundle)
    assert m.config.name == "face-8" and set(m.attributes) == {"mean/Male", "diff/Male"}
    again = load_model(save_bundle(m, tiny_bundle.parent / "copy"))
    lr = torch.rand(3, 8, 8)
    assert torch.equal(m.sample(lr, 4, seed=1), again.sample(lr, 4, seed=1))
    assert list_models(tiny_bundle.parent) == ["copy", "face-8"]
    recorded = json.loads((tiny_bundle / "config.json").read_text())["weights_sha256"]
    assert m.bundle_path == tiny_bundle and m.weights_sha256 == recorded
    assert VarSR(m.config).weights_sha256 is None  # an in-memory model has no bundle


def test_weights_altered_after_saving_are_refused(tiny_bundle: Path) -> None:
    w = tiny_bundle / "model.safetensors"
    data = bytearray(w.read_bytes())
    data[-1] ^= 0xFF
    w.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="SHA-256"):
        load_model(tiny_bundle)


def test_weights_not_matching_the_config_are_refused(tiny_bundle: Path, tmp_path: Path) -> None:
    other = save_bundle(VarSR(tiny_config("face-8", latent_dim=8)), tmp_path / "other")
    (tiny_bundle / "model.safetensors").write_bytes((other / "model.safetensors").read_bytes())
    cfg = json.loads((tiny_bundle / "config.json").read_text())
    cfg.pop("weights_sha256")
    (tiny_bundle / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(BundleError, match="shape"):
        load_model(tiny_bundle)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda c: c.update(domain="cats"), "domain"),
        (lambda c: c.update(scale=3), "scale"),
        (lambda c: c.update(surprise=1), "unknown keys"),
        (lambda c: c.update(version=99), "newer"),
        (lambda c: c.pop("lr_size"), "lr_size"),
        (lambda c: c.update(sample_temperature=0), "sample_temperature"),
        (lambda c: c.update(sample_temperature="hot"), "sample_temperature"),
    ],
)
def test_config_is_validated_before_any_tensor(tiny_bundle: Path, edit, message: str) -> None:
    cfg = json.loads((tiny_bundle / "config.json").read_text())
    edit(cfg)
    (tiny_bundle / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(BundleError, match=message):
        load_model(tiny_bundle)


def test_garbage_files_and_unknown_names_give_clear_errors(tiny_bundle: Path) -> None:
    (tiny_bundle / "config.json").write_text("{not json")
    with pytest.raises(BundleError, match="JSON"):
        load_model(tiny_bundle)
    with pytest.raises(BundleError, match="no model bundle"):
        load_model("no-such-model")


def test_a_pickle_renamed_as_weights_is_refused_without_unpickling(tiny_bundle: Path, tmp_path: Path) -> None:
    import pickle

    marker = tmp_path / "pwned"

    class Bomb:
        def __reduce__(self):
            return (Path.touch, (marker,))

    (tiny_bundle / "model.safetensors").write_bytes(pickle.dumps(Bomb()))
    cfg = json.loads((tiny_bundle / "config.json").read_text())
    cfg.pop("weights_sha256")
    (tiny_bundle / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(BundleError):
        load_model(tiny_bundle)
    assert not marker.exists()
