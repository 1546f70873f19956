"""Multi-frame face evaluation (#16): identity top-1/10/20 for 1, 2, 4, 8 and 16 frames of a clip.

    python -m core.video.face_eval --limit 120 -k 8 --json runs/video-faces.json

The probes, gallery and embedder are exactly those of :func:`core.search.identity_eval.evaluate_search`
(CelebA's identity-disjoint test split, one record per identity, the bundled dlib embedder). Each
probe's HR face is filmed :data:`N_FRAMES` times at the model's input size under the ``camera``
condition of :mod:`core.model.camera`, every frame with its own camera draw (sub-pixel shift, blur,
noise, JPEG differ). Frame 0 uses ``Random(seed + i)``, so it is the single-frame evaluation's probe;
frame ``f`` uses ``Random(seed + i + 100_003 * f)``. Frames :data:`BLURRED` get a long motion streak
(2.5-4 input px) and frames :data:`OCCLUDED` a dark block over a third to half of the face.

Methods, for the first N frames: ``det`` (the -det output of every frame, min distance per record
over frames), ``min`` / ``knn`` / ``mean`` (``k`` VarSR candidates per frame at the model's
``sample_temperature``, all frames' candidates fused as in the identity evaluation) and ``det+min``.
``best`` rows are the oracle single frame (the frame of the 16 whose det ranks the truth best), with
that frame's det or candidates. Reported: top-1/10/20 with standard errors, the 8-vs-1-frame ratio
of top-10 and McNemar's exact p of 8 frames against 1 frame (the first) on the same probes.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.search.identity_eval import Gallery, fuse, mcnemar_p, record_distances, summarise, true_rank

FRAMES = (1, 2, 4, 8, 16)
N_FRAMES = max(FRAMES)
BLURRED = (5,)
OCCLUDED = (13,)
METHODS = ("det", "min", "knn", "mean", "det+min", "fused")
TOPS_SHOWN = (1, 10, 20)


def frame_seeds(seed: int, probe: int, n_frames: int = N_FRAMES) -> list[int]:
    """Camera seeds of one probe's frames (frame 0 is the single-frame evaluation's probe seed)."""
    return [seed + probe + 100_003 * f for f in range(n_frames)]


def film(hr: torch.Tensor, lr_size: tuple[int, int], seeds: list[int], condition: str = "camera") -> torch.Tensor:
    """``(F, C, h, w)`` frames of one HR face ``(C, H, W)``: one camera draw per seed, spoiled frames included."""
    from core.model.camera import apply_camera
    from core.model.camera import condition as get_condition

    cam = get_condition(condition)
    x = hr[None].repeat(len(seeds), 1, 1, 1).clone()
    params = []
    for f, s in enumerate(seeds):
        rng = random.Random(s)
        p = cam.draw(rng)
        if f in BLURRED:
            p = replace(p, blur="motion", blur_size=rng.uniform(2.5, 4.0), blur_angle=rng.uniform(0.0, 180.0))
        if f in OCCLUDED:
            h, w = x.shape[-2:]
            bh, bw = int(h * rng.uniform(0.35, 0.5)), int(w * rng.uniform(0.6, 1.0))
            y0, x0 = rng.randint(h // 4, h - bh), rng.randint(0, w - bw)
            x[f, :, y0:y0 + bh, x0:x0 + bw] = rng.uniform(0.0, 0.2)
        params.append(p)
    return apply_camera(x, lr_size, params)


def clip_ranks(e_det: np.ndarray, e_cands: np.ndarray, gallery: Gallery, truth: int,
               frames: tuple[int, ...] = FRAMES, degraded: np.ndarray | None = None) -> dict[str, int]:
    """The true record's rank per ``method/N`` (first N frames) and ``method/best`` (oracle frame).

    ``e_det``: ``(F, D)`` one det embedding per frame; ``e_cands``: ``(F, k, D)`` candidates per frame;
    ``degraded``: the gallery's degraded-and-restored embeddings (adds ``fused``, the search of
    :func:`core.search.degraded.fused_record_scores` over the frames' det outputs and candidates)."""
    from core.search.degraded import fuse_distances

    f_all, k = e_cands.shape[:2]
    d_det = record_distances(e_det, gallery)  # (F, R)
    d_c = record_distances(e_cands.reshape(f_all * k, -1), gallery).reshape(f_all, k, -1)
    d_dd = None if degraded is None else record_distances(
        e_det, Gallery(degraded, gallery.photo_record, gallery.records))  # (F, R)
    out: dict[str, int] = {}

    def fused(rows: slice | list[int], tag: str) -> None:
        if d_dd is not None:
            out[f"fused/{tag}"] = true_rank(fuse_distances(d_det[rows], d_c[rows].reshape(-1, d_c.shape[-1]),
                                                           d_dd[rows]), truth)

    def cands(d: np.ndarray, e: np.ndarray, tag: str) -> None:
        out[f"min/{tag}"] = true_rank(fuse(d, "min"), truth)
        out[f"knn/{tag}"] = true_rank(fuse(d, "knn"), truth)
        out[f"mean/{tag}"] = true_rank(record_distances(e.mean(0, keepdims=True), gallery)[0], truth)

    for n in frames:
        dd, dc = d_det[:n], d_c[:n].reshape(n * k, -1)
        out[f"det/{n}"] = true_rank(dd.min(0), truth)
        cands(dc, e_cands[:n].reshape(n * k, -1), str(n))
        out[f"det+min/{n}"] = true_rank(np.minimum(dd.min(0), dc.min(0)), truth)
        fused(slice(0, n), str(n))
    det_each = [true_rank(d_det[f], truth) for f in range(f_all)]
    best = int(np.argmin(det_each))
    out["det/best"] = det_each[best]
    cands(d_c[best], e_cands[best], "best")
    out["det+min/best"] = true_rank(np.minimum(d_det[best], d_c[best].min(0)), truth)
    fused([best], "best")
    return out


def probe_ranks(model: Any, det: Any, embedder: Any, lr: torch.Tensor, gallery: Gallery, truth: int, k: int,
                seed: int, temperature: float, degraded: np.ndarray | None = None) -> dict[str, int]:
    """Det and ``k`` candidates for every frame ``(F, C, h, w)`` of one clip, embedded and ranked."""
    with torch.inference_mode():
        sr_det = det.generate(lr, None).float()
        cands = model.sample(lr, k, seed=seed, temperature=temperature).float()  # (F, k, C, H, W)
    e_det = embedder.embed_frames(sr_det)
    e_c = embedder.embed_frames(cands.reshape(-1, *cands.shape[2:])).reshape(len(lr), k, -1)
    return clip_ranks(e_det, e_c, gallery, truth, degraded=degraded)


def summary(records: list[dict[str, int]]) -> dict[str, Any]:
    """Per key: :func:`summarise` of the ranks; for ``/8`` keys the top-10 ratio and McNemar p to ``/1``."""
    out: dict[str, Any] = {}
    for key in records[0]:
        r = np.asarray([rec[key] for rec in records])
        out[key] = summarise(r)
        if key.endswith("/8"):
            one = np.asarray([rec[key[:-1] + "1"] for rec in records])
            a, b = r <= 10, one <= 10
            out[key]["ratio_8_to_1"] = float(a.mean() / b.mean()) if b.any() else None
            out[key]["p_vs_1_frame"] = mcnemar_p(a, b)
    return out


def evaluate(data_root: Path, varsr: str = "face-16", det_name: str = "face-16-det", k: int = 8, seed: int = 0,
             limit: int | None = None, cache_dir: Path = Path(".cache/search-eval"), condition: str = "camera",
             log: Callable[[str], None] | None = lambda s: print(s, flush=True),
             partial: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Run the clip evaluation (see the module docstring); ``partial`` gets the report after every probe."""
    import core
    from core.search.identity_eval import probe_setup

    t0 = time.perf_counter()
    data_root = data_root.resolve()  # the gallery CSV is read from the cache folder
    data, probes, gallery, embedder = probe_setup(data_root, cache_dir, limit)
    rec_index = {r: i for i, r in enumerate(gallery.records)}
    model, det = core.load_model(varsr), core.load_model(det_name)
    cfg = model.config
    temp = float(cfg.sample_temperature)
    lr_size = (cfg.lr_size[1], cfg.lr_size[0])
    degraded = None
    if gallery.index is not None:
        from core.model.camera import condition as get_condition
        from core.search.degraded import degraded_embeddings

        degraded, _ = degraded_embeddings(gallery.index, det, embedder, get_condition(condition).nominal_sigma)
    records: list[dict[str, int]] = []
    res: dict[str, Any] = {}
    for j, i in enumerate(probes):
        hr = data.float_images(torch.tensor([i]))[0]
        lr = film(hr, lr_size, frame_seeds(seed, j), condition)
        records.append(probe_ranks(model, det, embedder, lr, gallery, rec_index[data.groups[i]], k, seed + j, temp,
                                   degraded))
        res = {"probes": len(records), "probes_planned": len(probes), "gallery_photos": int(len(gallery.embeddings)),
               "records": len(gallery.records), "varsr": cfg.name, "det": det.config.name,
               "lr_size": list(cfg.lr_size), "condition": condition, "k": k, "temperature": temp, "seed": seed,
               "frames": list(FRAMES), "blurred_frames": list(BLURRED), "occluded_frames": list(OCCLUDED),
               "summary": summary(records), "ranks": records, "seconds": round(time.perf_counter() - t0, 1)}
        if partial:
            partial(res)
        if log and ((j + 1) % 5 == 0 or j + 1 == len(probes)):
            s = res["summary"]
            log(f"{j + 1}/{len(probes)} probes ({res['seconds']:.0f} s): top-10 det 1->8 frames "
                f"{s['det/1']['top10']:.1f} -> {s['det/8']['top10']:.1f} %, min {s['min/1']['top10']:.1f} -> "
                f"{s['min/8']['top10']:.1f} %")
    return res


_NAMES = {"det": "det", "min": "{k}/frame, min", "knn": "{k}/frame, knn k=3", "mean": "{k}/frame, mean embedding",
          "det+min": "det + {k}/frame, min", "fused": "fused: det + {k}/frame + degraded gallery"}


def markdown(res: dict[str, Any]) -> str:
    """Top-10 per method and frame count, then top-1/10/20 at 1 and 8 frames with ratio and p."""
    s, k = res["summary"], res["k"]
    methods = [m for m in METHODS if f"{m}/1" in s]
    lines = [f"| searched with | best frame (oracle) | {' | '.join(f'{f} fr.' for f in FRAMES)} |",
             "|---|---|" + "---|" * len(FRAMES)]
    for m in methods:
        row = [f"{s[f'{m}/{t}']['top10']:.1f} ±{s[f'{m}/{t}']['top10_se']:.1f}" for t in ("best", *FRAMES)]
        lines.append(f"| {_NAMES[m].format(k=k)} | " + " | ".join(row) + " |")
    lines += ["", "| searched with | frames | " + " | ".join(f"top-{t}" for t in TOPS_SHOWN)
              + " | top-10, 8 vs 1 frame | p (McNemar) |", "|---|---|" + "---|" * (len(TOPS_SHOWN) + 2)]
    for m in methods:
        for t in ("1", "8"):
            r = s[f"{m}/{t}"]
            cells = " | ".join(f"{r[f'top{x}']:.1f} ±{r[f'top{x}_se']:.1f}" for x in TOPS_SHOWN)
            ratio = r.get("ratio_8_to_1")
            extra = ("", "")
            if t == "8":
                extra = (f"{ratio:.2f}x" if ratio is not None else "–", f"{r['p_vs_1_frame']:.3f}")
            lines.append(f"| {_NAMES[m].format(k=k)} | {t} | {cells} | {extra[0]} | {extra[1]} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m core.video.face_eval", description=__doc__.split("\n")[0])
    p.add_argument("--data-root", type=Path, default=Path("../shared/data"))
    p.add_argument("--varsr", default="face-16")
    p.add_argument("--det", default="face-16-det")
    p.add_argument("-k", type=int, default=8, help="candidates per frame (default 8)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, default=None, help="first N probes only")
    p.add_argument("--condition", default="camera")
    p.add_argument("--cache-dir", type=Path, default=Path(".cache/search-eval"), help="where the gallery index is kept")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", type=Path, default=None, help="results (rewritten after every probe)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if not (args.data_root / "celeba" / "img_align_celeba").is_dir():
        print(f"no CelebA under {args.data_root}", file=sys.stderr)
        return 2

    def save(res: dict[str, Any]) -> None:
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(res, indent=1) + "\n", encoding="utf-8")

    res = evaluate(args.data_root, args.varsr, args.det, args.k, args.seed, args.limit, args.cache_dir,
                   args.condition, partial=save)
    print(f"{res['probes']} probes, {res['records']} records, k={res['k']}, T={res['temperature']}")
    print(markdown(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
