"""Train the digit / plate-character classifier that ``varsr-eval`` uses for Tables 4 and 5.

    python tools/train_classifier.py --domain digit --root ../shared/data/mnist
    python tools/train_classifier.py --domain plate-char --root ../shared/data/plates/openalpr-train-ocr

Trains on the loader's "train" split, measures accuracy on its "test" split (never seen in
training) and writes ``resources/classifiers/<domain>.safetensors`` + ``.json``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.nets.classifier import default_path, labelled_for, save_classifier, train_classifier  # noqa: E402

#: domain -> (data set kind, HR size (w, h)) of the models the classifier judges.
DOMAINS = {"digit": ("mnist", (24, 24)), "plate-char": ("plate-chars", (8, 16))}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--domain", required=True, choices=sorted(DOMAINS))
    p.add_argument("--root", required=True, type=Path, help="the data set folder")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    p.add_argument(
        "--out", type=Path, default=None, help="default: resources/classifiers/<domain>.safetensors"
    )
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    from core.data.registry import load_dataset

    kind, size = DOMAINS[args.domain]
    train = load_dataset(kind, args.root, "train", size=size, channels=1)
    test = load_dataset(kind, args.root, "test", size=size, channels=1)
    print(f"{kind}: {len(train)} train, {len(test)} held-out images at {size[0]}x{size[1]}")
    t0 = time.perf_counter()
    model = train_classifier(train, epochs=args.epochs, seed=args.seed, heldout=test, log=print)
    info = model.info
    split_note = "train split to train, test split for held-out accuracy"
    info.data = f"{kind} from folder '{args.root.name}': {split_note}"
    info.extra["train_seconds"] = round(time.perf_counter() - t0, 1)
    origins = sorted({i.split(":", 1)[0] for i in test.ids if ":" in i})
    if len(origins) > 1:  # per origin (e.g. plate crops vs training sheets)
        for origin in origins:
            keep = torch.tensor([i.split(":", 1)[0] == origin for i in test.ids])
            sub = type(test)(images=test.images[keep], labels=test.labels[keep], classes=test.classes)
            x, y = labelled_for(model, sub)
            info.extra[f"heldout_accuracy_{origin}"] = round(model.accuracy(x, y), 4)
            info.extra[f"n_heldout_{origin}"] = len(y)
    out = save_classifier(model, args.out or default_path(args.domain))
    print(f"held-out accuracy {info.heldout_accuracy:.4f} on {info.n_heldout} images; {info.extra}")
    print(f"wrote {out} ({out.stat().st_size / 1e3:.0f} kB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
