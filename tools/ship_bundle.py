"""Install a trained bundle (and its -det baseline) into resources/models with a model card.

For face bundles it also computes the attribute directions from the training split. The card
quotes the held-out figures of a ``varsr-eval`` JSON beside the paper's and the issue's targets.

    python tools/ship_bundle.py --bundle runs/face-8/bundle --det runs/face-8-det/bundle \
        --eval eval/face-8.json [--data-root ../shared/data]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from core.model.bundle import load_model, models_dir, save_bundle  # noqa: E402
from core.model.camera import CameraModel, Mixture, condition  # noqa: E402

LICENCES = {
    "face": "CelebA (Liu et al., ICCV 2015) and UTKFace (Zhang et al., CVPR 2017): both for non-commercial "
            "research use only; these weights inherit that restriction.",
    "digit": "MNIST (LeCun & Cortes).",
    "plate-char": "OpenALPR train-ocr characters and sheets (AGPL project data) plus synthetic characters "
                  "rendered from Debian's free fonts (fonts-roadgeek, DejaVu).",
}
PAPER = {
    "face": "Table 1-2 (8x8 CelebA, with adversarial loss, lambda_KL=0.01): PSNR 21.87, SSIM 0.6855, "
            "LPIPS 0.0539 (SRResNet/Det 0.1172 without GAN), diversity 0.0353, consistency 3.402.",
    "digit": "Tables 3-5 (MNIST): PSNR 22.00, SSIM 0.8642; Best 92.79 % vs Det 84.74 %; 93.7 % of inputs "
             "in at most 2 classes.",
    "plate-char": "Tables 3-5 (LP): PSNR 22.00, SSIM 0.9494; Best 96.33 % vs Det 93.14 %; 98.96 % of inputs "
                  "in at most 2 classes.",
}
FAILURES = {
    "face": "- Faces far from the frontal, tightly framed training frame (profile, occlusion, strong "
            "rotation) come out as generic frontal faces.\n- At 8x8 the model invents identity detail: "
            "two candidates can look like different people; none is a recovered face.\n- The training "
            "data over-represents some demographics (see above); expect worse results for others.\n"
            "- Short training: textures show checkerboard artefacts and the candidates vary little.",
    "digit": "- Ambiguous low-resolution digits (4/9, 3/5, 7/1) may all be rendered as one class.\n"
             "- Trained on an 8,101-image MNIST subset: other handwriting styles are out of domain.",
    "plate-char": "- Characters that share a 2x4 footprint (8/B, 0/D/O, 1/I, 5/S) are confused; the "
                  "candidates spread over several classes more often than the paper's.\n- Plate fonts not "
                  "in the training set (and non-Latin characters) are out of domain.",
}


def fmt(v) -> str:
    return "-" if v is None else (f"{v:.4f}" if abs(v) < 10 else f"{v:.2f}")


def metrics_table(ev: dict) -> str:
    keys = ["psnr_best", "psnr_mean", "ssim_best", "mse_best", "lpips_best", "diversity", "consistency_l1",
            "lr_psnr", "lr_psnr_enforced", "acc_best", "acc_mean"]
    methods = [m for m in ("bicubic", "det", "varsr") if m in ev["methods"]]
    rows = ["| metric | " + " | ".join(methods) + " |", "|---" * (len(methods) + 1) + "|"]
    for k in keys:
        vals = [ev["methods"][m].get(k) for m in methods]
        if all(v is None for v in vals):
            continue
        rows.append(f"| {k} | " + " | ".join(fmt(v) for v in vals) + " |")
    dc = ev["methods"].get("varsr", {}).get("distinct_classes")
    if dc:
        le2 = 100 * (dc.get("1", 0) + dc.get("2", 0))
        rows.append(f"| inputs whose samples fall in <= 2 classes | - | 100 % | {le2:.1f} % |")
    return "\n".join(rows)


def targets(domain: str, ev: dict) -> str:
    """The issue's acceptance targets, each with the measured figure and met / missed by how much."""
    m = ev["methods"]
    v, d, b = m["varsr"], m.get("det") or {}, m["bicubic"]
    rows: list[tuple[str, float, float, bool]] = []  # (target, measured, needed, higher is better)
    if domain == "face":
        rows += [("best-of-n PSNR above det", v["psnr_best"], d["psnr_best"], True),
                 ("consistency L1 below det", v["consistency_l1"], d["consistency_l1"], False),
                 ("best LPIPS <= 0.85 x det", v["lpips_best"], 0.85 * d["lpips_best"], False),
                 ("diversity >= 0.02", v["diversity"], 0.02, True),
                 ("VarSR PSNR >= bicubic + 1 dB", v["psnr_best"], b["psnr_best"] + 1, True),
                 ("det PSNR >= bicubic + 1 dB", d["psnr_best"], b["psnr_best"] + 1, True)]
    else:
        dc = v["distinct_classes"]
        le2 = 100 * (dc.get("1", 0) + dc.get("2", 0))
        if domain == "digit":
            rows += [("best-of-5 accuracy >= det + 5 points", v["acc_best"], d["acc_best"] + 5, True),
                     ("best-of-5 accuracy >= 90 %", v["acc_best"], 90.0, True)]
        else:
            rows += [("best-of-5 accuracy above det", v["acc_best"], d["acc_best"], True)]
        rows += [("inputs in <= 2 classes >= 90 %", le2, 90.0, True)]
    out = ["| target | measured | needed | |", "|---|---|---|---|"]
    for name, got, need, higher in rows:
        ok = got >= need if higher else got <= need
        out.append(f"| {name} | {fmt(got)} | {fmt(need)} | {'met' if ok else f'missed by {fmt(abs(got - need))}'} |")
    return "\n".join(out)


def training_inputs(t: dict) -> str:
    """What the LR training inputs were: the box filter (also the ``ideal`` condition), or a named condition of
    core/model/camera.py, a mixture with its components' shares."""
    deg = t.get("degradation") or "box"
    cond = None if deg == "box" else condition(deg)
    if cond is None or (isinstance(cond, CameraModel) and cond.ideal):
        return "box filter only" + (f" (random blur/noise/JPEG p {t['random_degradation']})"
                                    if t.get("random_degradation") else "")
    if not isinstance(cond, Mixture):
        return f"`{deg}` (core/model/camera.py)"
    parts = ", ".join(f"{w:.0%} {m.name}" for w, m in cond.components)
    return (f"`{deg}` (core/model/camera.py): {parts}; drawn from Gaussian/defocus/motion optics, sensor sampling "
            "with sub-pixel shift and size jitter, Gaussian + shot noise, JPEG in a larger frame, second-order "
            "re-encoding")


def camera_section(domain: str, path: Path | None) -> str:
    """The same held-out table and targets on camera-like inputs (``varsr-eval --degradation camera``)."""
    if path is None:
        return ""
    ev = json.loads(path.read_text())
    return (f"\n### Camera-like inputs (`varsr-eval --degradation camera`, {ev['n_images']} test images, "
            f"{ev['n_samples']} samples; consistency against {ev.get('consistency_operator', 'the box filter')})\n"
            f"{metrics_table(ev)}\n\n{targets(domain, ev)}\n")


def demographics(data) -> str:
    if data.attrs is None:
        return ""
    lines = []
    src = Counter(i.split(":")[0] if ":" in i else "celeba" for i in data.groups)
    lines.append("Training images by source: " + ", ".join(f"{k} {v}" for k, v in src.items()) + ".")
    for name in ("Male", "Young", "Race_White", "Race_Black", "Race_Asian", "Race_Indian", "Race_Others"):
        if name in data.attr_names:
            col = data.attrs[:, data.attr_names.index(name)]
            known = int((col != 0).sum())
            if known:
                lines.append(f"- {name}: {100 * int((col == 1).sum()) / known:.1f} % of {known} labelled images")
    lines.append("Race labels exist only for UTKFace (CelebA has none); 'Young' is CelebA's annotation or "
                 "UTKFace age < 35.")
    return "\n".join(lines)


def provenance(t: dict) -> str:
    """Where the weights started: a fine-tune names the run it continued, GPU runs say they shared the card."""
    text = ""
    first = t
    if t.get("init_from"):
        first = t.get("init_training") or {}
        src = Path(str(t["init_from"]))
        text += (f"Fine-tuned from `{src.parent.name if src.name == 'bundle' else src.name}` "
                 f"(itself {first.get('steps')} steps in {first.get('seconds', 0) / 60:.1f} min on "
                 f"{first.get('hardware')}, lambda_KL {first.get('train', {}).get('lambda_kl')}). ")
        if first.get("init_from"):
            text += "That run was itself a fine-tune of an earlier bundle. "
    if "NVIDIA" in str(first.get("hardware", "")):
        text += ("The GPU runs trained nine models at once on one card for the same wall-clock budget, so a "
                 "model and its baseline did not get the same number of steps. ")
    return text


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bundle", type=Path, required=True)
    p.add_argument("--det", type=Path)
    p.add_argument("--eval", type=Path, required=True, help="varsr-eval JSON on a held-out split")
    p.add_argument("--data-root", type=Path, default=REPO.parent / "shared" / "data")
    p.add_argument("--notes", default="", help="extra text for the card's training section")
    p.add_argument("--name", help="install under this name (and NAME-det) instead of the config's, e.g. a variant")
    p.add_argument("--run-config", help="training config whose data gives the attribute directions "
                   "(default: the model's name without -det)")
    p.add_argument("--camera-eval", type=Path, help="varsr-eval JSON of the same split under --degradation camera")
    p.add_argument("--append", type=Path, action="append", default=[],
                   help="Markdown appended to the card (e.g. the identity-search tables)")
    args = p.parse_args()

    model = load_model(args.bundle)
    cfg = model.config
    if args.name:
        cfg.name = args.name
    ev = json.loads(args.eval.read_text())
    cfg.metrics = {"dataset": ev["dataset"], "split": "test", "n_images": ev["n_images"],
                   "n_samples": ev["n_samples"], "methods": ev["methods"],
                   "classifier_hr_accuracy": ev.get("classifier_hr_accuracy")}
    demo = ""
    if cfg.domain == "face":
        from core.model import attributes
        from core.training.run_config import load_run_config
        from core.training.train import load_training_data

        run = load_run_config(args.run_config or cfg.name.removesuffix("-det"))
        data = load_training_data(run.data, cfg.hr_size, cfg.channels, args.data_root,
                                  cache_dir=REPO / ".cache" / "data")
        mu = attributes.encode_all(model, data)
        dirs, counts = attributes.directions(mu, data)
        model.attributes = dirs
        cfg.attribute_scale = attributes.calibrate_scale(mu, dirs)
        cfg.metrics["attribute_counts"] = counts
        demo = demographics(data)
    dest = models_dir() / cfg.name
    if dest.exists():
        shutil.rmtree(dest)
    save_bundle(model, dest, half=True)
    if args.det:
        det = load_model(args.det)
        if args.name:
            det.config.name = f"{args.name}-det"
        det.config.metrics = {"dataset": ev["dataset"], "methods": {"det": ev["methods"].get("det")}}
        ddest = models_dir() / det.config.name
        if ddest.exists():
            shutil.rmtree(ddest)
        save_bundle(det, ddest, half=True)
        shutil.copy(args.eval, ddest / "eval.json")
    shutil.copy(args.eval, dest / "eval.json")
    if cfg.domain == "face" and cfg.latent_dim:  # the app's encoder check (out-of-distribution crops)
        try:
            from tools.measure_ood_reference import held_out_faces, measure_bundle

            measure_bundle(dest, held_out_faces(Path(args.data_root)))
        except Exception as e:  # the bundle ships without it; the app then says it has no reference
            print(f"warning: no ood.json for {cfg.name} ({e}); run tools/measure_ood_reference.py", file=sys.stderr)
    t = cfg.training
    size_mb = sum(f.stat().st_size for f in dest.iterdir()) / 1e6
    colour = "RGB" if cfg.channels == 3 else "grey"
    (lw, lh), (hw, hh) = cfg.lr_size, cfg.hr_size
    task = f"{cfg.domain}: {lw}x{lh} -> {hw}x{hh} ({colour}), x{cfg.scale}"
    arch = (f"VarSR (E_L, E_H, G), latent D = {cfg.latent_dim}, generator width {cfg.width}, {cfg.n_res_blocks} "
            f"residual blocks; baseline `{cfg.name}-det` (same generator, no latent, same data and time budget)")
    card = f"""# Model card: `{cfg.name}`

**Every output of this model is a synthetic, plausible image: an investigative lead, never evidence
and never an identification.**

| | |
|---|---|
| task | {task} |
| model | {arch} |
| training inputs | {training_inputs(t)} |
| consistency scored with | box filter (`core.model.degrade.degrade`): the mean of each {cfg.scale}x{cfg.scale} block |
| bundle size | {size_mb:.1f} MB (fp16 safetensors) |

## Data and licences
Trained on the training split of: {cfg.data} ({t.get('n_train_images')} images; faces split by identity,
plate characters by plate or sheet, so the held-out split shares no person or plate).
{LICENCES[cfg.domain]}

{demo}

## Training
{t.get('steps')} steps in {t.get('seconds', 0) / 60:.1f} min on {t.get('hardware')} (torch {t.get('torch')}),
seed {t.get('seed')}, batch {t.get('train', {}).get('batch_size')}, Adam {t.get('train', {}).get('lr')}
betas {t.get('train', {}).get('betas')}, lambda_pixel {t.get('train', {}).get('lambda_pixel')},
lambda_KL {t.get('train', {}).get('lambda_kl')} (KL mean over latent dims), lambda_adv
{t.get('train', {}).get('lambda_adv')} from step {t.get('train', {}).get('adv_start')}, lambda_perceptual
(LPIPS) {t.get('train', {}).get('lambda_perceptual')}, lr decayed x{t.get('train', {}).get('lr_decay')} at step
{t.get('train', {}).get('decay_at')}. {provenance(t)}{args.notes}

## Held-out figures (`varsr-eval`, {ev['n_images']} test images, {ev['n_samples']} samples each, seed {ev['seed']})
{metrics_table(ev)}

Targets of the project (issue "Train and ship the default models"), not loosened:

{targets(cfg.domain, ev)}
{camera_section(cfg.domain, args.camera_eval)}
MSE and consistency are on the 0-255 scale; 'best' is over the n samples; diversity is the mean
pairwise LPIPS (AlexNet) among the samples of one input.

Paper, for comparison: {PAPER[cfg.domain]}

## Known failure modes
{FAILURES[cfg.domain]}
"""
    if cfg.domain == "face" and model.attributes:
        names = sorted({k.split('/', 1)[1] for k in model.attributes})
        card += (f"\n## Attribute directions\n`mean/<attr>` (the paper's Z_att) and `diff/<attr>` (mean with - "
                 f"mean without) from E_H^mu of the training images, for {', '.join(names)}; scale s = "
                 f"{cfg.attribute_scale:.3f} (k = 2 along an average diff direction moves z by the median "
                 "spread of E_H^mu). Not yet measured: which kind edits better, identity drift and side "
                 "effects on other attributes (open work).\n")
    for extra in args.append:
        card += "\n" + extra.read_text(encoding="utf-8").strip() + "\n"
    (dest / "card.md").write_text(card, encoding="utf-8")
    if args.det:
        (models_dir() / f"{cfg.name}-det" / "card.md").write_text(
            card.replace(f"# Model card: `{cfg.name}`", f"# Model card: `{cfg.name}-det` (deterministic baseline "
                         f"of `{cfg.name}`; its figures are the det column below)"), encoding="utf-8")
    print(f"installed {dest}" + (f" and {cfg.name}-det" if args.det else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
