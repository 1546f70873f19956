"""Measure where the eyes sit in the CelebA and UTKFace images, and the crop box to the face frame.

Runs facenet-pytorch's MTCNN (weights ship inside the wheel) on ``--count`` evenly spaced images of
each data set, takes the median eye centres (and nose / mouth) as fractions of the image size and
prints the fractional box that puts those median eyes on :data:`core.model.faces.LEFT_EYE` /
:data:`core.model.faces.RIGHT_EYE`. The loaders hard-code these boxes.

Usage::

    python tools/measure_face_frames.py [--data ../shared/data] [--count 300] [--upsample 3]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.images import load_image  # noqa: E402
from core.model.faces import FRAME, LEFT_EYE, RIGHT_EYE, fractional_box  # noqa: E402

NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")


def sample_files(folder: Path, pattern: str, count: int) -> list[Path]:
    """``count`` evenly spaced files of the sorted listing (deterministic)."""
    files = sorted(folder.glob(pattern))
    if not files:
        raise SystemExit(f"no {pattern} files in {folder}")
    idx = np.linspace(0, len(files) - 1, min(count, len(files))).round().astype(int)
    return [files[i] for i in idx]


def measure(files: list[Path], upsample: int, pad: float) -> tuple[np.ndarray, tuple[int, int]]:
    """Landmarks (n, 5, 2) as fractions of each image's size, and the most common image size.

    Each image is upsampled ``upsample`` times and padded by ``pad`` of its size on every side
    (edge pixels repeated) so that tightly framed faces still have context for the detector.
    """
    from facenet_pytorch import MTCNN

    mtcnn = MTCNN(keep_all=False, device="cpu")
    out, sizes = [], []
    for f in files:
        im = load_image(f, "RGB")
        w, h = im.size
        sizes.append((w, h))
        big = im.resize((w * upsample, h * upsample), Image.Resampling.BICUBIC)
        p = round(pad * max(big.size))
        if p:
            a = np.pad(np.asarray(big), ((p, p), (p, p), (0, 0)), mode="edge")
            big = Image.fromarray(a)
        boxes, probs, lms = mtcnn.detect(big, landmarks=True)
        if boxes is None:
            continue
        best = int(np.argmax(probs))
        lm = (np.asarray(lms[best], dtype=np.float64) - p) / upsample
        out.append(lm / np.array([w, h]))
    common = max(set(sizes), key=sizes.count)
    return np.array(out), common


def report(name: str, lms: np.ndarray, n_files: int, size: tuple[int, int]) -> None:
    w, h = size
    med = np.median(lms, axis=0)
    print(f"\n{name}: faces found in {len(lms)}/{n_files} images, common size {w}x{h}")
    for k, (fx, fy) in zip(NAMES, med, strict=True):
        print(f"  median {k:11s} = ({fx:.4f}, {fy:.4f}) of the size = ({fx * w:.2f}, {fy * h:.2f}) px")
    iqr = np.percentile(lms[:, :2], 75, axis=0) - np.percentile(lms[:, :2], 25, axis=0)
    print(f"  eye IQR (fractions): left {iqr[0].round(4).tolist()}, right {iqr[1].round(4).tolist()}")
    box = fractional_box(tuple(med[0]), tuple(med[1]), w, h)
    print(f"  crop box (fractions) = ({box[0]:.4f}, {box[1]:.4f}, {box[2]:.4f}, {box[3]:.4f})")
    print(f"  = ({box[0] * w:.1f}, {box[1] * h:.1f}, {box[2] * w:.1f}, {box[3] * h:.1f}) px of {w}x{h}")
    # Where the median nose and mouth land in the frame, as a check of the framing.
    x0, y0, x1 = box[0] * w, box[1] * h, box[2] * w
    s = FRAME / (x1 - x0)
    for k, (fx, fy) in zip(NAMES, med, strict=True):
        print(
            f"  in the {FRAME}x{FRAME} frame: {k:11s} at ({(fx * w - x0) * s:.1f}, {(fy * h - y0) * s:.1f})"
        )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--count", type=int, default=300)
    ap.add_argument("--upsample", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"canonical eyes in the {FRAME}x{FRAME} frame: left {LEFT_EYE}, right {RIGHT_EYE}")
    sets = [
        ("celeba", args.data / "celeba" / "img_align_celeba", "*.jpg", 0.0),
        ("utkface", args.data / "utkface", "*.jpg", 0.25),
    ]
    for name, folder, pattern, pad in sets:
        files = sample_files(folder, pattern, args.count)
        lms, size = measure(files, args.upsample, pad)
        report(name, lms, len(files), size)


if __name__ == "__main__":
    main()
