"""``varsr-sample``: write n candidates for one input image, with a manifest, without the GUI."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

from core.cli.common import run_cli


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="varsr-sample", description=__doc__)
    p.add_argument("--model", required=True, help="bundled model name (face-8, ...) or bundle folder")
    p.add_argument("-n", type=int, default=16, help="number of candidates (1-1024, default 16)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--temperature", type=float, default=1.0, help="scale on sigma of p(z|I_L) (default 1)")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("input", type=Path, help="the input image (a crop of the region of interest)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_cli(lambda: sample_to_folder(args), "varsr-sample")


def sample_to_folder(args: argparse.Namespace) -> int:
    import core
    from core.errors import VarSRError
    from core.export import save_png
    from core.fileio import atomic_write
    from core.images import load_image, sha256_file
    from core.perf import tune_cpu
    from core.preprocess import consistency, prepare_lr

    if not 1 <= args.n <= 1024:
        raise VarSRError(f"-n must be between 1 and 1024, not {args.n}")
    if not 0 <= args.temperature <= 10:
        raise VarSRError(f"--temperature must be between 0 and 10, not {args.temperature}")
    tune_cpu()
    model = core.load_model(args.model)
    cfg = model.config
    image = load_image(args.input, "L" if cfg.channels == 1 else "RGB")
    lr, notes = prepare_lr(image, cfg)
    for note in notes:
        print(f"varsr-sample: note: {note}", file=sys.stderr)
    z = model.latents(lr[None], args.n, args.seed, args.temperature)[0]
    cands = model.sample(lr, args.n, args.seed, args.temperature)
    l1, lr_psnr = consistency(cands, lr, cfg.scale)
    args.out.mkdir(parents=True, exist_ok=True)
    entries = []
    for i, img in enumerate(cands):
        name = f"candidate_{i:03d}.png"
        save_png(img, args.out / name, {"model": cfg.name, "seed": str(args.seed), "index": str(i)})
        entries.append({"index": i, "file": name, "consistency_l1": round(float(l1[i]), 4),
                        "lr_psnr_db": round(float(lr_psnr[i]), 3),
                        "z": [round(float(v), 6) for v in z[i]] if cfg.latent_dim else []})
    save_png(lr, args.out / "input_lr.png", {"role": "the input as the model sees it"})
    manifest = {
        "notice": core.LEAD_NOTICE,
        "input": {"path": str(args.input), "sha256": sha256_file(args.input), "size": list(image.size)},
        "model": {"name": cfg.name, "weights_sha256": model.weights_sha256,
                  "lr_size": list(cfg.lr_size), "hr_size": list(cfg.hr_size)},
        "seed": args.seed, "temperature": args.temperature, "n": args.n,
        "notes": notes,
        "created_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "versions": {"varsr_studio": core.__version__},
        "candidates": entries,
    }
    atomic_write(args.out / "manifest.json", lambda p: p.write_text(json.dumps(manifest, indent=1), encoding="utf-8"))
    print(f"wrote {args.n} candidates to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
