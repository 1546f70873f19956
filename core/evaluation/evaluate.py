"""The evaluation harness behind ``varsr-eval``: the paper's Tables 1-5 for one model on one data set.

For every HR test image the LR input is made with the model's own :meth:`degrade`; each method
then proposes candidates: ``varsr`` draws ``n`` samples (image ``i`` uses seed ``seed + i``, so
results do not depend on the batch size), ``det`` (a deterministic bundle) and ``bicubic`` give one.
Per method, averaged over images:

* ``psnr_best``, ``ssim_best``, ``mse_best``: of the candidate with the best PSNR (Table 1's caption);
  ``psnr_mean``: PSNR averaged over the candidates. MSE on the 0-255 scale. See :mod:`core.evaluation.metrics`.
* ``lpips_best``: the smallest LPIPS (AlexNet, v0.1; small images enlarged, see :mod:`core.nets.lpips`).
* ``diversity``: mean pairwise LPIPS among one input's candidates (0 for one-candidate methods).
* ``consistency_l1``: mean |LR - degrade(candidate)| on the 0-255 scale, averaged over candidates;
  ``lr_psnr``: PSNR of degrade(candidate) against LR, averaged over candidates (capped at 100 dB);
  ``lr_psnr_enforced``: the same after the optional "enforce consistency" step
  (:func:`core.model.degrade.project_consistent`) and 8-bit rounding, i.e. of the candidate as it would be
  saved (the NTIRE 2021 "learning the SR space" bar is 45 dB).
* ``identity_best``: smallest (1 - cosine) between face embeddings of candidate and HR, when an
  ``embedder`` is given (``varsr-eval`` uses the bundled ``dlib-face-resnet`` for face models);
  ``None`` otherwise. ``meta.identity`` names the embedder, the distance and its cost in seconds.
* ``acc_best``: share of images with at least one correctly classified candidate; ``acc_mean``:
  accuracy of the argmax of the candidates' *mean softmax* (the paper's "average softmax values");
  ``distinct_classes``: ``{"k": share of images whose candidates got k distinct predicted classes}``.
  Classification keys are ``None`` without a classifier or class labels.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from core.data.imageset import ImageSet
from core.errors import VarSRError
from core.evaluation import metrics
from core.model.camera import condition, degrade_seeded, nominal_degrade, project_nominal
from core.model.degrade import degrade, upsample_bicubic
from core.nets.classifier import CharClassifier, map_labels
from core.nets.lpips import LPIPS, load_lpips

METRIC_KEYS = (
    "psnr_best",
    "psnr_mean",
    "ssim_best",
    "mse_best",
    "lpips_best",
    "diversity",
    "consistency_l1",
    "lr_psnr",
    "lr_psnr_enforced",
    "identity_best",
    "acc_best",
    "acc_mean",
    "distinct_classes",
)
#: At most this many candidates are generated and scored at once (inputs per batch x samples).
MAX_CANDIDATES = 1024
Embedder = Callable[[torch.Tensor], torch.Tensor]
#: Candidate generator: (lr (B,C,h,w), seeds of the B images) -> (B, k, C, H, W) in [0, 1].
Propose = Callable[[torch.Tensor, list[int]], torch.Tensor]


@dataclass
class Method:
    """One column of the tables."""

    name: str
    propose: Propose


def varsr_method(model: Any, n: int, temperature: float = 1.0, name: str = "varsr") -> Method:
    """``n`` samples per input from a VarSR bundle (one if the bundle is deterministic)."""

    def propose(lr: torch.Tensor, seeds: list[int]) -> torch.Tensor:
        b, k = lr.shape[0], (1 if model.config.latent_dim == 0 else n)
        z = None
        if model.config.latent_dim:
            z = torch.cat(
                [
                    model.latents(lr[i : i + 1], k, seed=s, temperature=temperature)
                    for i, s in enumerate(seeds)
                ]
            )
            z = z.reshape(b * k, -1)
        out = model.generate(lr.repeat_interleave(k, 0), z)
        return out.reshape(b, k, *out.shape[1:])

    return Method(name, propose)


def bicubic_method(scale: int) -> Method:
    return Method("bicubic", lambda lr, seeds: upsample_bicubic(lr, scale)[:, None])


class _Acc:
    """Per-image values of one method, concatenated over batches."""

    def __init__(self) -> None:
        self.v: dict[str, list[torch.Tensor]] = {}

    def add(self, **kw: torch.Tensor) -> None:
        for k, t in kw.items():
            self.v.setdefault(k, []).append(t.detach().double().cpu())

    def cat(self, key: str) -> torch.Tensor | None:
        return torch.cat(self.v[key]) if key in self.v else None


def _pairwise_mean(lp: LPIPS, feats: list[torch.Tensor], b: int, k: int) -> torch.Tensor:
    """Mean LPIPS over the k(k-1)/2 pairs of each image's candidates -> (b,)."""
    if k < 2:
        return torch.zeros(b)
    i, j = torch.triu_indices(k, k, 1)
    grouped = [f.reshape(b, k, *f.shape[1:]) for f in feats]
    step = max(1, 2048 // b)  # bounds the gathered features to ~2048 pairs at a time
    total = torch.zeros(b)
    for s in range(0, len(i), step):
        ii, jj = i[s : s + step], j[s : s + step]
        fa = [g[:, ii].flatten(0, 1) for g in grouped]
        fb = [g[:, jj].flatten(0, 1) for g in grouped]
        total += lp.compare(fa, fb).reshape(b, -1).sum(1).float()
    return total / len(i)


def _embed(lp: LPIPS, x: torch.Tensor, chunk: int = 512) -> list[torch.Tensor]:
    parts = [lp.embed(x[i : i + chunk]) for i in range(0, len(x), chunk)]
    return [torch.cat([p[layer] for p in parts]) for layer in range(len(parts[0]))]


def distinct_counts(pred: torch.Tensor) -> torch.Tensor:
    """Number of distinct classes in each row of predictions ``(B, k)`` -> ``(B,)``."""
    s = pred.sort(1).values
    return 1 + (s[:, 1:] != s[:, :-1]).sum(1)


def lr_psnr_enforced(cands: torch.Tensor, lr: torch.Tensor, scale: int, nominal_sigma: float = 0.0) -> torch.Tensor:
    """LR-PSNR of candidates ``(N, C, H, W)`` after the consistency projection and 8-bit rounding."""
    saved = project_nominal(cands.float(), lr.float(), scale, nominal_sigma).mul(255).round().div(255)
    return metrics.psnr(nominal_degrade(saved, scale, nominal_sigma), lr.float())


def score_candidates(
    cands: torch.Tensor,
    hr: torch.Tensor,
    scale: int,
    lp: LPIPS,
    *,
    labels: torch.Tensor | None = None,
    classifier: CharClassifier | None = None,
    embedder: Embedder | None = None,
    hr_feats: list[torch.Tensor] | None = None,
    hr_embedding: torch.Tensor | None = None,
    lr: torch.Tensor | None = None,
    nominal_sigma: float = 0.0,
) -> dict[str, torch.Tensor]:
    """Per-image metrics of candidates ``(B, k, C, H, W)`` for HR images ``(B, C, H, W)``.

    ``labels`` are classifier class indices (-1: unknown); the classification entries (``acc_best``,
    ``acc_mean``, ``distinct``) cover only the labelled images. ``hr_feats`` / ``hr_embedding``: the HR
    images' LPIPS features / L2-normalised embeddings when already computed (shared by the methods).
    ``lr``: the input the candidates were made from (default: the box filter of ``hr``); consistency is
    scored with the condition's deterministic operator (:func:`core.model.camera.nominal_degrade`, Gaussian
    optics of ``nominal_sigma`` LR px before the box filter; 0: the box filter alone).
    """
    b, k = cands.shape[:2]
    flat = cands.flatten(0, 1).float()
    hr = hr.float()
    lr = degrade(hr, scale) if lr is None else lr.float()
    hr_rep = hr.repeat_interleave(k, 0)
    psnr = metrics.psnr(flat, hr_rep).reshape(b, k)
    best = psnr.argmax(1)
    rows = torch.arange(b)
    ssim = metrics.ssim(flat, hr_rep).reshape(b, k)
    mse = metrics.mse255(flat, hr_rep).reshape(b, k)
    feats = _embed(lp, flat)
    hr_feats = hr_feats if hr_feats is not None else _embed(lp, hr)
    lpd = lp.compare(feats, [f.repeat_interleave(k, 0) for f in hr_feats]).reshape(b, k)
    down = nominal_degrade(flat, scale, nominal_sigma)
    lr_rep = lr.repeat_interleave(k, 0)
    out = {
        "psnr_best": psnr[rows, best],
        "psnr_mean": psnr.mean(1),
        "ssim_best": ssim[rows, best],
        "mse_best": mse[rows, best],
        "lpips_best": lpd.min(1).values,
        "diversity": _pairwise_mean(lp, feats, b, k),
        "consistency_l1": metrics.l1_255(down, lr_rep).reshape(b, k).mean(1),
        "lr_psnr": metrics.psnr(down, lr_rep).reshape(b, k).mean(1),
        "lr_psnr_enforced": lr_psnr_enforced(flat, lr_rep, scale, nominal_sigma).reshape(b, k).mean(1),
    }
    if embedder is not None:
        e_hr = hr_embedding if hr_embedding is not None else _unit(embedder(hr))
        e = _unit(embedder(flat)).reshape(b, k, -1)
        out["identity_best"] = (1 - (e * e_hr[:, None]).sum(-1)).min(1).values
    if classifier is not None and labels is not None:
        p = classifier.probs(flat).reshape(b, k, -1)
        pred = p.argmax(-1)
        ok = labels >= 0
        out["acc_best"] = (pred == labels[:, None]).any(1)[ok]
        out["acc_mean"] = (p.mean(1).argmax(-1) == labels)[ok]
        out["distinct"] = distinct_counts(pred)[ok]
    return out


def _unit(e: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.normalize(e.float(), dim=1)


def _timed(embedder: Embedder, spent: list[float]) -> Embedder:
    """``embedder``, adding the seconds each call takes to ``spent[0]`` (the identity metric's cost)."""

    def call(x: torch.Tensor) -> torch.Tensor:
        t = time.perf_counter()
        try:
            return embedder(x)
        finally:
            spent[0] += time.perf_counter() - t

    return call


def identity_meta(embedder: Embedder | None, seconds: float | None = None) -> dict[str, Any] | None:
    """What the JSON says about ``identity_best``: the embedder and the distance (None without one)."""
    if embedder is None:
        return None
    return {
        "embedder": getattr(embedder, "name", type(embedder).__name__),
        "weights_sha256": getattr(embedder, "version", None),
        "metric": "identity_best = smallest 1 - cos(e(candidate), e(HR)) over a method's candidates, e the "
        "embedder's face descriptor (compared after L2 normalisation; 0 = same direction, 2 = opposite); "
        "lower is closer. This is not the Euclidean distance the face search ranks by.",
        "frames": "candidates and HR images in the canonical face frame, warped by the eyes to the embedder's chip",
        "seconds": None if seconds is None else round(seconds, 2),
    }


def _summary(acc: _Acc, n_samples: int, has_embedder: bool, has_classifier: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in METRIC_KEYS:
        t = acc.cat(key)
        out[key] = float(t.mean()) if t is not None and len(t) else None
    if not has_embedder:
        out["identity_best"] = None
    for key in ("acc_best", "acc_mean"):
        if out[key] is not None:
            out[key] *= 100.0  # percent, as Table 4
    d = acc.cat("distinct")
    if has_classifier and d is not None and len(d):
        out["distinct_classes"] = {str(i): float((d == i).double().mean()) for i in range(1, n_samples + 1)}
    else:
        out["distinct_classes"] = None
    return out


def evaluate(
    model: Any,
    data: ImageSet,
    *,
    dataset: str = "",
    n_samples: int = 10,
    seed: int = 0,
    det: Any = None,
    classifier: CharClassifier | None = None,
    lpips: LPIPS | None = None,
    embedder: Embedder | None = None,
    batch: int = 64,
    temperature: float | None = None,
    progress: bool = False,
    degradation: str = "ideal",
) -> dict[str, Any]:
    """Run every method over ``data`` (HR images at the model's HR size) and return the report dict.

    ``embedder`` (images -> (N, D) embeddings) is the hook for the face-identity metric; ``None``
    leaves ``identity_best`` null. ``det`` is a deterministic bundle for the "det" column (or None).
    ``degradation``: a named condition of :mod:`core.model.camera` that makes the LR inputs (image ``i`` draws
    its camera from ``Random(seed + i)``, so every method and model sees the same inputs).
    """
    cond = condition(degradation)
    cfg = model.config
    w, h = cfg.hr_size
    if len(data) == 0:
        raise VarSRError("the data set has no images to evaluate")
    if tuple(data.images.shape[1:]) != (cfg.channels, h, w):
        raise VarSRError(
            f"images are {tuple(data.images.shape[1:])}, the model needs ({cfg.channels}, {h}, {w})"
        )
    if n_samples < 1:
        raise VarSRError("--n-samples must be at least 1")
    if det is not None:
        c = det.config
        if (c.channels, tuple(c.lr_size), c.scale) != (cfg.channels, tuple(cfg.lr_size), cfg.scale):
            raise VarSRError(f"det model '{c.name}' has another input/output size than '{cfg.name}'")
    if classifier is not None:
        cw, ch = classifier.info.size
        if classifier.info.channels != cfg.channels or w < cw or h < ch:
            raise VarSRError(f"the classifier takes {cw}x{ch} images, the model makes {w}x{h}")
    lp = lpips or load_lpips()
    spent = [0.0]
    timed = _timed(embedder, spent) if embedder is not None else None
    batch = max(1, min(batch, MAX_CANDIDATES // n_samples))  # bounds memory; results do not change
    if temperature is None:  # the model's calibrated default, as the app and varsr-sample draw
        temperature = float(cfg.sample_temperature)
    methods = [varsr_method(model, n_samples, temperature)]
    if det is not None:
        methods.append(varsr_method(det, 1, name="det"))
    methods.append(bicubic_method(cfg.scale))
    accs = {m.name: _Acc() for m in methods}
    labels_all = map_labels(classifier, data) if classifier is not None else None
    hr_correct: list[torch.Tensor] = []

    from tqdm import tqdm

    t0 = time.perf_counter()
    starts = range(0, len(data), batch)
    for start in tqdm(starts, desc=f"eval {cfg.name}", unit="batch", disable=not progress):
        hr = data.float_images(slice(start, start + batch))
        seeds = [seed + start + i for i in range(len(hr))]
        lr = degrade_seeded(hr, (cfg.lr_size[1], cfg.lr_size[0]), degradation, seeds)
        with torch.inference_mode():
            hr_feats = _embed(lp, hr)
            hr_embedding = _unit(timed(hr)) if timed is not None else None
            labels = labels_all[start : start + batch] if labels_all is not None else None
            if classifier is not None and labels is not None:
                ok = labels >= 0
                hr_correct.append((classifier.probs(hr).argmax(1) == labels)[ok])
            for m in methods:
                cands = m.propose(lr, seeds)
                accs[m.name].add(
                    **score_candidates(
                        cands,
                        hr,
                        cfg.scale,
                        lp,
                        labels=labels,
                        classifier=classifier,
                        embedder=timed,
                        hr_feats=hr_feats,
                        hr_embedding=hr_embedding,
                        lr=lr,
                        nominal_sigma=cond.nominal_sigma,
                    )
                )
    seconds = time.perf_counter() - t0
    has_cls = classifier is not None and labels_all is not None and bool((labels_all >= 0).any())
    hr_acc = float(torch.cat(hr_correct).double().mean()) * 100.0 if has_cls else None

    def summary(name: str) -> dict[str, Any]:
        return _summary(accs[name], n_samples, embedder is not None, has_cls)

    result = {
        "model": cfg.name,
        "dataset": dataset or data.source,
        "n_images": len(data),
        "n_samples": n_samples,
        "temperature": temperature,
        "seed": seed,
        "degradation": degradation,
        "consistency_operator": ("box filter" if cond.nominal_sigma <= 0
                                 else f"Gaussian {cond.nominal_sigma} LR px + box filter"),
        "classifier_hr_accuracy": hr_acc,
        "methods": {
            "varsr": summary("varsr"),
            "det": summary("det") if det is not None else None,
            "bicubic": summary("bicubic"),
        },
        "meta": {
            "det_model": det.config.name if det is not None else None,
            "classifier": classifier.info.data if classifier is not None else None,
            "classifier_heldout_accuracy": None if classifier is None else classifier.info.heldout_accuracy,
            "lpips": "AlexNet + LPIPS v0.1 heads; images with a short side under 64 px enlarged bilinearly",
            "ssim": "scikit-image defaults: 7x7 uniform window, data range 1, mean over channels",
            "acc_mean": "accuracy of the argmax of the candidates' mean softmax",
            "psnr_cap_db": metrics.PSNR_CAP,
            "identity": identity_meta(embedder, spent[0]),
            "seconds": round(seconds, 2),
        },
    }
    return result


# --- Markdown ------------------------------------------------------------------------------------
_LABELS = {"varsr": "VarSR", "det": "Det.", "bicubic": "Bicubic"}


def _fmt(v: Any, digits: int) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def _table(title: str, rows: list[tuple[str, str, int]], methods: dict[str, Any]) -> list[str]:
    names = [m for m in ("bicubic", "det", "varsr") if methods.get(m) is not None]
    lines = [
        f"**{title}**",
        "",
        "| | " + " | ".join(_LABELS[m] for m in names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for label, key, digits in rows:
        lines.append(f"| {label} | " + " | ".join(_fmt(methods[m][key], digits) for m in names) + " |")
    return lines + [""]


def to_markdown(r: dict[str, Any]) -> str:
    """Tables shaped like the paper's (methods as columns)."""
    m = r["methods"]
    n = r["n_samples"]
    out = [
        f"# varsr-eval: {r['model']} on {r['dataset']}, degradation '{r.get('degradation', 'ideal')}'",
        "",
        f"{r['n_images']} images, {n} samples per input (seed {r['seed']}). 'Best' PSNR/SSIM/MSE use "
        "the sample with the best PSNR; LPIPS and identity are the best (smallest) over the samples. "
        "MSE and consistency on the 0-255 scale.",
        "",
    ]
    out += _table(
        "Table 1/3. Distortion and perceptual quality",
        [
            ("PSNR (best)", "psnr_best", 2),
            ("PSNR (mean)", "psnr_mean", 2),
            ("SSIM", "ssim_best", 4),
            ("MSE", "mse_best", 2),
            ("LPIPS", "lpips_best", 4),
            ("Identity (1 - cos)", "identity_best", 4),
        ],
        m,
    )
    out += _table(
        "Table 2. Diversity and consistency",
        [
            ("Diversity (mean pairwise LPIPS)", "diversity", 4),
            ("Consistency (L1, 0-255)", "consistency_l1", 3),
            ("LR-PSNR (dB)", "lr_psnr", 2),
            ("LR-PSNR after enforcing consistency, 8-bit (dB)", "lr_psnr_enforced", 2),
        ],
        m,
    )
    if m["varsr"]["acc_best"] is not None:
        hr = _fmt(r["classifier_hr_accuracy"], 2)
        out += _table(
            f"Table 4. Classification accuracy (%) of the candidates (HR images: {hr}%; "
            "Mean = argmax of the mean softmax)",
            [("Best", "acc_best", 2), ("Mean", "acc_mean", 2)],
            m,
        )
        names = [k for k in ("det", "varsr") if m.get(k) is not None]
        out += [
            f"**Table 5. Number of distinct predicted classes among the {n} samples (share of images)**",
            "",
            "| | " + " | ".join(str(i) for i in range(1, n + 1)) + " |",
            "|---|" + "---|" * n,
        ]
        for k in names:
            hist = m[k]["distinct_classes"] or {}
            out.append(
                f"| {_LABELS[k]} | "
                + " | ".join(f"{100 * hist.get(str(i), 0.0):.2f}%" for i in range(1, n + 1))
                + " |"
            )
        out.append("")
    return "\n".join(out)
