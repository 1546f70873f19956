"""Whole-plate evaluation on real plates: strings and registry rank per pixels-per-character size.

    python -m core.plates.evaluate --data-root ../shared/data --out runs/plate-eval.json
    python -m core.plates.evaluate --rows ROWS.csv          # columns image,text (boxed rows)

For each plate (a character row boxed as an analyst would: the union of its character boxes
widened by 5 % of their height), each size (2x4, 3x6, 4x8 px per character) and each condition
(``ideal``: the area filter; ``camera``: :func:`core.model.camera.degrade_condition` with ``"camera"``),
the row is reduced to ``n`` x size, read (:func:`core.plates.reading.read_row`, equal cells,
polarity chosen by the reader) by each reader — ``varsr`` (``k`` candidates per cell from the
plate model the app and the batch pick for that size: the largest input not above it,
:func:`models_for`), ``det`` (that model's ``-det`` twin) and ``bicubic``, plus ``varsr+bicubic`` (the mean of those two
readings' per-position distributions) — and scored: the true
string in the top 1 / top 10 ranked strings, and the true plate's rank in a registry of at least
20,000 plates that holds every true plate, 20 one-character neighbours of each, and random plates
of the same lengths (ties count against it). Positions whose character is unknown (UC3M-LP's
greyed characters, ``*``) are left out of the strings, the registry keys and the scores. Every
figure comes with its number of plates and standard error.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from core.data.plates import CLASSES
from core.errors import VarSRError
from core.plates.prep import stretch, to_grey
from core.plates.reading import (
    BICUBIC,
    FUSED,
    MIX_KEY,
    cross_fitted_ece,
    equal_bounds,
    load_reader,
    polarity_scores,
    polarity_weights,
    read_row,
    reader_temperature,
    reduce_row,
)
from core.plates.real import MASK, PlateRow, load_argentina, load_endtoend, load_uc3m

SIZES = ((2, 4), (3, 6), (4, 8))
CONDITIONS = ("ideal", "camera")
READERS = ("varsr", "det", BICUBIC)


def models_for(px: tuple[int, int], readers: Sequence[str]) -> dict[str, str]:
    """Bundle names per model reader at ``px`` per character: ``varsr`` is the plate model the batch
    and the app pick for that size (:func:`core.plates.batch.auto_model`), ``det`` its ``-det`` twin."""
    from core.model.bundle import list_models
    from core.plates.batch import auto_model

    name = auto_model((float(px[0]), float(px[1])))
    if "det" in readers and f"{name}-det" not in list_models():
        raise VarSRError(f"{name}-det is not installed: det is measured with the picked model's own twin")
    out = {"varsr": name, "det": f"{name}-det"}
    return {r: out[r] for r in readers if r in out}


@dataclass
class EvalPlate:
    """A boxed character row of known text (``*`` at unknown positions)."""

    id: str
    text: str
    row: np.ndarray  # uint8 grey
    source: str

    @property
    def known(self) -> list[int]:
        return [i for i, c in enumerate(self.text) if c != MASK]

    @property
    def key(self) -> str:
        return "".join(c for c in self.text if c != MASK)


def fill_boxes(row: PlateRow) -> list[tuple[float, float, float, float]]:
    """Every position's box; an unknown one is its neighbour's moved by the median character pitch."""
    boxes = list(row.boxes)
    known = [(i, b) for i, b in enumerate(boxes) if b is not None]
    pitches = [(b[0] - a[0]) / (j - i) for (i, a), (j, b) in zip(known[:-1], known[1:], strict=True)]
    pitch = float(np.median(pitches)) if pitches else 0.0
    for _ in range(len(boxes)):
        for i, b in enumerate(boxes):
            if b is not None:
                continue
            p = boxes[i - 1] if i > 0 else None
            q = boxes[i + 1] if i + 1 < len(boxes) else None
            if p is not None:
                boxes[i] = (p[0] + pitch, p[1], p[2] + pitch, p[3])
            elif q is not None:
                boxes[i] = (q[0] - pitch, q[1], q[2] - pitch, q[3])
    filled = [b for b in boxes if b is not None]
    if len(filled) != len(boxes):
        raise ValueError(f"{row.id}: no position has a known box")
    return filled


def boxed_row(row: PlateRow, pad: float = 0.05) -> np.ndarray:
    """The character row as an analyst would box it: all characters, ``pad`` x their height around."""
    boxes = fill_boxes(row)
    h, w = row.image.shape
    ch = float(np.median([b[3] - b[1] for b in boxes]))
    m = pad * ch
    x0 = max(0, math.floor(min(b[0] for b in boxes) - m))
    x1 = min(w, math.ceil(max(b[2] for b in boxes) + m))
    y0 = max(0, math.floor(min(b[1] for b in boxes) - m))
    y1 = min(h, math.ceil(max(b[3] for b in boxes) + m))
    return row.image[y0:y1, x0:x1]


def plates_from_data(data_root: str | Path, sets: Sequence[str] = ("uc3m-val", "endtoend", "ar")) -> list[EvalPlate]:
    """The held-out real plates of ``../shared/data/plates`` as boxed rows (never in the reader's training)."""
    root = Path(data_root) / "plates"
    rows: list[PlateRow] = []
    if "uc3m-val" in sets:
        rows += [r for r in load_uc3m(root / "uc3m-lp", "val") if r.one_row]
    if "endtoend" in sets:
        rows += load_endtoend(root / "openalpr-endtoend")[0]
    if "ar" in sets:
        rows += load_argentina(root / "fast-plate-ocr-ar")[0]
    return [EvalPlate(r.id, r.text, boxed_row(r), r.source) for r in rows]


def plates_from_csv(path: str | Path) -> list[EvalPlate]:
    """Boxed rows listed in a CSV with columns ``image,text`` (paths relative to the CSV)."""
    from core.images import load_image
    from core.plates.prep import to_grey

    path = Path(path)
    out = []
    with path.open(newline="", encoding="utf-8") as f:
        for rec in csv.DictReader(f):
            text = rec["text"].strip().upper().replace("-", "").replace(" ", "")
            out.append(EvalPlate(rec["image"], text, to_grey(load_image(path.parent / rec["image"], "L")),
                                 path.name))
    return out


def build_registry(keys: Sequence[str], total: int = 20000, neighbours: int = 20, seed: int = 0) -> list[str]:
    """Every key, ``neighbours`` one-character variants of each, and random plates of the keys'
    lengths until there are at least ``total`` (distinct) plates."""
    rng = np.random.default_rng(seed)
    reg: dict[str, None] = dict.fromkeys(keys)
    for k in keys:
        made = 0
        while made < neighbours:
            i = int(rng.integers(len(k)))
            c = CLASSES[int(rng.integers(len(CLASSES)))]
            v = k[:i] + c + k[i + 1 :]
            if v != k and v not in reg:
                reg[v] = None
                made += 1
    lengths = [len(k) for k in keys]
    while len(reg) < total:
        n = lengths[int(rng.integers(len(lengths)))]
        reg["".join(CLASSES[int(i)] for i in rng.integers(len(CLASSES), size=n))] = None
    return list(reg)


class Registry:
    """Registry plates grouped by length as class codes, for vectorised scoring."""

    def __init__(self, plates: Sequence[str]) -> None:
        where = {c: i for i, c in enumerate(CLASSES)}
        self.by_len: dict[int, tuple[list[str], np.ndarray]] = {}
        for n in sorted({len(p) for p in plates}):
            ps = [p for p in plates if len(p) == n]
            self.by_len[n] = (ps, np.array([[where[c] for c in p] for p in ps], dtype=np.int64))
        self.size = len(plates)

    def rank(self, log_probs: np.ndarray, key: str) -> int:
        """1-based rank of ``key`` under ``log_probs (L, K)``; ties with other plates count against it."""
        return self.rank_mixture([(1.0, log_probs)], key)

    def rank_mixture(self, components: Sequence[tuple[float, np.ndarray]], key: str) -> int:
        """Like :meth:`rank` under a mixture: ``P(plate) = sum_c w_c prod_i P_ci(plate_i)`` for
        components ``(w_c, log_probs_c)`` (e.g. a row read as it is and inverted)."""
        from core.plates.strings import mixture_log_prob

        ps, codes = self.by_len[len(key)]
        scores = mixture_log_prob(components, codes)
        true = scores[ps.index(key)]
        return int((scores >= true - 1e-9).sum())

    def top(self, log_probs: np.ndarray, n: int = 10) -> list[str]:
        """The ``n`` best plates of the reading's length, best first (ties by plate)."""
        ps, codes = self.by_len.get(log_probs.shape[0], ([], np.zeros((0, 0), dtype=np.int64)))
        if not ps:
            return []
        scores = log_probs[np.arange(log_probs.shape[0])[None, :], codes].sum(1)
        order = np.lexsort((np.array(ps), -np.round(scores, 9)))[:n]
        return [ps[i] for i in order]


def string_rank(log_probs: np.ndarray, key: str, top: int = 10) -> int | None:
    """Rank (1-based) of ``key`` among the ``top`` best strings of a product distribution, or None."""
    return mixture_string_rank([(1.0, log_probs)], key, top)


def mixture_string_rank(components: Sequence[tuple[float, np.ndarray]], key: str, top: int = 10) -> int | None:
    """:func:`string_rank` under a mixture of product distributions
    (:func:`core.plates.strings.mixture_top_strings`)."""
    from core.plates.strings import mixture_top_strings

    for r, (s, _) in enumerate(mixture_top_strings(components, CLASSES, top), start=1):
        if s == key:
            return r
    return None


def _se(p: float, n: int) -> float:
    return math.sqrt(max(p * (1 - p), 0.0) / n) if n else float("nan")


def summarise(ranks: Sequence[dict], n_registry: int) -> dict:
    """Rates with standard errors from per-plate records (``string_rank``, ``registry_rank``)."""
    n = len(ranks)
    out: dict = {"n_plates": n, "registry_size": n_registry}
    for name, pred in (("strings_top1", lambda r: r["string_rank"] == 1),
                       ("strings_top10", lambda r: r["string_rank"] is not None),
                       ("registry_top1", lambda r: r["registry_rank"] <= 1),
                       ("registry_top10", lambda r: r["registry_rank"] <= 10),
                       ("chars", None)):
        if pred is None:
            ok = [c for r in ranks for c in r["chars_ok"]]
            p = float(np.mean(ok)) if ok else float("nan")
            out["chars"], out["chars_se"], out["n_chars"] = round(p, 4), round(_se(p, len(ok)), 4), len(ok)
            continue
        p = float(np.mean([pred(r) for r in ranks])) if n else float("nan")
        out[name], out[f"{name}_se"] = round(p, 4), round(_se(p, n), 4)
    out["registry_rank_median"] = float(np.median([r["registry_rank"] for r in ranks])) if n else float("nan")
    return out


def evaluate(plates: Sequence[EvalPlate], sizes: Sequence[tuple[int, int]] = SIZES,
             conditions: Sequence[str] = CONDITIONS, readers: Sequence[str] = READERS, k: int = 16,
             seed: int = 0, registry_total: int = 20000, search_cells: bool = False, log=print,
             partial: Path | None = None, reader: Path | None = None, temperature: float | None = None,
             polarity: str = "choose") -> dict:
    """All figures (see the module docstring) as a JSON-able dict (also written to ``partial``
    after every size and condition, so a long run that is stopped keeps what it measured).
    ``temperature``: draw the candidates at it instead of each model's ``sample_temperature``.
    ``polarity``: ``choose`` reads the row in the polarity the reader is surer of; ``mix`` reads it
    both ways and scores strings and registry under the mixture weighted by
    :func:`core.plates.reading.polarity_weights` (characters and calibration: the mixture's marginal)."""
    if polarity not in ("choose", "mix"):
        raise VarSRError(f"polarity must be 'choose' or 'mix', not {polarity!r}")
    from core.model.bundle import load_model
    from core.model.camera import degrade_condition

    clf = load_reader(reader)
    loaded: dict[str, object] = {}
    keys = [p.key for p in plates]
    reg_plates = build_registry(sorted(set(keys)), registry_total, seed=seed)
    registry = Registry(reg_plates)
    mix = polarity == "mix" and not search_cells  # a boundary search picks one polarity per row
    if polarity == "mix" and search_cells:
        log("--search-cells reads each row in the polarity its search picked: measured as 'choose'")
    results: dict = {"n_plates": len(plates), "registry_size": registry.size, "k": k, "seed": seed,
                     "temperature": temperature, "search_cells": search_cells, "reader": clf.info.data[:60],
                     "polarity": "mix" if mix else "choose",
                     "sources": {s: sum(p.source == s for p in plates) for s in sorted({p.source for p in plates})},
                     "table": []}
    calib: dict[tuple, list] = {}
    for px in sizes:
        names = models_for(px, readers)
        for bundle in names.values():
            if bundle not in loaded:
                loaded[bundle] = load_model(bundle)
        models = {r: loaded[b] for r, b in names.items()}
        results.setdefault("models", {})[f"{px[0]}x{px[1]}"] = names
        for cond in conditions:
            fused = "varsr" in readers and BICUBIC in readers
            shown = [*readers, *([FUSED] if fused else [])]
            recs: dict[str, list[dict]] = {r: [] for r in shown}
            t0 = time.perf_counter()
            for i, p in enumerate(plates):
                n = len(p.text)
                if cond == "ideal":
                    lr = reduce_row(p.row, n, px)
                else:
                    # the scene at 8x the camera's pixels is enough (and keeps the optics' kernels small)
                    src = p.row if p.row.shape[0] <= 8 * px[1] else reduce_row(p.row, n, (8 * px[0], 8 * px[1]))
                    hr = torch.from_numpy(src.astype(np.float32) / 255.0)[None, None]
                    lr_t = degrade_condition(hr, (px[1], n * px[0]), "camera", seed + i)
                    lr = (lr_t[0, 0].numpy() * 255).round().astype(np.uint8)
                known = p.known
                labels = np.array([CLASSES.index(p.text[j]) for j in known])
                invert, bounds = None, None
                if search_cells:
                    from core.plates.cells import search_bounds

                    found = search_bounds(clf, lr, n)
                    lr, bounds = found.apply(lr)
                    invert = found.inverted
                ways: list[bool | None] = [False, True] if mix else [invert]
                weights = (polarity_weights(polarity_scores(clf, stretch(to_grey(lr)), equal_bounds(n), px,
                                                            reader_temperature(clf)), n) if mix else (1.0,))
                read: dict[str, list[np.ndarray]] = {}
                for r in shown:
                    if r == FUSED:  # the candidates' and the bicubic reading's distributions, averaged
                        read[r] = [(a + b) / 2 for a, b in zip(read["varsr"], read[BICUBIC], strict=True)]
                    else:
                        read[r] = []
                        for w, inv in enumerate(ways):
                            rd = read_row(clf, lr, n, method=r if r == BICUBIC else "varsr", model=models.get(r),
                                          k=k, seed=seed + i, cell=px, invert=inv, bounds=bounds,
                                          temperature=temperature)
                            if not mix:
                                ways[w] = rd.inverted  # every reader reads the row in the polarity chosen once
                            read[r].append(rd.probs)
                    comps = [(wt, np.log(np.clip(pr[known], 1e-6, 1))) for wt, pr in zip(weights, read[r], strict=True)]
                    marginal = np.sum([wt * pr[known] for wt, pr in zip(weights, read[r], strict=True)], axis=0)
                    recs[r].append({"string_rank": mixture_string_rank(comps, p.key),
                                    "registry_rank": registry.rank_mixture(comps, p.key),
                                    "chars_ok": (marginal.argmax(1) == labels).tolist()})
                    calib.setdefault((r, px, cond), []).append((marginal, labels, i))
            for r in shown:
                row = {"reader": r, "px": f"{px[0]}x{px[1]}", "condition": cond,
                       **summarise(recs[r], registry.size)}
                probs = np.concatenate([c[0] for c in calib[(r, px, cond)]])
                labels = np.concatenate([c[1] for c in calib[(r, px, cond)]])
                group = np.concatenate([np.full(len(c[1]), c[2]) for c in calib[(r, px, cond)]])
                ece1, ece_t, temp = cross_fitted_ece(probs, labels, group)
                row.update(ece=round(ece1, 4), ece_tempered=round(ece_t, 4), temperature=round(temp, 3))
                results["table"].append(row)
                log(f"{row['px']} {cond:6s} {r:8s} strings top1 {row['strings_top1']:.3f} top10 "
                    f"{row['strings_top10']:.3f} registry top1 {row['registry_top1']:.3f} top10 "
                    f"{row['registry_top10']:.3f} chars {row['chars']:.3f} "
                    f"ece {row['ece']:.3f}/{row['ece_tempered']:.3f} "
                    f"({time.perf_counter() - t0:.0f} s)")
            if partial is not None:
                partial.parent.mkdir(parents=True, exist_ok=True)
                partial.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    return results


def save_temperatures(results: dict, condition: str = "camera", path: Path | None = None) -> dict:
    """Write the per-position temperatures fitted under ``condition`` into the reader's JSON
    (``extra.position_temperature``: reader -> size -> T; sizes not in ``results`` keep theirs; results
    of ``--polarity mix`` under ``<reader>@mix``) and return them."""
    from core.nets.classifier import default_path, load_classifier, save_classifier
    from core.plates.reading import READER

    path = path or default_path(READER)
    clf = load_classifier(path)
    temps: dict[str, dict[str, float]] = {r: dict(v) for r, v in
                                          clf.info.extra.get("position_temperature", {}).items()}
    suffix = MIX_KEY if results.get("polarity") == "mix" else ""
    for r in results["table"]:
        if r["condition"] == condition:
            temps.setdefault(r["reader"] + suffix, {})[r["px"]] = r["temperature"]
    clf.info.extra["position_temperature"] = temps
    clf.info.extra["position_temperature_note"] = (
        f"fitted (NLL) on the per-position probabilities of {results['n_plates']} held-out real plates under "
        f"the '{condition}' condition (python -m core.plates.evaluate); rankings do not change")
    save_classifier(clf, path)
    return temps


def markdown_table(results: dict) -> str:
    """The table of :func:`evaluate` as Markdown (rates in %, +- one standard error)."""
    lines = ["| px/char | condition | reader | chars | top-1 string | top-10 strings | registry top 1 | "
             "registry top 10 | median rank | ECE (T=1) | ECE (T fitted) | T |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results["table"]:
        def pc(name: str, row: dict = r) -> str:
            return f"{100 * row[name]:.1f} ± {100 * row[name + '_se']:.1f}"
        lines.append(f"| {r['px']} | {r['condition']} | {r['reader']} | {pc('chars')} | {pc('strings_top1')} | "
                     f"{pc('strings_top10')} | {pc('registry_top1')} | {pc('registry_top10')} | "
                     f"{r['registry_rank_median']:.0f} | {r['ece']:.3f} | {r['ece_tempered']:.3f} | "
                     f"{r['temperature']:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m core.plates.evaluate", description=__doc__.split("\n")[0])
    src = p.add_mutually_exclusive_group()
    src.add_argument("--data-root", type=Path, help="../shared/data: UC3M-LP val, OpenALPR end-to-end, Argentine")
    src.add_argument("--rows", type=Path, help="a CSV of boxed rows: columns image,text")
    p.add_argument("--sets", default="uc3m-val,endtoend,ar")
    p.add_argument("--sizes", default="2x4,3x6,4x8")
    p.add_argument("--conditions", default="ideal,camera")
    p.add_argument("--readers", default="varsr,det,bicubic")
    p.add_argument("--limit", type=int, help="the first N plates per set only")
    p.add_argument("-k", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--search-cells", action="store_true", help="search cell boundaries instead of equal cells")
    p.add_argument("--out", type=Path, help="write the JSON here")
    p.add_argument("--temperature", type=float,
                   help="draw candidates at this temperature (default: each model's sample_temperature, as the app)")
    p.add_argument("--reader", type=Path, help="a plate reader's .safetensors (default: the shipped plate-reader)")
    p.add_argument("--polarity", choices=("choose", "mix"), default="choose",
                   help="read each row in the polarity the reader is surer of, or both ways as a weighted mixture")
    p.add_argument("--save-temperatures", action="store_true",
                   help="write the fitted per-position temperatures (camera condition) into the reader's JSON")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.rows:
        plates = plates_from_csv(args.rows)
    else:
        plates = plates_from_data(args.data_root or Path("../shared/data"), args.sets.split(","))
    if args.limit:
        by_source: dict[str, list[EvalPlate]] = {}
        for pl in plates:
            by_source.setdefault(pl.source, []).append(pl)
        plates = [pl for v in by_source.values() for pl in v[: args.limit]]
    sizes: list[tuple[int, int]] = []
    for text in args.sizes.split(","):
        w, _, h = text.partition("x")
        sizes.append((int(w), int(h)))
    res = evaluate(plates, sizes, args.conditions.split(","), args.readers.split(","), args.k, args.seed,
                   search_cells=args.search_cells, partial=args.out, reader=args.reader, temperature=args.temperature,
                   polarity=args.polarity)
    text = markdown_table(res)
    print(text)
    if args.save_temperatures:
        print(json.dumps(save_temperatures(res, "camera" if "camera" in args.conditions else "ideal", args.reader)))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(res, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
