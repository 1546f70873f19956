"""``varsr-search-eval``: identity search on held-out faces, per degradation and model, with fusions.

    varsr-search-eval --pair face-16=face-16:face-16-det --degradation ideal --degradation camera \\
        [--pair face-8=face-8:face-8-det] [-n 16] [--limit N] [--json out.json] [--markdown out.md] [--write-docs]

Each ``--pair LABEL=VARSR:DET`` names a VarSR bundle and its det baseline (bundled names or folders).
The gallery index is kept in ``--cache-dir`` (re-runs embed nothing new). See
:mod:`core.search.identity_eval` for what is measured.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

from core.cli.common import run_cli
from core.errors import VarSRError

DOCS = Path(__file__).resolve().parents[2] / "docs" / "SEARCH.md"
START, END = "<!-- search_eval:start -->", "<!-- search_eval:end -->"


def parse_pair(text: str) -> tuple[str, str, str, float | None]:
    """``LABEL=VARSR[@T]:DET`` (or ``VARSR:DET``, labelled by VARSR) -> (label, varsr, det, T or None).

    ``@T`` draws the candidates at temperature T instead of the model's ``sample_temperature``."""
    label, _, rest = text.rpartition("=")
    varsr, sep, det = rest.partition(":")
    varsr, at, t = varsr.partition("@")
    try:
        temperature = float(t) if at else None
        ok = bool(sep and varsr and det) and (temperature is None or 0 <= temperature <= 10)
    except ValueError:  # "@hot"
        temperature, ok = None, False
    if not ok:
        raise VarSRError(f"--pair {text!r}: expected LABEL=VARSR[@T]:DET, e.g. face-16=face-16:face-16-det "
                         "or face-16 T1=face-16@1:face-16-det")
    return (label or varsr), varsr, det, temperature


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="varsr-search-eval", description=__doc__.split("\n")[0])
    p.add_argument("--data-root", type=Path, default=None, help="data sets folder (default $VARSR_DATA or "
                   "../shared/data); needs celeba/")
    p.add_argument("--pair", action="append", default=[], metavar="LABEL=VARSR[@T]:DET",
                   help="model pair to measure (repeatable; default face-16=face-16:face-16-det)")
    p.add_argument("--degradation", action="append", default=[],
                   choices=("ideal", "blur", "camera", "mixture", "balanced"),
                   help="input condition (repeatable; default ideal and camera)")
    p.add_argument("-n", type=int, default=16, help="candidates per probe (default 16)")
    p.add_argument("--seed", type=int, default=0, help="probe i uses seed + i for its camera and samples")
    p.add_argument("--limit", type=int, default=None, help="first N probes only")
    p.add_argument("--probe-size", type=int, default=None, metavar="PX",
                   help="probe faces of PX x PX for every pair, reduced to a smaller model input as the app does "
                        "(default: each model's own input size)")
    p.add_argument("--cache-dir", type=Path, default=Path(".cache/search-eval"), help="where the gallery index is kept")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--markdown", type=Path, default=None)
    p.add_argument("--write-docs", action="store_true", help=f"replace the results block in docs/{DOCS.name}")
    p.add_argument("--quiet", action="store_true")
    return p


def run(args: argparse.Namespace) -> int:
    import torch

    from core.fileio import atomic_write
    from core.search.identity_eval import evaluate_search, to_markdown
    from core.training.train import default_data_root

    if args.threads:
        torch.set_num_threads(args.threads)
    root = args.data_root or default_data_root()
    if not (root / "celeba" / "img_align_celeba").is_dir():
        raise VarSRError(f"{root / 'celeba'}: no CelebA (img_align_celeba/) there; give --data-root")
    if args.n < 1:
        raise VarSRError("-n must be at least 1")
    pairs = [parse_pair(t) for t in (args.pair or ["face-16=face-16:face-16-det"])]
    res = evaluate_search(root, pairs, args.degradation or ["ideal", "camera"], n=args.n, seed=args.seed,
                          limit=args.limit, cache_dir=args.cache_dir, progress=not args.quiet,
                          probe_size=args.probe_size)
    md = to_markdown(res)
    print(md)
    for path, content in ((args.json, json.dumps(res, indent=1) + "\n"), (args.markdown, md + "\n")):
        if path:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(path, _writer(content))
    if args.write_docs:
        doc = DOCS.read_text(encoding="utf-8")
        if START not in doc or END not in doc:
            raise VarSRError(f"{DOCS}: no {START} ... {END} block to replace")
        head, rest = doc.split(START, 1)
        tail = rest.split(END, 1)[1]
        atomic_write(DOCS, lambda p: p.write_text(f"{head}{START}\n{md}\n{END}{tail}", encoding="utf-8"))
    return 0


def _writer(text: str) -> Callable[[Path], None]:
    """A writer of ``text`` for :func:`core.fileio.atomic_write`."""

    def write(p: Path) -> None:
        p.write_text(text, encoding="utf-8")

    return write


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_cli(lambda: run(args), "varsr-search-eval")


if __name__ == "__main__":
    raise SystemExit(main())
