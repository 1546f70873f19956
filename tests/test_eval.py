"""The evaluation harness: metrics against scikit-image, scoring rules, JSON shape, the CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from core.data.imageset import ImageSet
from core.evaluation import metrics
from core.evaluation.evaluate import METRIC_KEYS, distinct_counts, evaluate, score_candidates, to_markdown, varsr_method
from core.model.degrade import degrade, upsample_bicubic
from core.nets.classifier import CharClassifier, ClassifierInfo, load_classifier, save_classifier, train_classifier
from core.nets.lpips import LPIPS, load_lpips

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def lp() -> LPIPS:
    return load_lpips()


def digits(n: int = 12, size: int = 24, seed: int = 0) -> ImageSet:
    """Three easy classes of grey images: a horizontal bar, a vertical bar, a square, jittered."""
    g = torch.Generator().manual_seed(seed)
    imgs = torch.zeros(n, 1, size, size)
    labels = torch.arange(n) % 3
    for i in range(n):
        o = int(torch.randint(-2, 3, (1,), generator=g))
        m, t = size // 2 + o, size // 6
        if labels[i] == 0:
            imgs[i, 0, m - 2 : m + 2, t:-t] = 1
        elif labels[i] == 1:
            imgs[i, 0, t:-t, m - 2 : m + 2] = 1
        else:
            imgs[i, 0, m - t : m + t, m - t : m + t] = 1
    imgs = (imgs * 0.8 + 0.1 + 0.05 * torch.rand(imgs.shape, generator=g)).clamp(0, 1)
    u8 = imgs.mul(255).round().to(torch.uint8)
    return ImageSet(images=u8, labels=labels.long(), classes=["h", "v", "sq"], source="fixture")


# --- metrics ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(3, 64, 64), (1, 24, 24), (1, 16, 8)])
def test_psnr_ssim_match_skimage(shape: tuple[int, int, int]) -> None:
    g = torch.Generator().manual_seed(1)
    a = torch.rand(shape, generator=g, dtype=torch.float64)
    b = (a + 0.08 * torch.randn(shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    an, bn = a.numpy(), b.numpy()
    assert metrics.psnr(a[None], b[None]).item() == pytest.approx(
        peak_signal_noise_ratio(an, bn, data_range=1)
    )
    ref = structural_similarity(an, bn, data_range=1, channel_axis=0)
    assert metrics.ssim(a[None], b[None]).item() == pytest.approx(ref, abs=1e-9)


def test_mse_and_l1_scales() -> None:
    a = torch.zeros(2, 1, 8, 8)
    b = torch.full((2, 1, 8, 8), 1 / 255)
    assert metrics.mse255(a, b).tolist() == pytest.approx([1.0, 1.0])
    assert metrics.l1_255(a, b).tolist() == pytest.approx([1.0, 1.0])
    assert metrics.psnr(a, a).tolist() == [metrics.PSNR_CAP, metrics.PSNR_CAP]


# --- scoring rules ---------------------------------------------------------------------------------
def test_perfect_candidate_and_bicubic_consistency(lp: LPIPS) -> None:
    hr = digits(4).float_images()
    perfect = score_candidates(hr[:, None], hr, 4, lp)
    assert perfect["consistency_l1"].abs().max().item() == 0.0
    assert perfect["lr_psnr"].tolist() == [metrics.PSNR_CAP] * 4  # capped, not inf
    assert perfect["lpips_best"].abs().max().item() < 1e-6
    assert perfect["diversity"].abs().max().item() == 0.0
    bic = score_candidates(upsample_bicubic(degrade(hr, 4), 4)[:, None], hr, 4, lp)
    assert (bic["consistency_l1"] > 0.1).all()
    assert (bic["lr_psnr"] < metrics.PSNR_CAP).all()


def test_best_is_at_least_mean(lp: LPIPS) -> None:
    hr = digits(3).float_images()
    g = torch.Generator().manual_seed(2)
    cands = (hr[:, None] + 0.1 * torch.randn(3, 5, *hr.shape[1:], generator=g)).clamp(0, 1)
    s = score_candidates(cands, hr, 4, lp)
    assert (s["psnr_best"] >= s["psnr_mean"]).all()
    assert (s["psnr_best"] > s["psnr_mean"]).any()
    assert (s["diversity"] > 0).all()
    per = torch.stack([metrics.psnr(cands[:, j], hr) for j in range(5)], 1)
    best = per.argmax(1)
    ssim_of_best = torch.stack([metrics.ssim(cands[i, best[i]][None], hr[i][None])[0] for i in range(3)])
    torch.testing.assert_close(s["ssim_best"], ssim_of_best)


class _ByBrightness:
    """A stand-in classifier: the class is the candidate's mean brightness in tenths."""

    classes = [str(i) for i in range(10)]

    def probs(self, x: torch.Tensor) -> torch.Tensor:
        cls = (x.flatten(1).mean(1) * 10).floor().clamp(0, 9).long()
        return torch.nn.functional.one_hot(cls, 10).double() * 0.9 + 0.01


def test_distinct_classes_histogram(lp: LPIPS) -> None:
    assert distinct_counts(torch.tensor([[1, 1, 1, 1], [1, 2, 1, 2], [0, 1, 2, 3]])).tolist() == [1, 2, 4]
    classes = [[1, 1, 1, 1], [1, 2, 1, 2], [0, 1, 2, 3]]
    cands = torch.stack([torch.stack([torch.full((1, 8, 8), c / 10 + 0.05) for c in row]) for row in classes])
    hr = cands[:, 0]
    labels = torch.tensor([1, 2, 3])
    s = score_candidates(cands, hr, 4, lp, labels=labels, classifier=_ByBrightness())
    assert s["distinct"].tolist() == [1, 2, 4]
    assert s["acc_best"].tolist() == [True, True, True]
    # mean softmax: image 1 ties 1/2 -> argmax takes class 1 (label 2: wrong); image 2 ties 0..3 -> 0 (wrong)
    assert s["acc_mean"].tolist() == [True, False, False]
    from core.evaluation.evaluate import _Acc, _summary

    acc = _Acc()
    acc.add(**s)
    summ = _summary(acc, 4, has_embedder=False, has_classifier=True)
    assert summ["distinct_classes"] == pytest.approx({"1": 1 / 3, "2": 1 / 3, "3": 0.0, "4": 1 / 3})
    assert summ["acc_best"] == pytest.approx(100.0)
    assert summ["acc_mean"] == pytest.approx(100 / 3)


# --- classifier ------------------------------------------------------------------------------------
def test_classifier_trains_and_round_trips(tmp_path: Path) -> None:
    train, held = digits(90, seed=3), digits(30, seed=4)
    model = train_classifier(train, epochs=4, seed=0, heldout=held, batch=32)
    assert model.info.heldout_accuracy is not None and model.info.heldout_accuracy > 0.9
    path = save_classifier(model, tmp_path / "digit.safetensors")
    back = load_classifier(path)
    x = held.float_images()
    torch.testing.assert_close(back.probs(x), model.probs(x), atol=2e-2, rtol=0)
    assert back.classes == ["h", "v", "sq"] and back.info.size == (24, 24)
    assert path.stat().st_size < 1_000_000


def test_classifier_width_round_trips(tmp_path: Path) -> None:
    """A wider reader keeps its width through save/load; a sidecar without one loads as the 32 it was."""
    import json

    m = CharClassifier(ClassifierInfo(classes=[str(i) for i in range(36)], size=(8, 16), width=48))
    assert m.features[0].out_channels == 48 and m.head[-1].in_features == 96
    back = load_classifier(save_classifier(m, tmp_path / "wide.safetensors"))
    assert back.info.width == 48
    x = torch.rand(4, 1, 16, 8)
    torch.testing.assert_close(back.probs(x), m.probs(x), atol=2e-2, rtol=0)
    old = CharClassifier(ClassifierInfo(classes=["a", "b"], size=(8, 16)))
    path = save_classifier(old, tmp_path / "old.safetensors")
    meta = json.loads(path.with_suffix(".json").read_text())
    del meta["width"]
    path.with_suffix(".json").write_text(json.dumps(meta))
    assert load_classifier(path).info.width == 32


def test_plate_char_classifier_shape() -> None:
    m = CharClassifier(ClassifierInfo(classes=[str(i) for i in range(36)], size=(8, 16)))
    assert m.probs(torch.rand(5, 1, 16, 8)).shape == (5, 36)


# --- end to end with a tiny untrained bundle -------------------------------------------------------
def _tiny_bundles(root: Path) -> Path:
    core = pytest.importorskip("core")
    if not hasattr(core, "save_bundle") or not hasattr(core, "VarSR"):
        pytest.skip("core.save_bundle / core.VarSR not available yet")
    from core.model.config import ModelConfig

    kw = dict(domain="digit", channels=1, lr_size=(6, 6), scale=4, width=8, n_res_blocks=1, up_widths=(8, 8))
    torch.manual_seed(0)
    core.save_bundle(core.VarSR(ModelConfig(name="tiny", latent_dim=4, enc_width=8, **kw)), root / "tiny")
    core.save_bundle(core.VarSR(ModelConfig(name="tiny-det", latent_dim=0, **kw)), root / "tiny-det")
    return root / "tiny"


def test_batched_sampling_matches_model_sample(tmp_path: Path) -> None:
    import core

    model = core.load_model(_tiny_bundles(tmp_path))
    lr = model.degrade(digits(3).float_images())
    cands = varsr_method(model, 4).propose(lr, [7, 8, 9])
    for i in range(3):
        torch.testing.assert_close(cands[i], model.sample(lr[i], 4, seed=7 + i), atol=1e-5, rtol=0)


def test_evaluate_json_has_all_keys(tmp_path: Path, lp: LPIPS) -> None:
    import core
    from core.model.bundle import find_det

    model = core.load_model(_tiny_bundles(tmp_path))
    det = find_det(model)
    assert det is not None and det.config.latent_dim == 0
    data = digits(10, seed=5)
    clf = train_classifier(digits(60, seed=6), epochs=1, seed=0)
    r = evaluate(
        model, data, dataset="fixture", n_samples=4, seed=0, det=det, classifier=clf, lpips=lp, batch=4
    )
    json.loads(json.dumps(r, allow_nan=False))
    top = {"model", "dataset", "n_images", "n_samples", "seed", "classifier_hr_accuracy", "methods"}
    assert top <= set(r)
    assert r["n_images"] == 10 and r["classifier_hr_accuracy"] is not None
    assert set(r["methods"]) == {"varsr", "det", "bicubic"}
    for name, m in r["methods"].items():
        assert tuple(m) == METRIC_KEYS, name
        assert m["identity_best"] is None
        assert m["psnr_best"] >= m["psnr_mean"] - 1e-9
        assert sum(m["distinct_classes"].values()) == pytest.approx(1.0)
    assert r["methods"]["det"]["diversity"] == 0 and r["methods"]["bicubic"]["diversity"] == 0
    assert r["methods"]["varsr"]["diversity"] > 0
    assert r["methods"]["det"]["distinct_classes"]["1"] == 1.0
    md = to_markdown(r)
    assert "Table 4" in md and "Table 5" in md and "| PSNR (best) |" in md
    # results do not depend on the batch size
    r2 = evaluate(model, data, n_samples=4, seed=0, det=det, classifier=clf, lpips=lp, batch=3)
    assert r2["methods"]["varsr"]["psnr_best"] == pytest.approx(r["methods"]["varsr"]["psnr_best"], abs=1e-6)


@pytest.fixture
def _keep_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI would switch torch to every core; keep the tests on one."""
    monkeypatch.setattr("core.perf.tune_cpu", lambda: None)


@pytest.mark.usefixtures("_keep_threads")
def test_cli_bad_paths_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from core.cli.eval import main

    rc = main(["--model", str(tmp_path / "nope"), "--dataset", "mnist", "--root", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1 and "nope" in err
    bundle = _tiny_bundles(tmp_path)
    rc = main(["--model", str(bundle), "--dataset", "mnist", "--root", str(tmp_path / "missing"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("varsr-eval: error:")


@pytest.mark.usefixtures("_keep_threads")
def test_cli_writes_json_and_markdown(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from core.cli.eval import main

    bundle = _tiny_bundles(tmp_path)
    root = tmp_path / "mnist"  # a tiny MNIST in the official IDX layout
    root.mkdir()
    n = 6
    imgs = (torch.rand(n, 28, 28) * 255).to(torch.uint8).numpy().tobytes()
    (root / "train-images-idx3-ubyte").write_bytes(np.array([2051, n, 28, 28], ">i4").tobytes() + imgs)
    (root / "train-labels-idx1-ubyte").write_bytes(np.array([2049, n], ">i4").tobytes() + bytes(range(n)))
    out_json, out_md = tmp_path / "r.json", tmp_path / "r.md"
    args = ["--model", str(bundle), "--dataset", "mnist", "--root", str(root), "--split", "all"]
    args += ["--n-samples", "2", "--json", str(out_json), "--markdown", str(out_md), "--quiet"]
    assert main(args) == 0
    r = json.loads(out_json.read_text())
    assert r["n_images"] == n and r["methods"]["det"] is not None
    assert all(tuple(m) == METRIC_KEYS for m in r["methods"].values())
    assert "| PSNR (best) |" in out_md.read_text()


# --- integration on the shared data ----------------------------------------------------------------
@pytest.mark.data
def test_eval_on_real_mnist(tmp_path: Path, lp: LPIPS) -> None:
    if not SHARED.is_dir():
        pytest.skip(f"shared data not found at {SHARED}")
    import core
    from core.data.registry import load_dataset
    from core.nets.classifier import default_path

    model = core.load_model(_tiny_bundles(tmp_path))
    data = load_dataset("mnist", SHARED / "mnist", "test", size=(24, 24), channels=1, limit=200)
    assert tuple(data.images.shape[1:]) == (1, 24, 24)
    clf = load_classifier(default_path("digit")) if default_path("digit").is_file() else None
    few = ImageSet(images=data.images[:16], labels=data.labels[:16], classes=data.classes, source=data.source)
    r = evaluate(model, few, n_samples=3, lpips=lp, batch=8, classifier=clf)
    assert r["n_images"] == 16
    assert math.isfinite(r["methods"]["bicubic"]["psnr_best"])
    assert np.isfinite(r["methods"]["varsr"]["lpips_best"])
    if clf is not None:  # the committed classifier on 200 real held-out digits
        x, y = data.float_images(), data.labels
        assert clf.accuracy(x, y) > 0.95
