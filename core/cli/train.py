"""``varsr-train``: train a VarSR model (or its deterministic baseline) from a config file."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from core.cli.common import run_cli


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="varsr-train", description=__doc__)
    p.add_argument("--config", required=True, help="face-8, face-16, digit, plate-char, or a .toml path")
    p.add_argument("--det", action="store_true", help="train the deterministic baseline (no latent)")
    p.add_argument("--out", type=Path, help="run folder (default runs/<name>)")
    p.add_argument("--data-root", type=Path, help="folder of the data sets (default $VARSR_DATA or ../shared/data)")
    p.add_argument("--packed", type=Path, help="a packed training set (.npz from --pack) instead of --data-root")
    p.add_argument("--pack", type=Path, help="only decode the training split and write it packed to this .npz")
    p.add_argument("--pack-quality", type=int, default=None, help="lossy WebP quality for --pack (default raw)")
    p.add_argument("--cache-dir", type=Path, help="cache decoded data sets here")
    p.add_argument("--limit", type=int, help="use at most N images per source (smoke runs)")
    p.add_argument("--init", type=Path, help="start from this bundle's weights (fresh optimisers)")
    p.add_argument("--resume", action="store_true", help="continue from the run folder's checkpoint")
    p.add_argument("--max-minutes", type=float, help="stop (with a checkpoint) after this long")
    p.add_argument("--fit-schedule", action="store_true",
                   help="with --max-minutes: scale steps, adv_start and decay_at to the measured speed")
    p.add_argument("--device", help="cpu, cuda, cuda:1 (default: CUDA when present)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a config value, e.g. --set train.steps=100")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def go() -> int:
        from core.data.pack import load_packed, save_packed
        from core.training.run_config import load_run_config
        from core.training.train import default_data_root, load_training_data, train

        run = load_run_config(args.config, args.set, det=args.det)
        if args.packed:
            data = load_packed(args.packed)
        else:
            root = args.data_root or default_data_root()
            data = load_training_data(run.data, run.model.hr_size, run.model.channels, root,
                                      cache_dir=args.cache_dir, limit=args.limit)
        print(f"{run.model.name}: {len(data)} training images ({data.skipped} unreadable skipped)", file=sys.stderr)
        if args.pack:
            save_packed(data, args.pack, args.pack_quality)
            print(f"packed to {args.pack}", file=sys.stderr)
            return 0
        out = args.out or Path("runs") / run.model.name
        identity = None
        if run.train.lambda_identity > 0:
            from core.search.embedders import DlibFaceEmbedder

            identity = DlibFaceEmbedder().identity_loss_net()  # the trainer picks each step's chip size
        bundle = train(run, out, data, resume=args.resume, max_minutes=args.max_minutes, device=args.device,
                       fit_schedule=args.fit_schedule, init=args.init, identity=identity)
        if os.environ.get("RANK", "0") == "0":
            print(f"bundle written to {bundle}", file=sys.stderr)
        return 0

    return run_cli(go, "varsr-train")


if __name__ == "__main__":
    sys.exit(main())
