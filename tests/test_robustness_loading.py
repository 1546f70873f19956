"""Safe loading: nothing the project reads is ever unpickled, and bundles are checked before use.

A pickle bomb (its ``__reduce__`` runs ``os.system`` to create a marker file) is handed to every
loader, as a bundle's weights, its attributes, a ``.pt`` / ``.pkl`` path, a classifier, a training
checkpoint, LPIPS weights, a packed data set and an evidence image: each is refused with the
project's error and the marker never appears. Bundles whose config is malformed, newer or
inconsistent with the weights are refused with a :class:`BundleError` before any tensor is used.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import shlex
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import core.model.bundle as B
from core.errors import BundleError, DataError, ImageLoadError, VarSRError
from core.images import sha256_file
from core.model.bundle import CONFIG, WEIGHTS, load_model, read_config, save_bundle
from core.model.varsr import VarSR
from tests.conftest import REPO, tiny_config


class Bomb:
    """Unpickling this runs a shell command that creates ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {shlex.quote(str(self.marker))}",))


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    m = tmp_path / "PWNED"
    yield m
    assert not m.exists(), "a pickle was unpickled: the bomb's command ran"


def _bombs(folder: Path, marker: Path) -> dict[str, bytes]:
    """A raw pickle and a torch.save zip (what a '.pt' from elsewhere looks like), both armed."""
    folder.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": Bomb(marker)}, folder / "bomb.pt")
    return {"pkl": pickle.dumps(Bomb(marker)), "pt": (folder / "bomb.pt").read_bytes()}


def _rehash(bundle: Path) -> None:
    """Record the current weights' SHA-256 in config.json (a tamperer who also edits the config)."""
    cfg = json.loads((bundle / CONFIG).read_text())
    cfg["weights_sha256"] = sha256_file(bundle / WEIGHTS)
    if (bundle / B.ATTRIBUTES).is_file():
        cfg["attributes_sha256"] = sha256_file(bundle / B.ATTRIBUTES)
    (bundle / CONFIG).write_text(json.dumps(cfg))


def test_the_bomb_is_armed(tmp_path: Path) -> None:
    """Control: unpickling the payload really does create the marker (so the tests below mean something)."""
    m = tmp_path / "armed"
    pickle.loads(pickle.dumps(Bomb(m)))  # deliberately, once: proves the payload works
    assert m.exists()


@pytest.mark.parametrize("kind", ["pkl", "pt"])
@pytest.mark.parametrize("rehash", [False, True], ids=["sha-mismatch", "sha-rewritten"])
def test_pickle_as_bundle_weights_is_refused(tiny_bundle: Path, tmp_path: Path, marker: Path, kind: str,
                                             rehash: bool) -> None:
    (tiny_bundle / WEIGHTS).write_bytes(_bombs(tmp_path / "b", marker)[kind])
    if rehash:
        _rehash(tiny_bundle)
    with pytest.raises(BundleError, match="SHA-256" if not rehash else "safetensors"):
        load_model(tiny_bundle)


def test_pickle_as_attributes_is_refused(tiny_bundle: Path, tmp_path: Path, marker: Path) -> None:
    (tiny_bundle / B.ATTRIBUTES).write_bytes(_bombs(tmp_path / "b", marker)["pt"])
    _rehash(tiny_bundle)
    with pytest.raises(BundleError, match="safetensors"):
        load_model(tiny_bundle)


def test_pt_and_pkl_paths_given_as_a_model_are_refused(tmp_path: Path, marker: Path) -> None:
    bombs = _bombs(tmp_path / "b", marker)
    for name in ("model.pt", "model.pkl", "weights.bin"):
        (tmp_path / name).write_bytes(bombs["pt" if name.endswith(".pt") else "pkl"])
        with pytest.raises(BundleError, match="no model bundle"):
            load_model(tmp_path / name)
    only_pt = tmp_path / "only_pt"
    only_pt.mkdir()
    (only_pt / "model.pt").write_bytes(bombs["pt"])
    with pytest.raises(BundleError, match="not a model bundle"):
        load_model(only_pt)


def test_pickle_given_to_the_other_loaders_is_refused(tmp_path: Path, marker: Path) -> None:
    from core.data.pack import load_packed
    from core.data.registry import load_npz
    from core.images import load_image
    from core.nets.classifier import load_classifier
    from core.nets.lpips import load_lpips
    from core.training.checkpoint import TENSORS, load_checkpoint

    bombs = _bombs(tmp_path / "b", marker)
    # a classifier: weights + JSON sidecar
    (tmp_path / "digit.safetensors").write_bytes(bombs["pt"])
    (tmp_path / "digit.json").write_text(json.dumps({"domain": "digit", "classes": ["0"], "size": [24, 24]}))
    with pytest.raises(BundleError):
        load_classifier(tmp_path / "digit.safetensors")
    # a training checkpoint whose record matches the (bombed) tensors file
    ck = tmp_path / "ck"
    ck.mkdir()
    (ck / TENSORS).write_bytes(bombs["pkl"])
    (ck / "checkpoint.json").write_text(json.dumps({"tensors_sha256": sha256_file(ck / TENSORS)}))
    with pytest.raises(VarSRError):
        load_checkpoint(ck, {"model": torch.nn.Linear(2, 2)}, {})
    # LPIPS weights
    (tmp_path / "lpips.safetensors").write_bytes(bombs["pt"])
    with pytest.raises(BundleError):
        load_lpips(tmp_path / "lpips.safetensors")
    # numpy containers holding a pickled object array
    np.savez(tmp_path / "packed.npz", version=np.array(1), evil=np.array([Bomb(marker)], dtype=object))
    with pytest.raises(DataError):
        load_packed(tmp_path / "packed.npz")
    with pytest.raises((ValueError, KeyError)):
        load_npz(tmp_path / "packed.npz")
    # an "image"
    (tmp_path / "evidence.png").write_bytes(bombs["pkl"])
    (tmp_path / "evidence.jpg").write_bytes(bombs["pt"])
    for name in ("evidence.png", "evidence.jpg"):
        with pytest.raises(ImageLoadError):
            load_image(tmp_path / name)


def test_cli_refuses_a_bombed_bundle_in_one_line(tiny_bundle: Path, tmp_path: Path, marker: Path, capsys) -> None:
    from core.cli.sample import main
    from tests.helpers.inputs import sample_image

    (tiny_bundle / WEIGHTS).write_bytes(_bombs(tmp_path / "b", marker)["pt"])
    _rehash(tiny_bundle)
    sample_image().save(tmp_path / "crop.png")
    assert main(["--model", str(tiny_bundle), "--out", str(tmp_path / "o"), str(tmp_path / "crop.png")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("varsr-sample: error:") and "safetensors" in err[0]


# -- the source itself ------------------------------------------------------------------------------
UNSAFE = [
    (re.compile(r"\btorch\.load\((?![^)]*weights_only\s*=\s*True)"), "torch.load without weights_only=True"),
    (re.compile(r"\bpickle\.loads?\("), "pickle.load(s)"),
    (re.compile(r"\b(?:cPickle|dill|joblib|cloudpickle)\b"), "a pickle-based loader"),
    (re.compile(r"allow_pickle\s*=\s*True"), "np.load with allow_pickle=True"),
    (re.compile(r"\bnp\.load\((?![^)]*allow_pickle\s*=\s*False)"), "np.load without allow_pickle=False"),
    (re.compile(r"\b(?:yaml\.load|yaml\.unsafe_load|marshal\.loads?)\("), "an unsafe deserialiser"),
]


def test_no_code_path_unpickles() -> None:
    """``core/``, the app, the tools and the benchmarks: no unrestricted unpickling anywhere."""
    hits = []
    for folder in ("core", "varsr_gui", "tools", "benchmarks"):
        for path in sorted((REPO / folder).rglob("*.py")):
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                code = line.split("#", 1)[0]
                for rx, what in UNSAFE:
                    if rx.search(code):
                        hits.append(f"{path.relative_to(REPO)}:{n}: {what}: {line.strip()}")
    assert not hits, "\n".join(hits)
    # the one pickle reader (the LPIPS converter) goes through its restricted unpickler only
    conv = (REPO / "tools" / "convert_lpips.py").read_text(encoding="utf-8")
    assert "class RestrictedUnpickler(pickle.Unpickler)" in conv and "def find_class" in conv


# -- bundles: config schema first, then SHA-256, then shapes, then tensors --------------------------
@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda c: c.update(scale=8.0), "scale must be of type int"),
        (lambda c: c.update(width="16"), "width must be of type int"),
        (lambda c: c.update(channels=True), "channels must be of type int"),
        (lambda c: c.update(enc_width=10**9), "enc_width"),
        (lambda c: c.update(up_widths=[16, 10**7, 16]), "up_widths out of range"),
        (lambda c: c.update(lr_size="8x8"), "lr_size must be a short list"),
        (lambda c: c.update(logvar_bound=float("nan")), "logvar_bound"),
        (lambda c: c.update(attribute_scale=float("inf")), "attribute_scale"),
        (lambda c: c.update(training=[1, 2]), "training must be of type dict"),
        (lambda c: c.update(version="2"), "version must be a positive integer"),
        (lambda c: c.update(version=2, new_field=1), "unknown keys"),
        (lambda c: c.update(version=2), "newer than this program"),
        (lambda c: c.update(weights_sha256=123), "64-character hex"),
        (lambda c: c.update(name=""), "name"),
    ],
)
def test_malformed_or_newer_config_is_refused_before_any_tensor(tiny_bundle: Path, monkeypatch, edit,
                                                                message: str) -> None:
    cfg = json.loads((tiny_bundle / CONFIG).read_text())
    edit(cfg)
    (tiny_bundle / CONFIG).write_text(json.dumps(cfg))

    def no_tensors(*_a, **_k):
        raise AssertionError("a tensor was read before the config was validated")

    monkeypatch.setattr(B, "load_file", no_tensors)
    monkeypatch.setattr(B, "safe_open", no_tensors)
    monkeypatch.setattr(B, "sha256_file", no_tensors)
    with pytest.raises(BundleError, match=message):
        load_model(tiny_bundle)


@pytest.mark.parametrize("text, message", [
    ("[" * 100_000, "nested too deeply|not valid JSON"),
    ("[1, 2, 3]", "JSON object"),
    ("\xff\xfe garbage", "JSON"),
    ("", "JSON"),
])
def test_config_that_is_not_a_config_is_refused(tiny_bundle: Path, text: str, message: str) -> None:
    (tiny_bundle / CONFIG).write_text(text, encoding="utf-8")
    with pytest.raises(BundleError, match=message):
        read_config(tiny_bundle)


def test_oversized_config_is_refused_unread(tiny_bundle: Path) -> None:
    cfg = json.loads((tiny_bundle / CONFIG).read_text())
    cfg["metrics"] = {"padding": "x" * (B.MAX_CONFIG_BYTES + 1)}
    (tiny_bundle / CONFIG).write_text(json.dumps(cfg))
    with pytest.raises(BundleError, match="too large"):
        read_config(tiny_bundle)


def test_tampered_weights_are_refused_even_by_one_bit(tiny_bundle: Path) -> None:
    w = tiny_bundle / WEIGHTS
    data = bytearray(w.read_bytes())
    data[len(data) // 2] ^= 0x01
    w.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="SHA-256 does not match"):
        load_model(tiny_bundle)


def test_shape_mismatch_is_refused_from_the_header_without_loading(tiny_bundle: Path, tmp_path: Path,
                                                                   monkeypatch) -> None:
    """Weights of another architecture with a correctly recorded SHA-256: refused by name/shape
    from the safetensors header, before any tensor is loaded or the network allocated."""
    other = save_bundle(VarSR(tiny_config("face-8", latent_dim=8)), tmp_path / "other")
    (tiny_bundle / WEIGHTS).write_bytes((other / WEIGHTS).read_bytes())
    _rehash(tiny_bundle)
    built = []
    monkeypatch.setattr(B, "_load_tensors", lambda p: (_ for _ in ()).throw(AssertionError("tensors loaded")))
    real_varsr = B.VarSR
    monkeypatch.setattr(B, "VarSR", lambda cfg: built.append(torch.empty(0).device) or real_varsr(cfg))
    with pytest.raises(BundleError, match="has shape"):
        load_model(tiny_bundle)
    assert all(d.type == "meta" for d in built)  # only the shape-only (meta) network was made


def test_missing_renamed_or_extra_tensors_are_refused(tiny_bundle: Path) -> None:
    state = {k: v.clone() for k, v in VarSR(tiny_config("face-8")).state_dict().items()}
    k0 = next(iter(state))
    state["surprise"] = state.pop(k0)
    save_file(state, str(tiny_bundle / WEIGHTS))
    _rehash(tiny_bundle)
    with pytest.raises(BundleError, match="do not match config.json"):
        load_model(tiny_bundle)


def test_integer_tensors_are_refused(tiny_bundle: Path) -> None:
    state = {k: torch.zeros(v.shape, dtype=torch.int32) for k, v in VarSR(tiny_config("face-8")).state_dict().items()}
    save_file(state, str(tiny_bundle / WEIGHTS))
    _rehash(tiny_bundle)
    with pytest.raises(BundleError, match="floating point"):
        load_model(tiny_bundle)


def test_attribute_of_the_wrong_length_is_refused(tiny_bundle: Path) -> None:
    save_file({"mean/Male": torch.zeros(5)}, str(tiny_bundle / B.ATTRIBUTES))
    _rehash(tiny_bundle)
    with pytest.raises(BundleError, match="16-vector"):
        load_model(tiny_bundle)


def test_missing_weights_and_unrecorded_hash(tiny_bundle: Path) -> None:
    cfg = json.loads((tiny_bundle / CONFIG).read_text())
    cfg.pop("weights_sha256")
    (tiny_bundle / CONFIG).write_text(json.dumps(cfg))
    m = load_model(tiny_bundle)
    assert m.weights_sha256 == sha256_file(tiny_bundle / WEIGHTS)  # recipes record the weights actually used
    (tiny_bundle / WEIGHTS).unlink()
    with pytest.raises(BundleError, match="missing"):
        load_model(tiny_bundle)
