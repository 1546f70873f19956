"""Multi-frame plate evaluation (#16): registry top 10 for 1, 2, 4, 8 and 16 frames of a clip.

    python -m core.video.plate_eval --data-root ../shared/data --plates 150 --out runs/video-plates.json

Clips are made from the held-out real plates of :func:`core.plates.evaluate.plates_from_data`
(UC3M-LP val, OpenALPR end-to-end, Argentine; never in the reader's or the models' training).
Each plate's boxed row (the scene, at 8x the camera's pixels) is filmed 16 times at ``px`` pixels
per character with :func:`core.model.camera.apply_camera`, one :class:`core.model.camera.CameraParams` per
frame drawn from the ``camera`` condition (Gaussian/defocus/motion optics, a fresh sub-pixel
shift of the sensor grid each frame, read and shot noise, JPEG inside a larger frame). Frames 3
and 11 get a long motion streak (3-5 camera px) and frame 7 is half occluded (a dark bar over
40-60 % of the row), as a passing car or a pedestrian would. Every frame is read with equal cells
in the polarity most frames prefer (``varsr``: ``k`` candidates per cell from the size's plate model;
``det``: its ``-det`` twin; ``bicubic``; ``varsr+bicubic``: the mean of the varsr and bicubic
distributions of each frame), and the first N frames are combined
(:func:`core.video.combine.combine_probs`) uniformly or weighted by a quality; the true plate's
rank in a registry of 20,000 plates (every true plate, 20 one-character neighbours of each, random
plates) is counted, ties against it. "best frame" is the single frame of the 16 with the highest
quality. Rates come with their number of plates and standard error; the 8-vs-1 ratio with a
bootstrap interval over plates.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

FRAMES = (1, 2, 4, 8, 16)
BLURRED = (3, 11)
OCCLUDED = (7,)


def film(scene: np.ndarray, n_chars: int, px: tuple[int, int], n_frames: int, seed: int) -> np.ndarray:
    """``n_frames`` camera frames ``(F, h, w)`` uint8 of a grey ``scene`` row (see the module docstring)."""
    from core.model.camera import CAMERA, apply_camera

    rng = random.Random(seed)
    hr = torch.from_numpy(scene.astype(np.float32) / 255.0)[None, None].repeat(n_frames, 1, 1, 1)
    params = []
    for f in range(n_frames):
        p = CAMERA.draw(rng)
        if f in BLURRED:
            p = replace(p, blur="motion", blur_size=rng.uniform(3.0, 5.0), blur_angle=rng.uniform(-20.0, 20.0))
        if f in OCCLUDED:
            w = hr.shape[-1]
            a = int(w * rng.uniform(0.0, 0.5))
            b = min(w, a + int(w * rng.uniform(0.4, 0.6)))
            hr[f, :, :, a:b] = rng.uniform(0.0, 0.25)
        params.append(p)
    lr = apply_camera(hr, (px[1], n_chars * px[0]), params)
    return (lr[:, 0].numpy() * 255).round().astype(np.uint8)


def read_frames_probs(clf: Any, frames: np.ndarray, n: int, px: tuple[int, int], models: dict[str, Any], k: int,
                      seed: int, readers: tuple[str, ...] | None = None) -> tuple[dict[str, np.ndarray], bool]:
    """Per reader, ``(F, n, K)`` per-position probabilities of every frame (one polarity for all).
    ``readers``: the model readers (``models``' keys) and ``bicubic`` / ``varsr+bicubic`` (the mean of the
    ``varsr`` and ``bicubic`` distributions, per frame); default every model."""
    from core.plates.prep import stretch, to_grey
    from core.plates.reading import (
        BICUBIC,
        FUSED,
        choose_polarity,
        cut_cells,
        equal_bounds,
        read_cells,
        reader_temperature,
    )

    t = reader_temperature(clf)
    bounds = equal_bounds(n)
    greys = [stretch(to_grey(f)) for f in frames]
    votes = [choose_polarity(clf, g, bounds, px, t)[0] for g in greys]
    inv = sum(votes) * 2 > len(votes) or (sum(votes) * 2 == len(votes) and votes[0])
    cells = torch.cat([cut_cells(255.0 - g if inv else g, bounds, px) for g in greys])
    readers = tuple(models) if readers is None else readers
    out = {}
    for name in readers:
        if name != FUSED:
            p = read_cells(clf, cells, BICUBIC if name == BICUBIC else "varsr", models.get(name), k, seed,
                           reader_t=t)
            out[name] = p.reshape(len(frames), n, -1)
    if FUSED in readers:
        out[FUSED] = (out["varsr"] + out[BICUBIC]) / 2
    return out, bool(inv)


def _rate(ok: list[bool]) -> tuple[float, float]:
    n = len(ok)
    p = float(np.mean(ok)) if n else float("nan")
    return p, math.sqrt(max(p * (1 - p), 0.0) / n) if n else float("nan")


def evaluate(plates: list[Any], px: tuple[int, int] = (2, 4), k: int = 16, seed: int = 0,
             registry_total: int = 20000, readers: tuple[str, ...] = ("varsr", "det"), log=print,
             partial: Callable[[dict[str, Any]], None] | None = None, pixel_mean: bool = True) -> dict[str, Any]:
    """Per-plate ranks for every reader, frame count and weighting (see the module docstring).
    ``partial`` is given the results so far after every plate (a long run can be stopped)."""
    from core.data.plates import CLASSES
    from core.model.bundle import load_model
    from core.plates.evaluate import Registry, build_registry, models_for
    from core.plates.reading import load_reader, reduce_row
    from core.video.combine import combine_probs, qualities, relative_weights

    clf = load_reader()
    models = {r: load_model(name) for r, name in models_for(px, readers).items()}
    if "varsr+bicubic" in readers and not {"varsr", "bicubic"} <= set(readers):
        raise ValueError("varsr+bicubic needs the varsr and bicubic readers")
    keys = [p.key for p in plates]
    registry = Registry(build_registry(sorted(set(keys)), registry_total, seed=seed))
    n_frames = max(FRAMES)
    records: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    for i, p in enumerate(plates):
        n = len(p.text)
        scene = p.row if p.row.shape[0] <= 8 * px[1] else reduce_row(p.row, n, (8 * px[0], 8 * px[1]))
        frames = film(scene, n, px, n_frames, seed * 100_003 + i)
        probs, inv = read_frames_probs(clf, frames, n, px, models, k, seed + i, readers)
        if pixel_mean:  # the first N frames averaged pixel by pixel, then read once (no registration)
            means = np.stack([frames[:nf].astype(np.float64).mean(0) for nf in FRAMES]).round().astype(np.uint8)
            mp, _ = read_frames_probs(clf, means, n, px, models, k, seed + i, readers)
        known = p.known
        rec: dict[str, Any] = {"id": p.id, "source": p.source, "inverted": inv, "ranks": {}}
        for r, pr in probs.items():
            pk = pr[:, known]
            q = {"confidence": qualities("confidence", list(pk)),
                 "sharpness": qualities("sharpness", list(pk), rows=list(frames))}
            for nf in FRAMES:
                frames_nf = list(pr[:nf])  # the prior comes from every position, known or not
                for qn, qv in (("uniform", [1.0] * nf), *((a, b[:nf]) for a, b in q.items())):
                    w = relative_weights(qv)
                    for tag, debias in (("", False), ("debiased-", True)):
                        comb = combine_probs(frames_nf, w, debias=debias)[known]
                        rec["ranks"][f"{r}/{tag}{qn}/{nf}"] = registry.rank(np.log(np.clip(comb, 1e-6, 1)), p.key)
            if pixel_mean:
                for j, nf in enumerate(FRAMES):
                    rec["ranks"][f"{r}/pixel-mean/{nf}"] = registry.rank(np.log(np.clip(mp[r][j][known], 1e-6, 1)),
                                                                         p.key)
            for qn, qv in q.items():
                best = int(np.argmax(qv))
                rec["ranks"][f"{r}/best-{qn}/1"] = registry.rank(np.log(np.clip(pk[best], 1e-6, 1)), p.key)
        records.append(rec)
        if log:
            log(f"{i + 1}/{len(plates)} plates ({time.perf_counter() - t0:.0f} s)")
        done = plates[: i + 1]
        res = {"px": f"{px[0]}x{px[1]}", "k": k, "seed": seed, "n_plates": len(done), "registry_size": registry.size,
               "frames": list(FRAMES), "blurred_frames": list(BLURRED), "occluded_frames": list(OCCLUDED),
               "sources": {s: sum(p.source == s for p in done) for s in sorted({p.source for p in done})},
               "summary": summarise(records), "records": records, "classes": len(CLASSES)}
        if partial:
            partial(res)
    return res


def summarise(records: list[dict[str, Any]], top: int = 10, boot: int = 2000) -> dict[str, Any]:
    """Registry top-``top`` rate and standard error per setting; 8-vs-1 ratios with bootstrap intervals."""
    out: dict[str, Any] = {}
    for key in records[0]["ranks"]:
        ok = [r["ranks"][key] <= top for r in records]
        p, se = _rate(ok)
        out[key] = {"top10": round(p, 4), "se": round(se, 4), "n": len(ok),
                    "top1": round(float(np.mean([r["ranks"][key] <= 1 for r in records])), 4),
                    "median_rank": float(np.median([r["ranks"][key] for r in records]))}
    rng = np.random.default_rng(0)
    for key in records[0]["ranks"]:
        if not key.endswith("/8"):
            continue
        one = key.split("/")[0] + "/uniform/1"
        a = np.array([r["ranks"][key] <= top for r in records], dtype=float)
        b = np.array([r["ranks"][one] <= top for r in records], dtype=float)
        idx = rng.integers(0, len(a), (boot, len(a)))
        sa, sb = a[idx].mean(1), b[idx].mean(1)
        ratios = sa[sb > 0] / sb[sb > 0]
        out[key]["ratio_to_1_frame"] = round(float(a.mean() / b.mean()), 2) if b.mean() > 0 else None
        if len(ratios) > boot // 2:
            lo, hi = np.percentile(ratios, [2.5, 97.5])
            out[key]["ratio_95ci"] = [round(float(lo), 2), round(float(hi), 2)]
    return out


def markdown(res: dict[str, Any]) -> str:
    """The 1-to-16-frame table: registry top 10 (%, +- one SE) per reader and weighting."""
    s = res["summary"]
    lines = [f"| reader | weights | best frame | {' | '.join(f'{f} frame' + ('s' if f > 1 else '') for f in FRAMES)} |",
             "|---|---|---|" + "---|" * len(FRAMES)]
    readers = sorted({k.split("/")[0] for k in s}, key=lambda r: (r != "varsr", r))
    for r in readers:
        for wname in ("uniform", "confidence", "sharpness", "debiased-uniform", "debiased-confidence",
                      "debiased-sharpness", "pixel-mean"):
            if f"{r}/{wname}/1" not in s:
                continue
            best = s.get(f"{r}/best-{wname}/1")
            cells = [f"{100 * best['top10']:.1f} ± {100 * best['se']:.1f}" if best else "–"]
            for f in FRAMES:
                v = s[f"{r}/{wname}/{f}"]
                cells.append(f"{100 * v['top10']:.1f} ± {100 * v['se']:.1f}")
            lines.append(f"| {r} | {wname} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def report(path: Path) -> str:
    """The table of a (possibly partial) results file."""
    return markdown(json.loads(path.read_text(encoding="utf-8")))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m core.video.plate_eval", description=__doc__.split("\n")[0])
    p.add_argument("--data-root", type=Path, default=Path("../shared/data"))
    p.add_argument("--sets", default="uc3m-val,endtoend,ar")
    p.add_argument("--plates", type=int, default=150, help="plates (taken evenly across the held-out sets)")
    p.add_argument("--px", default="2x4")
    p.add_argument("-k", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--readers", default="varsr,det,bicubic,varsr+bicubic")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    from core.plates.evaluate import plates_from_data

    torch.set_num_threads(args.threads)
    if not (args.data_root / "plates").is_dir():
        print(f"no plate data under {args.data_root}", file=sys.stderr)
        return 2
    plates = plates_from_data(args.data_root, args.sets.split(","))
    order = np.random.default_rng(args.seed).permutation(len(plates))  # every set from the first plates on
    plates = [plates[int(i)] for i in order[: args.plates]]
    px = tuple(int(v) for v in args.px.split("x"))

    def save(res: dict[str, Any]) -> None:
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(res, indent=1) + "\n", encoding="utf-8")

    res = evaluate(plates, (px[0], px[1]), args.k, args.seed, readers=tuple(args.readers.split(",")), partial=save)
    print(markdown(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
