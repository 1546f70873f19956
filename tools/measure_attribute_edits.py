"""Measure the face bundles' attribute sliders and write the result into each bundle and its card.

    python tools/measure_attribute_edits.py --data-root ../shared/data [--train-classifier] [--n 400]

1. With ``--train-classifier`` (or when it is missing), trains the face attribute classifier on
   the HR *training* faces of the face run config and saves it to
   ``resources/classifiers/face-attributes.safetensors`` (+ ``.json`` with held-out balanced accuracy).
2. For each face bundle, takes ``--n`` held-out test faces, degrades them to the bundle's LR size,
   and scores every stored direction at k = +-2 (:mod:`core.evaluation.attribute_edits`); identity drift is
   measured when the bundled face embedder is installed.
3. Writes ``edits.json`` into the bundle folder and replaces the card's "Attribute directions" section.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from core.evaluation import attribute_edits  # noqa: E402
from core.fileio import atomic_write  # noqa: E402
from core.model.bundle import load_model, models_dir  # noqa: E402
from core.model.degrade import degrade  # noqa: E402
from core.nets.attribute_classifier import (  # noqa: E402
    default_path,
    load_attribute_classifier,
    save_attribute_classifier,
    train_attribute_classifier,
)
from core.training.run_config import load_run_config  # noqa: E402
from core.training.train import load_training_data  # noqa: E402


def face_embedder():  # noqa: ANN201 - optional, from the search package when it exists
    """The bundled face embedder as ``images (N,3,64,64) -> (N,128)``, or None with the reason printed."""
    from core.errors import VarSRError
    from core.search.embedders import load_embedder

    try:
        emb = load_embedder()
    except VarSRError as e:
        print(f"identity drift: embedder unavailable ({e})")
        return None, None
    return emb, emb.name


def section(report: dict, cfg_scale: float, names: list[str]) -> str:
    return (f"## Attribute directions\n`mean/<attr>` (the paper's Z_att) and `diff/<attr>` (mean with - mean "
            f"without) from E_H^mu of the training images, for {', '.join(names)}; scale s = {cfg_scale:.3f} "
            f"(k = 2 along an average diff direction moves z by the median spread of E_H^mu).\n\n"
            f"Measured with the project's face attribute classifier "
            f"(`resources/classifiers/face-attributes`, trained on the HR training faces; held-out balanced "
            f"accuracy per attribute in its JSON) on held-out faces:\n\n{attribute_edits.to_markdown(report)}")


def update_card(card: Path, text: str) -> None:
    old = card.read_text(encoding="utf-8")
    pattern = re.compile(r"## Attribute directions\n.*?(?=\n## |\Z)", re.S)
    new = pattern.sub(lambda _m: text.rstrip("\n"), old) if pattern.search(old) else old.rstrip("\n") + "\n\n" + text
    atomic_write(card, lambda tmp: tmp.write_text(new.rstrip("\n") + "\n", encoding="utf-8"))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data-root", type=Path, default=REPO.parent / "shared" / "data")
    p.add_argument("--bundles", nargs="+", default=["face-8", "face-16"])
    p.add_argument("--train-classifier", action="store_true")
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--n", type=int, default=400, help="held-out inputs per bundle")
    p.add_argument("--k", type=float, default=2.0)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    cache = REPO / ".cache"
    run = load_run_config("face-8")
    test = load_training_data(run.data, (64, 64), 3, args.data_root, split="test", cache_dir=cache)
    if args.train_classifier or not default_path().is_file():
        train = load_training_data(run.data, (64, 64), 3, args.data_root, split="train", cache_dir=cache)
        t0 = time.perf_counter()
        clf = train_attribute_classifier(train, epochs=args.epochs, seed=args.seed, heldout=test, log=print)
        clf.info.data = (f"{train.source}: train split ({len(train)} faces) to train, test split ({len(test)}, "
                         f"identities never seen in training) for held-out balanced accuracy; "
                         f"{time.perf_counter() - t0:.0f} s on CPU")
        save_attribute_classifier(clf, default_path())
        print("held-out balanced accuracy:", json.dumps(clf.info.heldout_balanced_accuracy))
    clf = load_attribute_classifier()
    embed, embedder_name = face_embedder()
    g = torch.Generator().manual_seed(args.seed)
    pick = torch.randperm(len(test), generator=g)[: args.n]
    hr = test.images[pick].float() / 255.0
    for name in args.bundles:
        model = load_model(models_dir() / name)
        if not model.attributes:
            print(f"{name}: no attribute directions, skipped")
            continue
        lr = degrade(hr, model.config.scale)
        keys = sorted(model.attributes, key=lambda k: (k.split("/", 1)[1], k))
        scores, ctx = attribute_edits.measure_edits(model, clf, lr, keys, k=args.k, seed=args.seed, embed=embed,
                                                    log=print)
        report = attribute_edits.to_json(scores, ctx, bundle=name, weights_sha256=model.weights_sha256,
                                         embedder=embedder_name, data=f"{test.source} test split")
        dest = models_dir() / name
        text = json.dumps(report, indent=2) + "\n"
        atomic_write(dest / "edits.json", lambda tmp, t=text: tmp.write_text(t, encoding="utf-8"))
        names = sorted({k.split("/", 1)[1] for k in model.attributes})
        update_card(dest / "card.md", section(report, model.config.attribute_scale, names))
        print(f"{name}: wrote edits.json and the card section")
    return 0


if __name__ == "__main__":
    sys.exit(main())
