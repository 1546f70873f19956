"""``varsr-search plates``: ranked plate strings and registry records as JSON, without the GUI.

    varsr-search plates query REGISTRY.csv --cells-dir DIR        # DIR/<position>/*.png candidates
    varsr-search plates query REGISTRY.csv --image PLATE.png --cells 7 [-k 16 --seed 0 --light-on-dark]
    varsr-search plates query --image PLATE.png --cells 7 --model bicubic   # no registry: strings only
    varsr-search plates query REGISTRY.csv --case CASE [--all | --set S3] [--record]   # a case's plate rows
    varsr-search plates check REGISTRY.csv                        # is the registry readable?
    varsr-search plates batch REGISTRY.csv --rows ROWS.csv --out OUT.jsonl [--model auto|NAME] [-k 16]
                                                                  # many boxed rows (core.plates.batch)

``--cells-dir``: one subfolder per position (in natural name order: 0, 1, ..., 10), each holding
that cell's candidate images (a ``varsr-sample`` output folder works: its ``manifest.json`` names
the candidates and ``input_lr.png`` is left out). ``--image``: a plate crop cut into ``--cells``
equal cells (or at ``--bounds``), each given ``-k`` candidates by ``--model`` (cell ``i`` uses seed
``seed + i``, as the app does); ``--model bicubic`` reads the bicubic upscale instead. ``--case``:
the plate rows of a case folder (its shortlisted rows, every row with ``--all``, or the rows of one
set with ``--set``), each cut back into its cells; ``--record`` also records the search in the case.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

import torch

from core.cli.case_args import case_warnings, check_case_args, record_in_case
from core.cli.common import run_cli
from core.data.common import IMAGE_EXTS, resize
from core.errors import VarSRError
from core.images import load_image, pil_to_tensor, sha256_file
from core.search.plate_registry import load_registry
from core.search.plates import (
    MIN_P,
    load_plate_classifier,
    plate_classifier_path,
    position_probabilities,
    search_plate,
)

PROG = "varsr-search"
BICUBIC = "bicubic"


def _natural(name: str) -> list[Any]:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def _candidate_files(folder: Path) -> list[Path]:
    """A position folder's candidate images: those its manifest.json lists, else every image but the LR input."""
    manifest = folder / "manifest.json"
    if manifest.is_file():
        try:
            entries = json.loads(manifest.read_text(encoding="utf-8")).get("candidates", [])
            files = [folder / str(e["file"]) for e in entries]
        except (ValueError, AttributeError, KeyError, TypeError) as e:
            raise VarSRError(f"{manifest}: not a varsr-sample manifest ({e})") from e
        if files:
            return files
    return sorted((p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTS
                   and not p.stem.startswith("input_lr")), key=lambda p: _natural(p.name))


def load_cells_dir(folder: str | Path, size: tuple[int, int]) -> list[torch.Tensor]:
    """Per position (subfolder, natural order): its candidates as ``(K, 1, h, w)`` at ``size`` = (w, h)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise VarSRError(f"{folder}: not a folder (expected one subfolder of candidate images per position)")
    subs = sorted((p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")),
                  key=lambda p: _natural(p.name))
    if not subs:
        raise VarSRError(f"{folder}: no position subfolders (expected e.g. {folder}/0/*.png, {folder}/1/*.png)")
    cells = []
    for sub in subs:
        files = _candidate_files(sub)
        if not files:
            raise VarSRError(f"{sub}: no candidate images for this position")
        cells.append(torch.stack([pil_to_tensor(resize(load_image(f, "L"), size)) for f in files]))
    return cells


def _parse_bounds(text: str | None, n: int) -> list[float]:
    from core.workbench.session import equal_cells

    if not text:
        return equal_cells(n)
    try:
        bounds = sorted(float(v) for v in text.split(","))
    except ValueError as e:
        raise VarSRError(f"--bounds must be comma-separated fractions of the width, not {text!r}") from e
    if len(bounds) != n - 1 or not all(0 < b < 1 for b in bounds):
        raise VarSRError(f"--bounds needs {n - 1} fractions strictly between 0 and 1 for {n} cells")
    return bounds


def cells_from_image(path: Path, n_cells: int, model_name: str = "plate-char", k: int = 16, seed: int = 0,
                     temperature: float = 1.0, bounds: str | None = None, inverted: bool = False
                     ) -> tuple[list[torch.Tensor], dict[str, Any], dict[str, Any]]:
    """Cut a plate crop into cells and give each its candidates (or its bicubic upscale); also the reading
    inputs for :func:`core.search.plates.position_probabilities` (the cells' model inputs and method).
    ``inverted``: the plate has light characters on a dark background; each cell is inverted before
    the model (the models and the reader see dark on light), as the app's *Light on dark* does."""
    from PIL import ImageOps

    from core.model.bundle import load_model, read_config, resolve
    from core.model.degrade import upsample_bicubic
    from core.plates.reading import model_method
    from core.workbench.preprocess import prepare_lr
    from core.workbench.session import generate_cells, merge_cell_notes, split_cells

    if not 1 <= n_cells <= 32:
        raise VarSRError(f"--cells must be between 1 and 32, not {n_cells}")
    image = load_image(path, "L")
    crops = split_cells(image, _parse_bounds(bounds, n_cells))
    if inverted:
        crops = [ImageOps.invert(c) for c in crops]
    bicubic = model_name == BICUBIC
    model = None if bicubic else load_model(model_name)
    cfg = read_config(resolve("plate-char")) if model is None else model.config
    if cfg.channels != 1 or cfg.domain != "plate-char":
        raise VarSRError(f"model '{cfg.name}' is a {cfg.domain} model, not a plate-character model")
    lrs, notes = [], []
    for crop in crops:
        lr, n = prepare_lr(crop, cfg)
        lrs.append(lr)
        notes.extend(x for x in n if x not in notes)
    if model is None:
        cells = [upsample_bicubic(lr, cfg.scale)[None] for lr in lrs]
    else:
        cands = generate_cells(model, lrs, k, seed, temperature, source={"path": str(path)})
        cells = [torch.stack([c.image for c in cell]) for cell in cands]
    info = {"kind": "image", "path": str(path), "sha256": sha256_file(path), "size": list(image.size),
            "cells": n_cells, "model": cfg.name if model is not None else BICUBIC,
            "weights_sha256": model.weights_sha256 if model is not None else None,
            "k": len(cells[0]), "seed": seed, "temperature": temperature, "light_on_dark": inverted,
            "notes": merge_cell_notes(notes) if len(crops) > 1 else notes}
    return cells, info, {"lrs": lrs, "method": model_method(model)}


def case_video_reading(folder: Path, selection: str, set_id: str | None) -> tuple[Any, dict[str, Any]] | None:
    """The combined reading a case records for its chosen ``video-plate`` candidate (#16), when the choice
    (shortlist, all, or one set) holds one and no plate row; None otherwise."""
    from core.case.reader import read_case
    from core.video.plate_frames import recorded_reading

    data = read_case(folder)
    cands = {c.id: c for _, cs in data.sets for c in cs}
    if set_id is not None:
        chosen = [cands[i] for cs, _ in data.sets if cs is not None and cs.id == set_id
                  for i in cs.candidate_ids if i in cands]
    elif selection == "all":
        chosen = list(cands.values())
    else:
        chosen = [cands[e.candidate_id] for e in data.shortlist if e.candidate_id in cands]
    video = [c for c in chosen if c.kind == "video-plate"]
    if not video or any(c.kind == "row" for c in chosen):
        return None
    if len(video) > 1:
        raise VarSRError(f"case {data.folder.name}: {len(video)} combined readings of clips are chosen "
                         f"({', '.join(c.id for c in video)}): choose one with --set")
    c = video[0]
    reading = recorded_reading(c.recipe)
    if reading is None:
        raise VarSRError(f"case {data.folder.name}: {c.id} does not record its combined reading")
    frames = c.recipe.get("frames") or []
    return reading, {"kind": "case", "case": data.folder.name, "case_saved_utc": data.manifest.get("saved_utc"),
                     "selection": f"set {set_id}" if set_id else selection, "set": set_id, "rows": [c.id],
                     "k": reading.n_candidates, "audit": data.check.summary(),
                     "video": {"clip": (c.recipe.get("clip") or {}).get("name"),
                               "clip_sha256": (c.recipe.get("clip") or {}).get("sha256"),
                               "frames": [f.get("index") for f in frames], "weights": [f.get("weight") for f in frames],
                               "classifier": c.recipe.get("classifier")}}


def run_query(args: argparse.Namespace) -> int:
    """Read the plate, search the registry, print JSON (and write it to ``--out``)."""
    from core.fileio import atomic_write
    from core.perf import tune_cpu

    check_case_args(args, args.cells_dir is not None or args.image is not None, "--cells-dir or --image")
    if args.set is not None and args.case is None:
        raise VarSRError("--set needs --case CASE")
    if args.case is None and (args.cells_dir is None) == (args.image is None):
        raise VarSRError("give exactly one of --cells-dir DIR, --image PLATE.png or --case CASE")
    if args.image is not None and args.cells is None:
        raise VarSRError("--image needs --cells N (the number of characters)")
    if args.light_on_dark and args.image is None:
        raise VarSRError("--light-on-dark applies to --image "
                         "(a case's rows and a cells folder carry their own polarity)")
    if not 1 <= args.top <= 10000:
        raise VarSRError(f"--top must be between 1 and 10000, not {args.top}")
    registry = load_registry(args.registry, args.column) if args.registry else None
    tune_cpu()
    clf = load_plate_classifier(args.classifier)
    info: dict[str, Any]
    inputs: dict[str, Any] = {}
    combined = None
    if args.case is not None:
        from core.case.search import ALL, SHORTLIST, case_plate_cells

        combined = case_video_reading(args.case, ALL if args.all else SHORTLIST, args.set)
        if combined is None:
            cells, info, inputs = case_plate_cells(args.case, ALL if args.all else SHORTLIST, args.set)
        else:
            info = combined[1]  # frames of a clip, combined when the candidate was made (its reader recorded)
        case_warnings(info)
    elif args.cells_dir is not None:
        cells = load_cells_dir(args.cells_dir, clf.info.size)
        info = {"kind": "cells-dir", "path": str(args.cells_dir), "cells": len(cells), "k": [len(c) for c in cells]}
    else:
        cells, info, inputs = cells_from_image(args.image, args.cells, args.model, args.samples, args.seed,
                                       args.temperature, args.bounds, args.light_on_dark)
    reading = combined[0] if combined is not None else position_probabilities(clf, cells, **inputs)
    result = search_plate(reading, registry, top=args.top, beam=args.beam, pattern=args.pattern,
                          registry_top=args.registry_top, min_p=args.min_p)
    clf_path = Path(args.classifier) if args.classifier else plate_classifier_path()
    out = {"input": info, "classifier": {"path": str(args.classifier or f"{clf_path.stem} (bundled)"),
                                         "name": clf_path.name, "sha256": sha256_file(clf_path),
                                         "heldout_accuracy": clf.info.heldout_accuracy}, **result.to_dict()}
    if combined is not None:  # the reader that read the frames, as the candidate's recipe records it
        out["classifier"] = {"path": None, **dict(info["video"].get("classifier") or {})}
    if args.case is not None:
        out.update(top=args.top, candidates={**{k: info[k] for k in ("case", "selection", "set", "rows", "k")},
                                             **({"video": info["video"]} if "video" in info else {})})
        if args.record:
            from core.case.search import plate_entry

            entry = plate_entry({**out, "classifier": {"name": out["classifier"].get("name"),
                                                       "sha256": out["classifier"].get("sha256")}})
            out["recorded_as"] = record_in_case(args.case, entry)["id"]
    text = json.dumps(out, indent=1, ensure_ascii=False)
    if args.out is not None:
        atomic_write(args.out, lambda p: p.write_text(text + "\n", encoding="utf-8"))
    print(text)
    return 0


def run_check(args: argparse.Namespace) -> int:
    """Print a registry's summary as JSON (or fail with the reason it cannot be read)."""
    reg = load_registry(args.registry, args.column)
    print(json.dumps({"path": str(args.registry), "column": reg.column, "columns": reg.columns,
                      "n_records": len(reg), "n_skipped_empty": reg.skipped,
                      "lengths": {str(k): v for k, v in reg.lengths().items()}}, indent=1))
    return 0


def add_cli(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``plates`` (with ``query`` and ``check``) to a ``varsr-search`` parser's subparsers.

    Each leaf parser sets ``func``: call ``args.func(args)`` (it returns the exit code and raises
    :class:`VarSRError` for expected failures, e.g. inside :func:`core.cli.common.run_cli`).
    """
    p = subparsers.add_parser("plates", help="plate registry search from character-cell candidates",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="plates_command", metavar="{query,check,batch}", required=True)
    q = sub.add_parser("query", help="ranked plate strings and registry matches as JSON")
    q.add_argument("registry", nargs="?", type=Path, help="registry CSV (plate column plus any others); optional")
    q.add_argument("--column", help="the registry's plate column (default: plate, registration, ...)")
    src = q.add_argument_group("candidates (one of)")
    src.add_argument("--cells-dir", type=Path, help="folder with one subfolder of candidate images per position")
    src.add_argument("--image", type=Path, help="a plate crop to cut into --cells cells and sample")
    src.add_argument("--case", type=Path, help="a case folder: its shortlisted plate rows, cut into cells")
    q.add_argument("--all", action="store_true", help="with --case: every plate row of the case")
    q.add_argument("--set", help="with --case: the plate rows of this candidate set (e.g. S3)")
    q.add_argument("--record", action="store_true",
                   help="with --case: also record the search (query and hits) in the case and save it")
    q.add_argument("--cells", type=int, help="number of characters in --image")
    q.add_argument("--bounds", help="interior cell boundaries as fractions of the width, e.g. 0.15,0.3,...")
    q.add_argument("--light-on-dark", action="store_true",
                   help="--image has light characters on a dark plate (each cell is inverted first); "
                        "'plates batch' reads a row both ways up when unsure")
    q.add_argument("--model", default="plate-char",
                   help="plate-char (default), plate-char-det, a bundle folder, or 'bicubic'")
    q.add_argument("-k", "--samples", type=int, default=16, help="candidates per cell (4-256, default 16)")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--temperature", type=float, default=1.0)
    q.add_argument("--classifier", type=Path, help="character classifier .safetensors (default: bundled)")
    q.add_argument("--top", type=int, default=10, help="ranked strings to list (default 10)")
    q.add_argument("--beam", type=int, help="beam width (default and minimum: --top; exact for independent cells)")
    q.add_argument("--pattern", help="wildcard pattern: ? any one character, [8B] one of a set, e.g. AB?1[8B]23")
    q.add_argument("--registry-top", type=int, default=10, help="best-scoring registry records to list")
    q.add_argument("--min-p", type=float, default=MIN_P, help=f"alternative threshold (default {MIN_P})")
    q.add_argument("--out", type=Path, help="also write the JSON to this file")
    q.set_defaults(func=run_query)
    c = sub.add_parser("check", help="check that a registry CSV can be read; print its summary")
    c.add_argument("registry", type=Path)
    c.add_argument("--column")
    c.set_defaults(func=run_check)
    from core.plates.batch import add_batch_cli

    add_batch_cli(sub)
    return p


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Search databases with the candidates (plates here).")
    add_cli(parser.add_subparsers(dest="command", required=True))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_cli(lambda: args.func(args), PROG)


if __name__ == "__main__":
    sys.exit(main())
