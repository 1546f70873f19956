"""Batch reading of boxed character rows against a plate registry (a fixed contract).

    varsr-search plates batch REGISTRY.csv --rows ROWS.csv --out OUT.jsonl [--model auto|NAME] [-k 16]

``ROWS.csv`` has columns ``image,cells`` (paths relative to the CSV; each image a boxed character
row at whatever size it is, or a folder of frames of one row, combined: :mod:`core.video.combine`).
``OUT.jsonl`` gets one JSON object per row, in order, with ``image``,
``strings`` (at least 10 ranked plate strings, best first), ``registry`` (at least 10 ranked
registry plates of the row's length, best first, when the registry has that many), and the
details: the model used, the polarity, the cell boundaries, and per position the top classes with
their probabilities and an ``unreliable`` flag. A row that cannot be read gets
``{"image": ..., "error": "..."}`` and the batch goes on.

``--model auto`` (the default) picks, among the bundled plate-character models, the one whose
input is the largest not above the row's pixels per character (else the smallest). A VarSR model's
candidates are read beside the row's bicubic upscale (the mean of the two per-position distributions,
``"reading": "varsr+bicubic"``, the best reading measured on held-out real plates at every size);
``--candidates-only`` reads the candidates alone.
"""

from __future__ import annotations

import argparse
import csv
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import VarSRError
from core.plates.prep import stretch, to_grey
from core.plates.reading import (
    BICUBIC,
    FUSED,
    RowReading,
    entropy,
    equal_bounds,
    load_reader,
    polarity_scores,
    polarity_weights,
    position_temperature,
    read_row,
    reader_temperature,
    temper,
)
from core.plates.strings import mixture_log_prob, mixture_top_strings
from core.search.plates import MAX_ENTROPY, MIN_TOP

AUTO = "auto"
MIN_RESULTS = 10
#: Read a row both ways up and rank under the mixture (the default), or in the surer polarity.
MIX, CHOOSE = "mix", "choose"
NOTICE = ("Ranked strings and registry plates are investigative leads from synthetic candidates, "
          "never a reading of the plate and never evidence.")


def plate_models() -> list[tuple[str, tuple[int, int]]]:
    """Bundled plate-character VarSR models (not ``-det``) and their input sizes (w, h), smallest first."""
    from core.model.bundle import list_models, read_config, resolve

    out = []
    for name in list_models():
        try:
            cfg = read_config(resolve(name))
        except (VarSRError, OSError, ValueError):
            continue
        if cfg.domain == "plate-char" and not cfg.deterministic:
            out.append((name, (int(cfg.lr_size[0]), int(cfg.lr_size[1]))))
    return sorted(out, key=lambda m: (m[1][1], m[1][0], m[0]))


def auto_model(px_per_char: tuple[float, float], models: list[tuple[str, tuple[int, int]]] | None = None) -> str:
    """The plate model for a row of ``px_per_char`` = (w, h): the largest input not above it, else the smallest."""
    models = plate_models() if models is None else models
    if not models:
        raise VarSRError("no plate-character model is bundled")
    fit = [m for m in models if m[1][1] <= px_per_char[1] + 0.5]
    return (fit[-1] if fit else models[0])[0]


@dataclass
class RegistryIndex:
    """A registry's plates grouped by length, as class codes (for scoring whole registries at once)."""

    plates: dict[int, tuple[list[str], np.ndarray]]

    @classmethod
    def from_registry(cls, registry: Any, classes: list[str]) -> RegistryIndex:
        groups: dict[int, tuple[list[str], np.ndarray]] = {}
        for n in sorted(registry.lengths()):
            idx, codes = registry.encoded(classes, n)
            groups[n] = ([registry.keys[int(i)] for i in idx], codes)
        return cls(groups)

    def ranked_mixture(self, components: list[tuple[float, np.ndarray]], top: int) -> list[dict[str, Any]]:
        """The ``top`` plates under a mixture of readings ``(weight, log_probs (L, K))``, best first."""
        ps, codes = self.plates.get(components[0][1].shape[0], ([], np.zeros((0, 0), dtype=np.int64)))
        if not ps:
            return []
        scores = mixture_log_prob(components, codes)
        order = np.lexsort((np.array(ps), -np.round(scores, 9)))[:top]
        return [{"plate": ps[i], "log_prob": round(float(scores[i]), 4)} for i in order]


def positions(reading: RowReading, top: int = 3) -> list[dict[str, Any]]:
    """Per position: the top classes with probabilities, entropy and the unreliable flag."""
    out = []
    ent = entropy(reading.probs)
    for i, p in enumerate(reading.probs):
        order = np.argsort(-p, kind="stable")[:top]
        out.append({"top": [[reading.classes[c], round(float(p[c]), 4)] for c in order],
                    "entropy": round(float(ent[i]), 4),
                    "unreliable": bool(ent[i] > MAX_ENTROPY or p[order[0]] < MIN_TOP)})
    return out


def _read_image(img: Any, cells: int, clf, name: str, model: Any, k: int, seed: int, search: bool,
                invert: bool | None = None, fuse: bool = True) -> RowReading:
    """One boxed row image's reading (cells searched when ``search``; polarity chosen unless ``invert``);
    a VarSR model's candidates are read beside the bicubic upscale (``fuse``: the mean of the two
    distributions, ``varsr+bicubic``, the best reading measured on held-out real plates)."""
    row, bounds = np.asarray(img), None
    if search:
        from core.plates.cells import search_bounds

        found = search_bounds(clf, row, cells, invert=invert)
        row, bounds = found.apply(row)
        invert = found.inverted
    reading = read_row(clf, row, cells, method=BICUBIC if model is None else "varsr", model=model, k=k,
                       seed=seed, bounds=bounds, invert=invert)
    if fuse and reading.method == "varsr":
        bic = read_row(clf, row, cells, method=BICUBIC, bounds=reading.bounds, invert=reading.inverted)
        reading.probs, reading.method = (reading.probs + bic.probs) / 2, FUSED
    return reading


def read_one(image_path: Path, cells: int, registry: RegistryIndex | None, clf, model_name: str, k: int,
             seed: int, top: int, search: bool, get_model: Callable[[str], Any], fuse: bool = True,
             polarity: str = MIX) -> dict[str, Any]:
    """One output line for one row (raises VarSRError / OSError / ValueError when it cannot be read).

    ``image_path`` may be a folder of frames of the same row (any order): each is read and the
    frames are combined (:mod:`core.video.combine`); the line then lists them with their weights.
    ``polarity`` ``mix`` (a single image): the row is read as it is and inverted, and strings and
    registry are ranked under the two readings' mixture (:func:`core.plates.reading.polarity_weights`);
    ``choose``: in the polarity the reader is surer of (always so for frames)."""
    from core.images import load_image
    from core.video.combine import frame_images

    paths = frame_images(image_path)
    imgs = [load_image(p, "L") for p in paths]
    w, h = imgs[0].size
    if cells < 1 or min(im.size[0] for im in imgs) < cells:
        raise VarSRError(f"{cells} cells in a row {w} px wide")
    name = auto_model((w / cells, h)) if model_name == AUTO else model_name
    model = None if name == BICUBIC else get_model(name)
    if model is not None and model.config.domain != "plate-char":
        raise VarSRError(f"model '{name}' is a {model.config.domain} model, not a plate-character model")
    extra: dict[str, Any] = {}
    if polarity == MIX and len(imgs) == 1:
        shown, mixture, temp, extra = _read_both_ways(imgs[0], cells, clf, name, model, k, seed, search, fuse)
    else:
        shown = _read_image(imgs[0], cells, clf, name, model, k, seed, search, fuse=fuse)
        if len(imgs) > 1:
            from core.video.combine import read_frames

            shown, extra["frames"] = read_frames(
                imgs, [p.name for p in paths],
                lambda im, inv: _read_image(im, cells, clf, name, model, k, seed, search, inv, fuse), shown)
        temp = position_temperature(clf, shown.method, (w / cells, h))
        shown.probs = temper(shown.probs, temp)
        mixture = [(1.0, np.log(np.clip(shown.probs, 1e-6, 1)))]
    n = max(top, MIN_RESULTS)
    strings = mixture_top_strings(mixture, shown.classes, n)
    hits = registry.ranked_mixture(mixture, n) if registry is not None else []
    pos = positions(shown)
    line = {"image": str(image_path), "cells": cells, "model": name, "reading": shown.method, "k": shown.k,
            "seed": seed, "size": [w, h], "px_per_char": [round(w / cells, 2), h],
            "inverted": shown.inverted, "position_temperature": round(temp, 3),
            "bounds": [round(b, 4) for b in shown.bounds],
            "strings": [s for s, _ in strings], "string_log_probs": [round(v, 4) for _, v in strings],
            "registry": [x["plate"] for x in hits], "registry_log_probs": [x["log_prob"] for x in hits],
            "positions": pos, "unreliable": any(p["unreliable"] for p in pos), "notice": NOTICE}
    line.update(extra)
    return line


def _read_both_ways(img: Any, cells: int, clf, name: str, model: Any, k: int, seed: int, search: bool, fuse: bool
                    ) -> tuple[RowReading, list[tuple[float, np.ndarray]], float, dict[str, Any]]:
    """A row read as it is and inverted: the reading to show (the heavier one's polarity and bounds, the
    mixture's per-position marginal tempered as fitted for the mixture), the mixture to rank by (the
    untempered readings, as measured), that temperature, and the line's polarity fields."""
    w, h = img.size
    readings = [_read_image(img, cells, clf, name, model, k, seed, search, invert, fuse) for invert in (False, True)]
    row = stretch(to_grey(np.asarray(img)))
    weights = polarity_weights(polarity_scores(clf, row, equal_bounds(cells), (max(1, round(w / cells)), max(1, h)),
                                               reader_temperature(clf)), cells)
    method = readings[0].method
    temp = position_temperature(clf, method, (w / cells, h), mixture=True)
    mixture = [(wt, np.log(np.clip(rd.probs, 1e-6, 1))) for wt, rd in zip(weights, readings, strict=True)]
    main = readings[int(weights[1] > weights[0])]
    marginal = weights[0] * readings[0].probs + weights[1] * readings[1].probs
    shown = RowReading(temper(marginal, temp), main.classes, main.inverted, main.bounds, method, main.k)
    return shown, mixture, temp, {"polarity": MIX, "polarity_weights": [round(v, 4) for v in weights]}


def read_rows_csv(path: Path) -> list[dict[str, str]]:
    """The rows of ``ROWS.csv`` (columns ``image`` and ``cells``)."""
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            cols = [c.strip() for c in reader.fieldnames or []]
            if "image" not in cols or "cells" not in cols:
                raise VarSRError(f"{path}: needs columns image,cells (found {', '.join(cols) or 'none'})")
            return [{(k or "").strip(): (v or "").strip() for k, v in rec.items()} for rec in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise VarSRError(f"{path}: cannot read the rows CSV ({e})") from e


def run_batch(registry_path: Path | None, rows_csv: Path, out: Path, model: str = AUTO, k: int = 16,
              seed: int = 0, top: int = MIN_RESULTS, column: str | None = None, search_cells: bool = True,
              classifier: Path | None = None, log: Callable[[str], None] | None = None,
              fuse: bool = True, polarity: str = MIX) -> dict[str, int]:
    """Read every row of ``rows_csv`` and write one JSON line each to ``out``; returns counts."""
    from core.model.bundle import load_model

    rows = read_rows_csv(rows_csv)
    clf = load_reader(classifier)
    registry = None
    if registry_path is not None:
        from core.search.plate_registry import load_registry

        registry = RegistryIndex.from_registry(load_registry(registry_path, column), list(clf.classes))
    cache: dict[str, Any] = {}

    def get_model(name: str) -> Any:
        if name not in cache:
            cache[name] = load_model(name)
        return cache[name]

    done = failed = 0
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as f:
        for i, rec in enumerate(rows):
            image = rec.get("image", "")
            try:
                try:
                    cells = int(rec.get("cells", ""))
                except ValueError as e:
                    raise VarSRError(f"cells must be a whole number, not {rec.get('cells')!r}") from e
                if not image:
                    raise VarSRError("no image path")
                line = read_one(rows_csv.parent / image, cells, registry, clf, model, k, seed, top, search_cells,
                                get_model, fuse, polarity)
                line["image"] = image
                done += 1
            except (VarSRError, OSError, ValueError, RuntimeError) as e:
                line = {"image": image, "error": str(e) or type(e).__name__}
                failed += 1
            f.write(json.dumps(line, ensure_ascii=False) + "\n")
            f.flush()
            if log:
                log(f"{i + 1}/{len(rows)} {image}: " + (", ".join(line["strings"][:3]) if "strings" in line
                                                       else f"error: {line['error']}"))
    return {"rows": len(rows), "read": done, "errors": failed}


def add_batch_cli(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``batch`` to ``varsr-search plates``' subparsers (sets ``func``)."""
    b = subparsers.add_parser("batch", help="read many boxed rows into JSON lines (strings and registry)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    b.add_argument("registry", nargs="?", type=Path, help="registry CSV (optional: without it, strings only)")
    b.add_argument("--rows", type=Path, required=True, help="CSV with columns image,cells")
    b.add_argument("--out", type=Path, required=True, help="JSON lines, one per row")
    b.add_argument("--model", default=AUTO, help="auto (default), a plate model name or folder, or 'bicubic'")
    b.add_argument("-k", "--samples", type=int, default=16, help="candidates per cell (default 16)")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--top", type=int, default=MIN_RESULTS, help="strings and registry plates per row (>= 10)")
    b.add_argument("--column", help="the registry's plate column")
    b.add_argument("--equal-cells", action="store_true", help="cut equal cells (no boundary search)")
    b.add_argument("--candidates-only", action="store_true",
                   help="read the candidates alone, not averaged with the bicubic upscale's reading")
    b.add_argument("--polarity", choices=(MIX, CHOOSE), default=MIX,
                   help="mix (default): read each row as it is and inverted and rank under both, weighted by the "
                        "reader's confidence; choose: only the polarity the reader is surer of")
    b.add_argument("--classifier", type=Path, help="character reader .safetensors (default: bundled plate-reader)")
    b.set_defaults(func=_run_cli)
    return b


def _run_cli(args: argparse.Namespace) -> int:
    if not 1 <= args.samples <= 256:
        raise VarSRError(f"-k must be between 1 and 256, not {args.samples}")
    counts = run_batch(args.registry, args.rows, args.out, args.model, args.samples, args.seed,
                       max(args.top, MIN_RESULTS), args.column, not args.equal_cells, args.classifier,
                       fuse=not args.candidates_only, polarity=args.polarity)
    print(json.dumps({"out": str(args.out), **counts}))
    return 0 if counts["read"] or not counts["rows"] else 1


def main(argv: list[str] | None = None) -> int:
    """Standalone: ``python -m core.plates.batch REGISTRY.csv --rows ROWS.csv --out OUT.jsonl``."""
    from core.cli.common import run_cli

    p = argparse.ArgumentParser(prog="python -m core.plates.batch")
    sub = p.add_subparsers(dest="command", required=True)
    add_batch_cli(sub)
    args = p.parse_args(["batch", *(argv if argv is not None else __import__("sys").argv[1:])])
    return run_cli(lambda: args.func(args), "varsr-search plates batch")


if __name__ == "__main__":
    raise SystemExit(main())

