"""Write ``tests/data/face_api_reference.json``: descriptors computed by face-api itself, for the port test.

Usage (Node.js >= 18; nothing is installed, face-api's ESM bundle carries TF.js)::

    cd /tmp && npm pack @vladmandic/face-api@1.7.15
    mkdir faceapi && tar -xzf vladmandic-face-api-1.7.15.tgz -C faceapi
    python tools/face_api_reference.py /tmp/faceapi/package [--data ../shared/data]

Inputs are 150x150 chips: synthetic patterns (:func:`pattern`, rebuilt by the test from their
names) and, when the CelebA folder is there, a few real faces mapped to the dlib chip by
:class:`core.search.embedders.DlibFaceEmbedder` (the test rebuilds those from the data).
``tools/face_api_reference.mjs`` runs face-api's ``FaceRecognitionNet`` on them with TF.js's CPU
backend; face-api normalises by 255, so the test compares with ``FaceResNet(input_scale=255)``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

OUT = ROOT / "tests" / "data" / "face_api_reference.json"
PATTERNS = ("ramp", "rings", "noise")
#: CelebA files whose chips are in the fixture (any aligned CelebA images work).
CELEBA_FILES = ("000001.jpg", "000002.jpg", "000003.jpg")


def pattern(name: str, size: int = 150) -> np.ndarray:
    """A deterministic ``(size, size, 3)`` uint8 test image."""
    y, x, c = np.meshgrid(np.arange(size), np.arange(size), np.arange(3), indexing="ij")
    if name == "ramp":
        v = (3 * x + 5 * y + 40 * c) % 256
    elif name == "rings":
        v = np.round(127.5 + 127.5 * np.sin(np.hypot(x - 75, y - 60) / 6.0 + c))
    elif name == "noise":
        v = np.random.default_rng(7).integers(0, 256, (size, size, 3))
    else:
        raise ValueError(f"unknown pattern {name}")
    return v.astype(np.uint8)


def celeba_chip(root: Path, name: str) -> np.ndarray:
    """The dlib chip of one CelebA image's canonical 64x64 frame, as the embedder makes it."""
    from core.data.celeba import CELEBA_BOX
    from core.images import load_image, pil_to_tensor
    from core.model.faces import crop_fractional
    from core.search.align import dlib_chip_eyes, frame_to_chip

    frame = crop_fractional(load_image(root / "img_align_celeba" / name, "RGB"), CELEBA_BOX, 64)
    chip = frame_to_chip(frame, dlib_chip_eyes(150), 150)
    assert pil_to_tensor(chip).shape == (3, 150, 150)
    return np.asarray(chip, dtype=np.uint8)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("package", type=Path, help="the extracted npm package folder (with dist/ and model/)")
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)
    inputs = [("pattern", n, pattern(n)) for n in PATTERNS]
    celeba = args.data / "celeba"
    if (celeba / "img_align_celeba").is_dir():
        inputs += [("celeba", n, celeba_chip(celeba, n)) for n in CELEBA_FILES]
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.json", Path(tmp) / "out.json"
        src.write_text(json.dumps([{"w": a.shape[1], "h": a.shape[0], "data": a.reshape(-1).tolist()}
                                   for _, _, a in inputs]))
        run = subprocess.run(["node", str(ROOT / "tools" / "face_api_reference.mjs"), str(args.package.resolve()),
                              str(src), str(dst)], capture_output=True, text=True)
        if run.returncode:
            print(run.stderr[-2000:], file=sys.stderr)
            return 1
        print(run.stdout.strip())
        descriptors = json.loads(dst.read_text())
    fixture = {
        "what": "face-api 1.7.15 FaceRecognitionNet descriptors (TF.js CPU backend) of 150x150 RGB chips",
        "made_by": "tools/face_api_reference.py",
        "input_scale": 255,
        "cases": [{"kind": kind, "name": name, "descriptor": [round(float(v), 8) for v in d]}
                  for (kind, name, _), d in zip(inputs, descriptors, strict=True)],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(fixture, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out} ({len(inputs)} cases)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
