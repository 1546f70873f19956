"""Train the plate reader: the 8x16 character classifier on real and rendered plate characters.

    OMP_NUM_THREADS=1 python tools/train_plate_reader.py --data-root ../shared/data   # the shipped reader

The defaults are the shipped reader's recipe (34 minutes on one CPU thread of the 2-core reference
machine); every run is reproducible from its arguments and seed, which the JSON records. 15 % of the
UC3M-LP train plates are kept aside (``--select-share``) to choose settings on, so that ``val`` is
not the yardstick of every try.

Training data (never a plate that is measured): the OpenALPR ``train`` split (chars + sheets),
UC3M-LP's ``train`` split cut at its character boxes with random margins (plates whose text could
be a ``val`` plate are left out), and characters cut from plates rendered by
:mod:`core.plates.render`. Held out: UC3M-LP ``val`` (exact boxes), OpenALPR end-to-end and the
Argentine plates (characters found by :func:`core.plates.real.segment_chars`), and the OpenALPR
``test`` split of single characters. Writes ``resources/classifiers/plate-reader.safetensors`` +
``.json`` with the held-out figures (per character and per plate, with counts and standard errors).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.data.imageset import ImageSet  # noqa: E402
from core.data.plates import CLASSES, load_plate_chars  # noqa: E402
from core.nets.classifier import (  # noqa: E402
    default_path,
    labelled_for,
    load_classifier,
    save_classifier,
    train_classifier,
)
from core.plates.heldout import accuracy, read_chars, se  # noqa: E402
from core.plates.reading import cross_fitted_ece  # noqa: E402
from core.plates.real import MASK, exclude_compatible, load_argentina, load_endtoend, load_uc3m  # noqa: E402
from core.plates.training_chars import rendered, rendered_row_cells, row_cells, row_chars  # noqa: E402

SIZE = (8, 16)


def uc3m_train_chars(rows, rng: np.random.Generator, copies: int) -> tuple[np.ndarray, np.ndarray]:
    """Each known character cut exactly once and ``copies`` more times with random margins."""
    x, y, _ = row_chars(rows, SIZE, rng, copies)
    return x, y


def low_res(x: np.ndarray, rng: np.random.Generator, share: float) -> np.ndarray:
    """A random ``share`` of the characters ``(N, h, w)`` as the reader meets them in low-resolution
    rows: reduced with the area filter to 2x4, 3x6 or 4x8 (sometimes with noise), 8-bit, enlarged
    bicubically and stretched again. The rest are returned unchanged."""
    from PIL import Image

    from core.plates.prep import stretch

    out = x.copy()
    pick = np.nonzero(rng.random(len(x)) < share)[0]
    for i in pick:
        pw, ph = ((2, 4), (3, 6), (4, 8))[int(rng.integers(3))]
        lr = np.asarray(Image.fromarray(x[i]).resize((pw, ph), Image.Resampling.BOX), dtype=np.float32)
        if rng.random() < 0.5:
            lr = lr + rng.normal(0, rng.uniform(2, 10), lr.shape)
        lr = np.clip(lr, 0, 255).round().astype(np.uint8)
        up = np.asarray(Image.fromarray(lr).resize((x.shape[2], x.shape[1]), Image.Resampling.BICUBIC))
        out[i] = stretch(up).round().astype(np.uint8)
    return out


def cached_render(n: int, seed: int, cache: Path) -> tuple[np.ndarray, np.ndarray]:
    t0 = time.perf_counter()
    x, y = rendered(n, SIZE, seed, cache)
    print(f"{n} rendered characters in {time.perf_counter() - t0:.0f} s (cached under {cache})")
    return x, y


def equal_cells(model, rows) -> dict:
    """Per character and per plate on whole held-out rows boxed as the evaluation boxes them
    (:func:`core.plates.evaluate.boxed_row`) and cut into equal cells at full resolution, each row in
    the polarity the reader prefers: the ceiling of every low-resolution reading of the app."""
    from core.plates.evaluate import boxed_row
    from core.plates.prep import stretch, to_grey
    from core.plates.reading import choose_polarity, classify, cut_cells, equal_bounds, reader_temperature

    t = reader_temperature(model)
    ok_chars, ok_plates = [], []
    for row in rows:
        n = len(row.text)
        try:
            g = stretch(to_grey(boxed_row(row)))
        except ValueError:
            continue
        size = model.info.size
        inv, _ = choose_polarity(model, g, equal_bounds(n), size, t)
        p = classify(model, cut_cells(255.0 - g if inv else g, equal_bounds(n), size), t).numpy()
        known = [i for i, c in enumerate(row.text) if c != MASK]
        ok = [int(p[i].argmax()) == CLASSES.index(row.text[i]) for i in known]
        ok_chars += ok
        ok_plates.append(all(ok))
    c, pl = float(np.mean(ok_chars)), float(np.mean(ok_plates))
    return {"char": round(c, 4), "char_se": round(se(c, len(ok_chars)), 4), "n_chars": len(ok_chars),
            "plate": round(pl, 4), "plate_se": round(se(pl, len(ok_plates)), 4), "n_plates": len(ok_plates)}


def selection_split(rows, share: float) -> tuple[list, list]:
    """UC3M train rows split by plate (a stable hash of the text) into training rows and a ``share``
    kept aside to choose the reader's settings on, so that the held-out ``val`` is measured once."""
    import zlib

    pick = [zlib.crc32(r.text.encode()) % 1000 < share * 1000 for r in rows]
    return [r for r, p in zip(rows, pick, strict=True) if not p], [r for r, p in zip(rows, pick, strict=True) if p]


def measure(model, alpr_test, val, end2end, arg, log=print) -> dict:
    """Held-out figures: OpenALPR test characters, and per character / per plate on the real plates,
    cut at their boxes exactly and with 10 % margins, with counts, standard errors and calibration."""
    xa, ya = labelled_for(model, alpr_test)
    a = model.accuracy(xa, ya)
    figures: dict = {"openalpr-test-chars": {"char": round(a, 4), "char_se": round(se(a, len(ya)), 4),
                                             "n_chars": len(ya)}}
    for name, rows in (("uc3m-val", val), ("openalpr-endtoend", end2end), ("ar", arg)):
        for margin in (0.0, 0.1):
            prob, lab, own, inv = read_chars(model, rows, margin)
            acc = accuracy(prob.argmax(1), lab, own)
            key = name if margin == 0 else f"{name}-margin{margin}"
            ece1, ece_t, temp = cross_fitted_ece(prob.numpy(), lab.numpy(), own.numpy())
            # O/0 and I/1 share one glyph on several plates (BR, AR): also count them as one class
            same = torch.arange(len(CLASSES))
            same[CLASSES.index("O")], same[CLASSES.index("I")] = CLASSES.index("0"), CLASSES.index("1")
            eq = accuracy(same[prob.argmax(1)], same[lab], own)
            figures[key] = {**acc.to_dict(), "rows_inverted": int(inv.sum()), "ece": round(ece1, 4),
                            "ece_tempered": round(ece_t, 4), "temperature": round(temp, 3),
                            "char_O0_I1_merged": round(eq.char, 4), "plate_O0_I1_merged": round(eq.plate, 4)}
            log(f"{key}: {acc}; O=0, I=1: {eq}; ECE {ece1:.3f} (T fitted on the other half: {ece_t:.3f})")
        figures[f"{name}-equal-cells"] = eq_cells = equal_cells(model, [r for r in rows if r.one_row])
        log(f"{name}-equal-cells: {eq_cells}")
    return figures


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data-root", type=Path, default=Path("../shared/data"))
    p.add_argument("--rendered", type=int, default=30000, help="rendered characters to add")
    p.add_argument("--uc3m-copies", type=int, default=5, help="jittered copies of each UC3M train character")
    p.add_argument("--epochs", type=int, default=14)
    p.add_argument("--low-res-share", type=float, default=0.25,
                   help="share of UC3M copies and rendered characters seen at 2x4-4x8 and enlarged again")
    p.add_argument("--row-cells", type=int, default=30000,
                   help="rendered row cells to add (rows cut into equal cells as the app cuts them)")
    p.add_argument("--row-copies", type=int, default=4, help="boxings of each UC3M train row cut into cells")
    p.add_argument("--width", type=int, default=48, help="the network's first channel count")
    p.add_argument("--select-share", type=float, default=0.15,
                   help="share of UC3M train plates kept out of training to choose settings on")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache", type=Path, default=Path(".cache/plates"))
    p.add_argument("--out", type=Path, default=default_path("plate-reader"))
    p.add_argument("--measure-only", action="store_true",
                   help="measure the classifier at --out again (and the old plate-char) and rewrite its JSON")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    plates = args.data_root / "plates"
    rng = np.random.default_rng(args.seed)

    alpr = load_plate_chars(plates / "openalpr-train-ocr", "train", SIZE, sheets=True)
    alpr_test = load_plate_chars(plates / "openalpr-train-ocr", "test", SIZE, sheets=True)
    val = load_uc3m(plates / "uc3m-lp", "val")
    end2end, e2e_failed = load_endtoend(plates / "openalpr-endtoend")
    arg, ar_failed = load_argentina(plates / "fast-plate-ocr-ar")
    held = [*val, *end2end, *arg]
    if args.measure_only:
        model = load_classifier(args.out)
        figures = measure(model, alpr_test, val, end2end, arg)
        figures["segmentation_failed"] = {"openalpr-endtoend": e2e_failed, "ar": ar_failed}
        print("the previous classifier (resources/classifiers/plate-char):")
        old = measure(load_classifier(default_path("plate-char")), alpr_test, val, end2end, arg)
        figures["previous_plate_char"] = {k: old[k] for k in ("uc3m-val", "openalpr-endtoend", "ar")}
        model.info.extra["heldout"] = figures
        model.info.heldout_accuracy = figures["uc3m-val"]["char"]
        model.info.n_heldout = figures["uc3m-val"]["n_chars"]
        save_classifier(model, args.out)
        print(f"rewrote {args.out.with_suffix('.json')}")
        return 0
    train_rows, select_rows = selection_split(exclude_compatible(load_uc3m(plates / "uc3m-lp", "train"), held),
                                              args.select_share)
    ux, uy = uc3m_train_chars(train_rows, rng, args.uc3m_copies)
    rx, ry = cached_render(args.rendered, args.seed, args.cache)
    if args.low_res_share > 0:
        rx = low_res(rx, rng, args.low_res_share)
        exact = np.arange(len(ux)) % (args.uc3m_copies + 1) == 0  # the exact cut of each character stays sharp
        ux = np.where(exact[:, None, None], ux, low_res(ux, rng, args.low_res_share * (args.uc3m_copies + 1)
                                                          / max(args.uc3m_copies, 1)))
    parts = {
        "openalpr-train": (alpr.images[:, 0].numpy(), alpr.labels.numpy()),
        "uc3m-train": (ux, uy),
        "rendered": (rx, ry),
    }
    if args.row_copies > 0:
        cx, cy, _ = row_cells([r for r in train_rows if r.one_row], SIZE, rng, args.row_copies)
        parts["uc3m-train-row-cells"] = (low_res(cx, rng, args.low_res_share) if args.low_res_share else cx, cy)
    if args.row_cells > 0:
        cx, cy = rendered_row_cells(args.row_cells, SIZE, args.seed, args.cache)
        parts["rendered-row-cells"] = (low_res(cx, rng, args.low_res_share) if args.low_res_share else cx, cy)
    for k, (x, _) in parts.items():
        print(f"{k}: {len(x)} characters")
    x = torch.from_numpy(np.concatenate([v[0] for v in parts.values()]))[:, None]
    y = torch.from_numpy(np.concatenate([v[1] for v in parts.values()])).long()
    train = ImageSet(images=x, labels=y, classes=list(CLASSES), source="plate-reader")
    t0 = time.perf_counter()
    model = train_classifier(train, epochs=args.epochs, seed=args.seed, heldout=alpr_test, log=print,
                             width=args.width)
    info = model.info
    info.extra["train_seconds"] = round(time.perf_counter() - t0, 1)
    info.extra["n_train_parts"] = {k: len(v[0]) for k, v in parts.items()}
    info.extra["n_uc3m_train_plates"] = len(train_rows)
    info.extra["preprocess"] = ("grey, stretched to the crop's 2-98 % percentiles, dark-on-light "
                                "(a row read both ways keeps the surer), padded to 1:2, area-resized "
                                "(core.plates.prep.prepare_char)")
    if select_rows:
        prob, lab, own, _ = read_chars(model, select_rows)
        sel = accuracy(prob.argmax(1), lab, own)
        print(f"uc3m-select ({len(select_rows)} train plates kept aside): {sel}")
        info.extra["selection"] = {"uc3m-train-kept-aside": sel.to_dict()}
    figures = measure(model, alpr_test, val, end2end, arg)
    figures["segmentation_failed"] = {"openalpr-endtoend": e2e_failed, "ar": ar_failed}
    info.extra["heldout"] = figures
    info.heldout_accuracy = figures["uc3m-val"]["char"]
    info.n_heldout = figures["uc3m-val"]["n_chars"]
    info.extra["args"] = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    info.data = ("OpenALPR train-ocr train split (chars + sheets), UC3M-LP train split (char boxes, "
                 f"{args.uc3m_copies} jittered copies, plates compatible with a held-out text removed"
                 + (", and its rows cut into equal cells" if args.row_copies else "") + "), rendered plates "
                 + ("(characters and rows cut into equal cells) " if args.row_cells else "") +
                 "(core.plates.render, resources/fonts); held out: UC3M-LP val, OpenALPR end-to-end, "
                 "fast-plate-ocr Argentine plates, OpenALPR test split. heldout_accuracy: UC3M-LP val "
                 "characters, exact boxes")
    out = save_classifier(model, args.out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
