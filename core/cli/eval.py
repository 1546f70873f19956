"""``varsr-eval``: the paper's evaluation (Tables 1-5) of one model on one data set, on the CPU."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from core.cli.common import run_cli

DATASETS = ("celeba", "utkface", "mnist", "plate-chars", "plate-real-chars", "folder")
CLASSIFIED_DOMAINS = ("digit", "plate-char")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="varsr-eval", description=__doc__)
    p.add_argument("--model", required=True, help="bundled model name or bundle folder")
    p.add_argument("--dataset", required=True, choices=DATASETS)
    p.add_argument("--root", required=True, type=Path, help="the data set's folder")
    p.add_argument("--split", default="test", choices=("test", "all"))
    p.add_argument("--limit", type=int, default=None, help="evaluate the first N images only")
    p.add_argument("--n-samples", type=int, default=10, help="candidates per input (default 10)")
    p.add_argument("--seed", type=int, default=0, help="image i uses seed + i (default 0)")
    p.add_argument("--temperature", type=float, default=None,
                   help="scale on sigma of p(z|I_L) (default: the model's calibrated sample_temperature)")
    p.add_argument(
        "--det", default=None, help="deterministic bundle for the Det. column (default: <model>-det)"
    )
    p.add_argument(
        "--classifier",
        type=Path,
        default=None,
        help="digit/char classifier (default: resources/classifiers/<domain>.safetensors)",
    )
    p.add_argument("--degradation", default="ideal", choices=("ideal", "blur", "camera", "mixture", "balanced"),
                   help="how the LR inputs are made (core.model.camera): the ideal box filter (default), Gaussian blur "
                        "0.6 LR px, camera-like (blur, sub-pixel shift, noise, JPEG in a larger frame), or the "
                        "training mixture; consistency is scored with the condition's deterministic operator")
    p.add_argument("--json", type=Path, default=None, help="write the results as JSON here")
    p.add_argument("--markdown", type=Path, default=None, help="write the tables as Markdown here")
    p.add_argument(
        "--batch",
        type=int,
        default=64,
        help="inputs per batch, each with n samples (default 64; lowered to keep <= 1024 candidates)",
    )
    p.add_argument(
        "--no-identity",
        action="store_true",
        help="face models: skip the identity metric (by default the bundled dlib-face-resnet embedder gives "
        "identity_best = smallest 1 - cos between candidate and HR descriptors)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_cli(lambda: run(args), "varsr-eval")


def _warn(msg: str) -> None:
    print(f"varsr-eval: warning: {msg}", file=sys.stderr)


def find_classifier(domain: str, path: Path | None) -> Any:
    """The classifier to use (None, with a warning, when the default one is absent)."""
    from core.nets.classifier import default_path, load_classifier

    if domain not in CLASSIFIED_DOMAINS:
        return None
    if path is not None:
        return load_classifier(path)
    path = default_path(domain)
    if not path.is_file():
        _warn(
            f"no classifier at {path}: accuracy keys are null; train one with "
            f"`python tools/train_classifier.py --domain {domain} --root DATA_DIR`"
        )
        return None
    return load_classifier(path)


def find_embedder(cfg: Any, skip: bool = False) -> Any:
    """The bundled face embedder for a face model's identity metric (None, with a warning, when it is absent)."""
    if skip or cfg.domain != "face" or cfg.channels != 3:
        return None
    from core.search.embedders import load_embedder
    from core.search.errors import EmbedderError

    try:
        return load_embedder()
    except EmbedderError as e:
        _warn(f"{e}: identity_best is null")
        return None


def run(args: argparse.Namespace) -> int:
    import core
    from core.errors import VarSRError
    from core.evaluation.evaluate import evaluate, to_markdown
    from core.model.bundle import find_det
    from core.perf import tune_cpu

    if args.batch < 1 or not 1 <= args.n_samples <= 1000:
        raise VarSRError("--batch must be >= 1 and --n-samples between 1 and 1000")
    if args.limit is not None and args.limit < 1:
        raise VarSRError("--limit must be at least 1")
    tune_cpu()
    from core.images import quiet_native_decoders

    quiet_native_decoders()  # libtiff's own stderr lines: each skipped file gets one warning line instead
    model = core.load_model(args.model)
    cfg = model.config
    det = core.load_model(args.det) if args.det else find_det(model)
    if det is None:
        _warn("no deterministic model (pass --det NAME_OR_PATH): the det column is null")
    classifier = find_classifier(cfg.domain, args.classifier)
    embedder = find_embedder(cfg, args.no_identity)
    from core.data.registry import load_dataset

    try:
        data = load_dataset(
            args.dataset,
            args.root,
            args.split,
            size=tuple(cfg.hr_size),
            channels=cfg.channels,
            limit=args.limit,
        )
    except ValueError as e:  # the loaders' argument errors
        raise VarSRError(str(e)) from e
    result = evaluate(
        model,
        data,
        dataset=args.dataset,
        n_samples=args.n_samples,
        seed=args.seed,
        det=det,
        classifier=classifier,
        embedder=embedder,
        batch=args.batch,
        progress=not args.quiet,
        degradation=args.degradation,
        temperature=args.temperature,
    )
    text = json.dumps(result, indent=2, allow_nan=False) + "\n"
    md = to_markdown(result)
    from core.fileio import atomic_write

    for path, content in ((args.json, text), (args.markdown, md)):
        if path:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(path, lambda p, c=content: p.write_text(c, encoding="utf-8"))
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
