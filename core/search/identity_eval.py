"""Identity-search evaluation: does the right person come up in the first 10 / 20 / 50 records?

On CelebA's identity-disjoint **test** split (``core.data.split``; no test identity was trained on):

* **probes**: the first photo (by file name) of every test identity with at least two photos, as the
  canonical 64x64 face frame, degraded to the model's input under a named condition of
  :mod:`core.model.camera` (probe ``i`` draws its camera from ``Random(seed + i)``, so every model and
  method sees exactly the same inputs);
* **gallery**: every other test photo, indexed as an analyst would (``core.search.gallery``: MTCNN,
  eye alignment, the bundled dlib embedder), one record per identity.

Methods: the HR face (upper bound), bicubic, the ``-det`` output, one VarSR candidate, and ``n``
candidates with each **fusion** of their per-record distances (:data:`FUSIONS`): ``min`` (the
record's best candidate), ``knn`` (mean of the 3 best), ``mean`` (the candidates' mean embedding),
``rrf`` (reciprocal-rank fusion of the candidates' rankings) and ``det+`` variants that add the det
output as one more query (``det+rrf`` weighs it like ``n/4`` candidates). Reported: top-1/10/20/50
hit rates with binomial standard errors, the median rank, and each method's paired difference to
det (McNemar's exact p on top-10).
"""

from __future__ import annotations

import csv
import hashlib
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

TOPS = (1, 10, 20, 50)
RRF_K = 60.0


@dataclass
class Gallery:
    """Embedded gallery photos grouped into records."""

    embeddings: np.ndarray  # (P, D)
    photo_record: np.ndarray  # (P,) record index of each photo
    records: list[str]
    index: Any = None  # the FaceIndex it was read from (for degraded-gallery matching)


def split_probes(groups: list[str], ids: list[str]) -> tuple[list[int], list[int]]:
    """Probe indices (first photo of each identity with 2+ photos) and gallery indices (the rest)."""
    by_id: dict[str, list[int]] = {}
    for i in sorted(range(len(ids)), key=lambda i: ids[i]):
        by_id.setdefault(groups[i], []).append(i)
    probes = [v[0] for v in by_id.values() if len(v) >= 2]
    taken = set(probes)
    return probes, [i for i in range(len(ids)) if i not in taken]


def record_distances(queries: np.ndarray, gallery: Gallery) -> np.ndarray:
    """``(Q, R)``: each query's distance to each record (its closest photo)."""
    q = torch.from_numpy(np.ascontiguousarray(queries, dtype=np.float32))
    g = torch.from_numpy(np.ascontiguousarray(gallery.embeddings, dtype=np.float32))
    d = torch.cdist(q, g)  # (Q, P)
    idx = torch.from_numpy(gallery.photo_record).long().expand(d.shape[0], -1)
    out = torch.full((d.shape[0], len(gallery.records)), float("inf"))
    out.scatter_reduce_(1, idx, d, reduce="amin")
    return out.numpy()


def ranks_of(dist: np.ndarray) -> np.ndarray:
    """Rank (1 = closest) of every record for each row of a ``(Q, R)`` distance matrix."""
    order = np.argsort(dist, axis=1, kind="stable")
    r = np.empty_like(order)
    rows = np.arange(dist.shape[0])[:, None]
    r[rows, order] = np.arange(1, dist.shape[1] + 1)[None, :]
    return r


def fuse(dist: np.ndarray, mode: str, k: int = 3, weights: np.ndarray | None = None) -> np.ndarray:
    """One score per record from ``(Q, R)`` query distances (lower is better)."""
    if mode == "min":
        return dist.min(0)
    if mode == "knn":
        return np.sort(dist, axis=0)[: min(k, dist.shape[0])].mean(0)
    if mode == "rrf":
        w = np.ones(dist.shape[0]) if weights is None else weights
        return -(w[:, None] / (RRF_K + ranks_of(dist))).sum(0)
    raise ValueError(f"unknown fusion {mode!r}")


def true_rank(scores: np.ndarray, true_record: int) -> int:
    """1-based rank of the true record (ties counted against it)."""
    return int((scores < scores[true_record]).sum() + (scores == scores[true_record]).sum())


FUSIONS = ("min", "knn", "mean", "rrf", "det+min", "det+rrf")
#: with a degraded gallery (:mod:`core.search.degraded`): det against it alone, det + it, and the fused
#: search (det, the candidates and the degraded gallery)
DEGRADED_METHODS = ("dd", "det+dd", "fused")


def method_ranks(e_det: np.ndarray, e_cands: np.ndarray, gallery: Gallery, true_record: int,
                 degraded: np.ndarray | None = None) -> dict[str, int]:
    """The true record's rank for det, one candidate and each fusion of the candidates (one probe).

    ``degraded``: the gallery photos' degraded-and-restored embeddings (``(P, D)``, rows as
    ``gallery.embeddings``); adds ``dd`` (det against them), ``det+dd`` and ``fused`` (det, the
    candidates' mean distance and ``dd``, each standardised over the records, summed: what
    ``varsr-search faces query --mode fused`` ranks by)."""
    d_det = record_distances(e_det[None], gallery)
    d_c = record_distances(e_cands, gallery)
    n = len(e_cands)
    both = np.concatenate([d_det, d_c])
    out = {
        "det": true_rank(d_det[0], true_record),
        "one": true_rank(d_c[0], true_record),
        "min": true_rank(fuse(d_c, "min"), true_record),
        "knn": true_rank(fuse(d_c, "knn"), true_record),
        "mean": true_rank(record_distances(e_cands.mean(0, keepdims=True), gallery)[0], true_record),
        "rrf": true_rank(fuse(d_c, "rrf"), true_record),
        "det+min": true_rank(fuse(both, "min"), true_record),
        "det+rrf": true_rank(fuse(both, "rrf", weights=np.r_[max(1.0, n / 4), np.ones(n)]), true_record),
    }
    if degraded is not None:
        from core.search.degraded import fuse_distances, standardise

        d_dd = record_distances(e_det[None], Gallery(degraded, gallery.photo_record, gallery.records))
        out["dd"] = true_rank(d_dd[0], true_record)
        out["det+dd"] = true_rank(standardise(d_det[0]) + standardise(d_dd[0]), true_record)
        out["fused"] = true_rank(fuse_distances(d_det, d_c, d_dd), true_record)
    return out


def summarise(ranks: np.ndarray) -> dict[str, float]:
    """Hit rates (percent) at :data:`TOPS` with binomial standard errors, and the median rank."""
    out: dict[str, float] = {"n": int(len(ranks)), "median_rank": float(np.median(ranks))}
    for k in TOPS:
        p = float((ranks <= k).mean())
        out[f"top{k}"], out[f"top{k}_se"] = p * 100, math.sqrt(p * (1 - p) / len(ranks)) * 100
    return out


def mcnemar_p(a: np.ndarray, b: np.ndarray) -> float:
    """Exact two-sided McNemar p for paired booleans (hits of two methods on the same probes)."""
    n01, n10 = int((a & ~b).sum()), int((~a & b).sum())
    n = n01 + n10
    if n == 0:
        return 1.0
    k = min(n01, n10)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


@dataclass
class Condition:
    """One row block of the report: a model pair under one degradation."""

    label: str
    varsr: str
    det: str
    degradation: str
    ranks: dict[str, list[int]] = field(default_factory=dict)


def build_gallery(data_root: Path, ids: list[str], groups: list[str], rows: list[int], index_dir: Path,
                  embedder: Any) -> Gallery:
    """Index the gallery photos (incremental: a kept ``index_dir`` re-embeds nothing)."""
    from core.search.gallery import build_index, load_index

    img_dir = data_root / "celeba" / "img_align_celeba"
    index_dir.mkdir(parents=True, exist_ok=True)
    csv_path = index_dir.parent / f"{index_dir.name}.csv"
    with open(csv_path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["path", "record_id"])
        for i in rows:
            w.writerow([str(img_dir / ids[i]), groups[i]])
    build_index(csv_path, index_dir, embedder)
    index = load_index(index_dir)
    names, inverse = np.unique(np.asarray(index.record_ids, dtype=str), return_inverse=True)
    return Gallery(index.embeddings, inverse.astype(np.int64), [str(n) for n in names], index)


def probe_setup(data_root: Path, cache_dir: Path, limit: int | None = None) -> tuple[Any, list[int], Gallery, Any]:
    """The CelebA test split, its identity-disjoint probes (the first ``limit``), the gallery of the
    other photos (its index cached under ``cache_dir``) and the embedder: what every identity
    evaluation (stills, clips) searches with."""
    from core.data.celeba import load_celeba
    from core.search.embedders import DlibFaceEmbedder

    data_root = Path(data_root).resolve()  # the gallery CSV names photos; a relative root would not resolve from it
    data = load_celeba(data_root / "celeba", "test", 64, attributes=False)
    probes, gallery_rows = split_probes(data.groups, data.ids)
    if limit:
        probes = probes[:limit]
    embedder = DlibFaceEmbedder()
    key = hashlib.sha256("\n".join(data.ids[i] for i in gallery_rows).encode()).hexdigest()[:12]
    gallery = build_gallery(data_root, data.ids, data.groups, gallery_rows, cache_dir / f"celeba-test-{key}",
                            embedder)
    return data, probes, gallery, embedder


def evaluate_search(data_root: Path, pairs: list[tuple[str, str, str, float | None]], degradations: list[str], *,
                    n: int = 16, seed: int = 0, limit: int | None = None, cache_dir: Path,
                    progress: bool = True, probe_size: int | None = None) -> dict[str, Any]:
    """Run every (label, varsr, det, temperature) pair under every degradation; returns the report dict.
    A temperature of None draws at the model's calibrated ``sample_temperature``.

    ``probe_size``: the probes' LR size in pixels (square). By default each pair is measured at its
    model's own input size; with a size, every pair sees the same ``probe_size`` px faces, reduced
    with the area filter to a smaller model input as the app reduces a crop (a model whose input is
    larger than the probe is refused: the app never enlarges a face). Bicubic is the probe enlarged."""
    import core
    from core.model.camera import degrade_seeded
    from core.model.degrade import upsample_bicubic

    t0 = time.perf_counter()
    data, probes, gallery, embedder = probe_setup(data_root, cache_dir, limit)
    rec_index = {r: i for i, r in enumerate(gallery.records)}
    truth = [rec_index[data.groups[i]] for i in probes]
    hr = data.float_images(torch.tensor(probes))
    e_hr = embedder.embed_frames(hr)
    hr_ranks = [true_rank(record_distances(e_hr[j:j + 1], gallery)[0], t) for j, t in enumerate(truth)]
    seeds = [seed + j for j in range(len(probes))]
    blocks: list[dict[str, Any]] = []
    for label, varsr_name, det_name, temperature in pairs:
        model, det = core.load_model(varsr_name), core.load_model(det_name)
        cfg = model.config
        temp = cfg.sample_temperature if temperature is None else temperature
        for deg in degradations:
            t = time.perf_counter()
            if probe_size is None:
                lr = degrade_seeded(hr, (cfg.lr_size[1], cfg.lr_size[0]), deg, seeds)
                e_bic = embedder.embed_frames(upsample_bicubic(lr, cfg.scale))
            else:
                if max(cfg.lr_size) > probe_size:
                    raise ValueError(f"{cfg.name} takes {cfg.lr_size[0]}x{cfg.lr_size[1]} faces: larger than the "
                                     f"{probe_size} px probes (the app never enlarges a face)")
                side = probe_size * (hr.shape[-1] // probe_size)  # the degradations take whole scale factors
                scene = hr if side == hr.shape[-1] else F.interpolate(hr, size=(side, side), mode="bilinear",
                                                                      antialias=True, align_corners=False)
                probe = degrade_seeded(scene, (probe_size, probe_size), deg, seeds)
                e_bic = embedder.embed_frames(F.interpolate(probe, size=tuple(hr.shape[-2:]), mode="bicubic",
                                                            align_corners=False).clamp(0, 1))
                lr = probe if tuple(probe.shape[-2:]) == (cfg.lr_size[1], cfg.lr_size[0]) else \
                    F.interpolate(probe, size=(cfg.lr_size[1], cfg.lr_size[0]), mode="area")
            with torch.inference_mode():
                e_det = embedder.embed_frames(det.generate(lr, None).float())
            degraded = None
            if gallery.index is not None:
                from core.model.camera import condition
                from core.search.degraded import degraded_embeddings

                degraded, _ = degraded_embeddings(gallery.index, det, embedder, condition(deg).nominal_sigma)
            ranks: dict[str, list[int]] = {"bicubic": [], "det": [], "one": []}
            for f in (*FUSIONS, *(DEGRADED_METHODS if degraded is not None else ())):
                ranks[f] = []
            for j in range(len(probes)):
                with torch.inference_mode():
                    cands = model.sample(lr[j], n, seed=seeds[j], temperature=temp).float()
                e_c = embedder.embed_frames(cands)
                r = method_ranks(e_det[j], e_c, gallery, truth[j], degraded)
                for name, v in r.items():
                    ranks[name].append(v)
                ranks["bicubic"].append(true_rank(record_distances(e_bic[j:j + 1], gallery)[0], truth[j]))
                if progress and (j + 1) % 50 == 0:
                    print(f"  {label} {deg}: {j + 1}/{len(probes)} probes", flush=True)
            arr = {k: np.asarray(v) for k, v in ranks.items()}
            det_hit = arr["det"] <= 10
            methods = {k: {**summarise(v), "p_vs_det_top10": mcnemar_p(v <= 10, det_hit),
                           "p_vs_det_top20": mcnemar_p(v <= 20, arr["det"] <= 20)} for k, v in arr.items()}
            blocks.append({"label": label, "varsr": cfg.name, "varsr_path": str(model.bundle_path or varsr_name),
                           "det": det.config.name, "lr_size": list(cfg.lr_size), "degradation": deg,
                           "probe_size": probe_size,
                           "temperature": temp,
                           "methods": methods, "seconds": round(time.perf_counter() - t, 1)})
            if progress:
                m = methods
                print(f"{label} {deg}: det top-10 {m['det']['top10']:.1f} %, best fusion "
                      f"{max(m[f]['top10'] for f in FUSIONS):.1f} %, bicubic {m['bicubic']['top10']:.1f} %"
                      + (f", fused {m['fused']['top10']:.1f} %" if "fused" in m else ""),
                      flush=True)
    return {"probes": len(probes), "gallery_photos": int(len(gallery.embeddings)), "records": len(gallery.records),
            "test_identities": len(set(data.groups)), "n_candidates": n, "seed": seed,
            "hr": summarise(np.asarray(hr_ranks)), "blocks": blocks,
            "seconds": round(time.perf_counter() - t0, 1)}


_NAMES = {"bicubic": "bicubic", "det": "det", "one": "1 candidate", "min": "{n}, min", "knn": "{n}, knn k=3",
          "mean": "{n}, mean embedding", "rrf": "{n}, reciprocal-rank fusion", "det+min": "det + {n}, min",
          "det+rrf": "det + {n}, RRF", "dd": "det vs degraded gallery",
          "det+dd": "det + det vs degraded gallery", "fused": "det + {n} + degraded gallery (fused)"}


def to_markdown(res: dict[str, Any]) -> str:
    """One table per (model pair, degradation)."""
    h = res["hr"]
    lines = [f"CelebA test split (identities never trained on): {res['probes']} probes, gallery of "
             f"{res['gallery_photos']} photos = {res['records']} records; {res['n_candidates']} candidates per "
             f"probe, seed {res['seed']}. HR probe (upper bound): top-1 {h['top1']:.1f} %, top-10 "
             f"{h['top10']:.1f} %, top-50 {h['top50']:.1f} %.", ""]
    for b in res["blocks"]:
        w, hh = b["lr_size"]
        probe = b.get("probe_size")
        size = f"{w}x{hh} input" if not probe else f"{probe}x{probe} faces" + (
            f" reduced to its {w}x{hh} input" if (w, hh) != (probe, probe) else "")
        lines += [f"**{b['label']}** ({b['varsr']} vs {b['det']}), {size}, degradation `{b['degradation']}`",
                  "", "| searched with | top-1 | top-10 | top-20 | top-50 | median rank | top-10 vs det (p) |",
                  "|---|---|---|---|---|---|---|"]
        for key, r in b["methods"].items():
            name = _NAMES[key].format(n=res["n_candidates"])
            cells = " | ".join(f"{r[f'top{k}']:.1f} ±{r[f'top{k}_se']:.1f}" for k in TOPS)
            p = "" if key == "det" else f"{r['p_vs_det_top10']:.3f}"
            lines.append(f"| {name} | {cells} | {r['median_rank']:.0f} | {p} |")
        lines.append("")
    lines.append("(percent of probes; ± one binomial standard error; p: exact McNemar test against det on the "
                 "same probes.)")
    return "\n".join(lines)
