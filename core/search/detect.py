"""Face detection for gallery photos: facenet-pytorch's MTCNN (its weights ship inside the wheel).

Small photos are enlarged before detection (MTCNN misses faces under ~20 px and tightly cropped
faces with no context), and the landmarks are mapped back to the photo's own pixels.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
from PIL import Image

from core.search.align import Face

#: Photos whose short side is under this are enlarged (bicubic) to about this size before detection.
MIN_DETECT_SIDE = 240
#: Detections below this probability are ignored.
MIN_PROBABILITY = 0.9


@functools.cache
def mtcnn() -> Any:
    """One shared CPU MTCNN (the P/R/O-nets' weights ship in the facenet-pytorch wheel)."""
    from facenet_pytorch import MTCNN

    return MTCNN(keep_all=True, min_face_size=20, device="cpu")


def find_face(img: Image.Image, min_probability: float = MIN_PROBABILITY) -> Face | None:
    """The most confident face in ``img`` (eyes sorted image-left first), or None if none is found."""
    img = img.convert("RGB") if img.mode != "RGB" else img
    up = max(1, int(np.ceil(MIN_DETECT_SIDE / max(1, min(img.size)))))
    big = img.resize((img.width * up, img.height * up), Image.Resampling.BICUBIC) if up > 1 else img
    boxes, probs, landmarks = mtcnn().detect(big, landmarks=True)
    if boxes is None or len(boxes) == 0:
        return None
    best = int(np.argmax([p if p is not None else -1.0 for p in probs]))
    p = probs[best]
    if p is None or float(p) < min_probability:
        return None
    lm = np.asarray(landmarks[best], dtype=np.float64) / up
    a, b = (float(lm[0][0]), float(lm[0][1])), (float(lm[1][0]), float(lm[1][1]))
    left, right = sorted((a, b))
    box = tuple(float(v) / up for v in boxes[best])
    return Face(left, right, box, float(p))  # type: ignore[arg-type]
