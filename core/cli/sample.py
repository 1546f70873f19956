"""``varsr-sample``: write n candidates for one input image, with a manifest, without the GUI."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

from core.cli.common import run_cli


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="varsr-sample", description=__doc__,
                                epilog="varsr-sample --case CASE --verify rebuilds every shortlisted candidate of a "
                                       "case from its originals and reports, per candidate, bit-identical or the "
                                       "largest pixel difference (exit 2 on any difference).")
    p.add_argument("--model", help="bundled model name (face-8, ...) or bundle folder")
    p.add_argument("-n", type=int, default=16, help="number of candidates (1-1024, default 16)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--temperature", type=float, default=None,
                   help="scale on sigma of p(z|I_L) (default: the model's calibrated sample_temperature)")
    p.add_argument("--out", type=Path, help="output folder")
    p.add_argument("--det", default="auto", metavar="auto|none|MODEL",
                   help="also write the deterministic baseline's output as det.png (auto: the model's -det bundle, "
                        "for face models; measured: det + 16 candidates, min, is the best face-search query at "
                        "16x16, docs/SEARCH.md)")
    p.add_argument("input", type=Path, nargs="?", help="the input image (a crop of the region of interest)")
    g = p.add_argument_group("case files")
    g.add_argument("--case", type=Path, help="a case folder (made by the app)")
    g.add_argument("--verify", action="store_true", help="with --case: regenerate the shortlist and compare")
    g.add_argument("--all", action="store_true", help="with --verify: every candidate of the case, not only "
                                                     "the shortlist")
    g.add_argument("--models", type=Path, default=None, help="with --verify: the models folder "
                                                             "(default: the bundled resources/models)")
    g.add_argument("--json", action="store_true", help="with --verify: print the results as JSON")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.case is not None or args.verify:
        if args.case is None or not args.verify:
            parser.error("--case and --verify go together (varsr-sample --case CASE --verify)")
        from core.cli.verify import verify_case_cli

        return run_cli(lambda: verify_case_cli(args), "varsr-sample")
    missing = [name for name, v in (("--model", args.model), ("--out", args.out), ("input", args.input)) if v is None]
    if missing:
        parser.error(f"the following arguments are required: {', '.join(missing)}")
    return run_cli(lambda: sample_to_folder(args), "varsr-sample")


def sample_to_folder(args: argparse.Namespace) -> int:
    import core
    from core.errors import VarSRError
    from core.images import open_image, quiet_native_decoders
    from core.perf import tune_cpu
    from core.workbench.export import save_png
    from core.workbench.preprocess import consistency, prepare_lr

    if not 1 <= args.n <= 1024:
        raise VarSRError(f"-n must be between 1 and 1024, not {args.n}")
    if args.temperature is not None and not 0 <= args.temperature <= 10:
        raise VarSRError(f"--temperature must be between 0 and 10, not {args.temperature}")
    tune_cpu()
    quiet_native_decoders()  # libtiff's own stderr lines: the reason is in the one error line
    model = core.load_model(args.model)
    if args.temperature is None:
        args.temperature = model.config.sample_temperature
    cfg = model.config
    loaded = open_image(args.input, "L" if cfg.channels == 1 else "RGB")
    image = loaded.image
    lr, notes = prepare_lr(image, cfg)
    notes = [*loaded.notes, *notes]
    for note in notes:
        print(f"varsr-sample: note: {note}", file=sys.stderr)
    z = model.latents(lr[None], args.n, args.seed, args.temperature)[0]
    cands = model.sample(lr, args.n, args.seed, args.temperature)
    l1, lr_psnr = consistency(cands, lr, cfg.scale)
    args.out.mkdir(parents=True, exist_ok=True)
    entries = []
    written: list[Path] = []
    (args.out / "manifest.json").unlink(missing_ok=True)  # an earlier run's files are about to be replaced
    try:
        for i, img in enumerate(cands):
            name = f"candidate_{i:03d}.png"
            save_png(img, args.out / name, {"model": cfg.name, "seed": str(args.seed), "index": str(i)})
            written.append(args.out / name)
            entries.append({"index": i, "file": name, "consistency_l1": round(float(l1[i]), 4),
                            "lr_psnr_db": round(float(lr_psnr[i]), 3),
                            "z": [round(float(v), 6) for v in z[i]] if cfg.latent_dim else []})
        save_png(lr, args.out / "input_lr.png", {"role": "the input as the model sees it"})
        written.append(args.out / "input_lr.png")
        det_entry = None
        det = _det_model(args.det, model)
        if det is not None:
            det_img = det.generate(lr[None], None)[0].float().clamp(0, 1)
            dl1, dpsnr = consistency(det_img[None], lr, cfg.scale)
            save_png(det_img, args.out / "det.png", {"model": det.config.name, "role": "deterministic baseline"})
            written.append(args.out / "det.png")
            det_entry = {"file": "det.png", "model": det.config.name, "weights_sha256": det.weights_sha256,
                         "consistency_l1": round(float(dl1[0]), 4), "lr_psnr_db": round(float(dpsnr[0]), 3)}
        _write_manifest(args, cfg, model, image, loaded.info(), notes, entries, det_entry)
    except BaseException:  # disk full, read-only, Ctrl-C: no partial set of candidates is left behind
        for p in written:
            p.unlink(missing_ok=True)
        raise
    print(f"wrote {args.n} candidates to {args.out}", file=sys.stderr)
    return 0


def _det_model(choice: str, model: Any) -> Any:
    """The deterministic baseline to write beside the candidates, or None."""
    import core
    from core.model.bundle import find_det

    if choice == "none" or model.config.latent_dim == 0:
        return None
    if choice == "auto" and model.config.domain != "face":
        return None
    det = core.load_model(choice) if choice != "auto" else find_det(model)
    if det is None:
        return None
    c, m = det.config, model.config
    if det.config.latent_dim or (c.channels, tuple(c.lr_size), c.scale) != (m.channels, tuple(m.lr_size), m.scale):
        from core.errors import VarSRError

        raise VarSRError(f"--det {choice}: '{c.name}' is not a deterministic model of the same size as '{m.name}'")
    return det


def _write_manifest(args: argparse.Namespace, cfg: Any, model: Any, image: Any, load_info: dict[str, Any],
                    notes: list[str], entries: list[dict[str, Any]], det: dict[str, Any] | None = None) -> None:
    """``manifest.json``, written last: a folder without it is not a finished run."""
    import core
    from core.fileio import atomic_write
    from core.images import sha256_file

    manifest = {
        "notice": core.LEAD_NOTICE,
        "input": {"path": str(args.input), "sha256": sha256_file(args.input), "size": list(image.size),
                  "load": load_info},
        "model": {"name": cfg.name, "weights_sha256": model.weights_sha256,
                  "lr_size": list(cfg.lr_size), "hr_size": list(cfg.hr_size)},
        "seed": args.seed, "temperature": args.temperature, "n": args.n,
        "notes": notes,
        "created_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "versions": {"varsr_studio": core.__version__},
        "candidates": entries,
        **({"det": det} if det else {}),
    }
    atomic_write(args.out / "manifest.json", lambda p: p.write_text(json.dumps(manifest, indent=1), encoding="utf-8"))


if __name__ == "__main__":
    sys.exit(main())
