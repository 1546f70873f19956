"""Plate registry search benchmark: is the true plate among the top 10 strings at 2x4 px per character?

Plates of known text are made from held-out characters: the test split of the real OpenALPR
character crops (``core.data.load_plate_chars(..., "test")``, groups the plate-char model and the
classifier never trained on), 5 to 7 random crops side by side. Each character's 8x16 HR image is
degraded to 2x4 with :func:`core.model.degrade.degrade` and quantised to 8 bits, as a camera would
record it. Each plate is then read by:

- ``hr``: the classifier on the true 8x16 characters (the ceiling);
- ``bicubic``: the classifier on the bicubic upscale of the 2x4 cells;
- ``det``: on the ``plate-char-det`` model's output;
- ``varsr-K``: on ``K`` ``plate-char`` candidates per cell, mean of softmax (K = 1, 16, 64).

and :func:`core.search.plates.beam_search` ranks plate strings. Reported: top-1 / top-10 string
hit rate, per-character accuracy (argmax), and the rank of the true plate in a registry of
``--registry`` random plates plus all true plates (top-1 / top-10), and in a *hard* registry that
also holds ``--neighbours`` one-character variants of each true plate.

    python -m benchmarks.bench_plates [--data DIR] [--plates 500] [--registry 10000] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

TOPS = (1, 10)


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson interval of a rate k/n."""
    if n == 0:
        return (math.nan, math.nan)
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return (c - h, c + h)


def make_plates(labels: np.ndarray, n: int, rng: np.random.Generator, lengths: tuple[int, int] = (5, 7)
                ) -> list[np.ndarray]:
    """``n`` plates as index arrays into the character set (distinct characters within a plate)."""
    return [rng.choice(len(labels), int(rng.integers(lengths[0], lengths[1] + 1)), replace=False) for _ in range(n)]


def random_plates(n: int, classes: list[str], rng: np.random.Generator, lengths: tuple[int, int] = (5, 7)
                  ) -> list[str]:
    return ["".join(rng.choice(classes, int(rng.integers(lengths[0], lengths[1] + 1)))) for _ in range(n)]


def neighbours(text: str, k: int, classes: list[str], rng: np.random.Generator) -> list[str]:
    """``k`` distinct plates differing from ``text`` in exactly one position."""
    out: set[str] = set()
    while len(out) < k:
        i = int(rng.integers(len(text)))
        c = str(rng.choice([x for x in classes if x != text[i]]))
        out.add(text[:i] + c + text[i + 1 :])
    return sorted(out)


def char_probs(args: argparse.Namespace, hr: torch.Tensor) -> dict[str, np.ndarray]:
    """Per method: each character's class distribution ``(N, C)`` (mean softmax over its candidates)."""
    import core
    from core.model.degrade import degrade, upsample_bicubic
    from core.search.plates import load_plate_classifier

    clf = load_plate_classifier()
    lr = (degrade(hr, 4) * 255).round() / 255
    out: dict[str, np.ndarray] = {}
    t = time.perf_counter()
    out["hr"] = clf.probs(hr).double().numpy()
    out["bicubic"] = clf.probs(upsample_bicubic(lr, 4)).double().numpy()
    det = core.load_model("plate-char-det")
    out["det"] = clf.probs(torch.cat([det.generate(lr[i : i + 512], None) for i in range(0, len(lr), 512)])
                           ).double().numpy()
    model = core.load_model("plate-char")
    kmax = max(args.k)
    sums = {k: np.zeros((len(lr), len(clf.classes))) for k in args.k}
    geo = {k: np.zeros((len(lr), len(clf.classes))) for k in args.k if k > 1 and args.geo}
    for s in range(0, len(lr), 64):
        cands = model.sample(lr[s : s + 64], kmax, seed=args.seed + s, temperature=args.temperature)
        b = cands.shape[0]  # cands: (b, K, 1, 16, 8)
        p = clf.probs(cands.reshape(b * kmax, *cands.shape[2:])).double().numpy().reshape(b, kmax, -1)
        for k in args.k:
            sums[k][s : s + b] = p[:, :k].mean(1)
            if k in geo:  # ablation: geometric mean (mean of log-softmax), renormalised
                g = np.exp(np.log(np.maximum(p[:, :k], 1e-12)).mean(1))
                geo[k][s : s + b] = g / g.sum(1, keepdims=True)
    for k in args.k:
        out[f"varsr-{k}"] = sums[k]
        if k in geo:
            out[f"varsr-{k}-geomean"] = geo[k]
    print(f"read {len(lr)} characters with {len(out)} methods in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    return out


def evaluate(args: argparse.Namespace) -> dict:
    from core.data import load_plate_chars
    from core.search.plate_registry import parse_registry
    from core.search.plates import PlateReading, beam_search, rank_registry

    root = Path(args.data) / "plates" / "openalpr-train-ocr"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        chars = load_plate_chars(root, "test", sheets=args.sheets)
    classes = list(chars.classes)
    labels = chars.labels.numpy()
    hr = chars.images.float() / 255.0
    rng = np.random.default_rng(args.seed)
    plates = make_plates(labels, args.plates, rng)
    # each occurrence of a character in a plate is read on its own (its own candidates)
    flat = np.concatenate(plates)
    probs = char_probs(args, hr[torch.from_numpy(flat)])
    truths = ["".join(classes[labels[i]] for i in p) for p in plates]
    randoms = random_plates(args.registry, classes, rng)
    near = [n for t in truths for n in neighbours(t, args.neighbours, classes, rng)]
    easy_keys = sorted(set(randoms) | set(truths))
    hard_keys = sorted(set(randoms) | set(truths) | set(near))
    registries = {name: parse_registry("plate\n" + "\n".join(keys) + "\n", where=name)
                  for name, keys in (("random", easy_keys), ("hard", hard_keys))}
    results: dict[str, dict] = {}
    starts = np.cumsum([0] + [len(p) for p in plates])
    for method in probs:
        hits = {f"string_top{k}": 0 for k in TOPS}
        hits.update({f"{r}_top{k}": 0 for r in registries for k in TOPS})
        correct_chars = 0
        ranks: dict[str, list[int]] = {r: [] for r in registries}
        t = time.perf_counter()
        for j, truth in enumerate(truths):
            reading = PlateReading(probs[method][starts[j] : starts[j + 1]], classes)
            strings = [s for s, _ in beam_search(reading.log_probs, classes, max(TOPS))]
            for k in TOPS:
                hits[f"string_top{k}"] += truth in strings[:k]
            correct_chars += sum(a == b for a, b in zip(strings[0], truth, strict=True))
            for name, reg in registries.items():
                ranking = rank_registry(reading, reg)
                true_score = reading.score(truth)
                rank = int(np.sum(ranking.scores >= true_score - 1e-9))  # ties count against the true plate
                ranks[name].append(rank)
                for k in TOPS:
                    hits[f"{name}_top{k}"] += rank <= k
        n = len(truths)
        row = {key: round(100 * v / n, 1) for key, v in hits.items()}
        row.update({f"{key}_ci95": [round(100 * v, 1) for v in wilson(hits[key], n)] for key in hits})
        row["char_accuracy"] = round(100 * correct_chars / sum(len(t) for t in truths), 1)
        row.update({f"{name}_median_rank": float(np.median(r)) for name, r in ranks.items()})
        row["seconds_per_query"] = round((time.perf_counter() - t) / n, 4)
        results[method] = row
    return {
        "plates": n, "lengths": "5-7", "characters": int(len(flat)),
        "held_out_chars": int(len(labels)), "sheets": bool(args.sheets), "seed": args.seed,
        "temperature": args.temperature, "k": args.k,
        "registry_random": len(easy_keys), "registry_hard": len(hard_keys), "neighbours": args.neighbours,
        "scoring": "mean of softmax over candidates; log P(string) = sum of per-position log-probabilities",
        "methods": results,
    }


def table(res: dict) -> str:
    lines = ["| reader | char acc. | top-1 string | top-10 string | registry top-1 | registry top-10 | "
             "hard reg. top-1 | hard reg. top-10 |", "|---|---|---|---|---|---|---|---|"]
    for m, r in res["methods"].items():
        cells = [f"{r['char_accuracy']:.1f}%"] + [f"{r[k]:.1f}%" for k in (
            "string_top1", "string_top10", "random_top1", "random_top10", "hard_top1", "hard_top10")]
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from core.training.train import default_data_root

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=None, help="data root (default $VARSR_DATA or ../shared/data)")
    p.add_argument("--plates", type=int, default=500)
    p.add_argument("--k", type=lambda s: [int(v) for v in s.split(",")], default=[1, 16, 64],
                   help="candidates per cell to compare (default 1,16,64)")
    p.add_argument("--registry", type=int, default=10000, help="random plates in the registry")
    p.add_argument("--neighbours", type=int, default=20, help="one-character variants per true plate (hard)")
    p.add_argument("--sheets", action="store_true", help="also use held-out Tesseract sheet characters")
    p.add_argument("--temperature", type=float, default=1.0, help="sampling temperature of plate-char")
    p.add_argument("--geo", action="store_true", help="also rank with the geometric mean of the softmax (ablation)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", type=Path, help="write the results here")
    args = p.parse_args(argv)
    args.data = args.data or default_data_root()
    torch.set_num_threads(args.threads)
    res = evaluate(args)
    print(table(res))
    if args.json:
        args.json.write_text(json.dumps(res, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
