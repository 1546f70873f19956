"""Finding faces: facenet-pytorch's MTCNN (its weights ship inside the wheel), for the app's face
proposals on evidence (:func:`detect_faces`) and for gallery photos (:func:`find_face`). No Qt.

Small gallery photos are enlarged before detection (MTCNN misses faces under ~20 px and tightly
cropped faces with no context), and the landmarks are mapped back to the photo's own pixels.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

Point = tuple[float, float]
#: The smallest face the app proposes on evidence (MTCNN's limit, about 12 px).
MIN_FACE_PX = 12
#: The smallest face looked for in a (possibly enlarged) gallery photo.
GALLERY_MIN_FACE_PX = 20
#: Gallery photos whose short side is under this are enlarged (bicubic) to about this size before detection.
MIN_DETECT_SIDE = 240
#: Gallery detections below this probability are ignored.
MIN_PROBABILITY = 0.9


@dataclass(frozen=True)
class Face:
    """A face in a photo: eye centres (image left, image right), box and detector confidence."""

    left_eye: Point
    right_eye: Point
    box: tuple[float, float, float, float]
    probability: float

    def to_dict(self) -> dict[str, object]:
        r = lambda p: [round(float(v), 2) for v in p]  # noqa: E731
        return {"left_eye": r(self.left_eye), "right_eye": r(self.right_eye), "box": r(self.box),
                "probability": round(float(self.probability), 4)}


def mtcnn(min_face_px: int = GALLERY_MIN_FACE_PX) -> Any:
    """One shared CPU MTCNN per smallest face size (the P/R/O-nets' weights ship in the facenet-pytorch wheel)."""
    return _mtcnn(int(min_face_px))


@functools.cache
def _mtcnn(min_face_px: int) -> Any:
    from facenet_pytorch import MTCNN

    return MTCNN(keep_all=True, min_face_size=min_face_px, device="cpu")


def _eyes(lm: Any, scale: float = 1.0) -> tuple[Point, Point]:
    """MTCNN's first two landmarks (the eyes) divided by ``scale``, image-left first."""
    a = (float(lm[0][0]) / scale, float(lm[0][1]) / scale)
    b = (float(lm[1][0]) / scale, float(lm[1][1]) / scale)
    left, right = sorted((a, b))
    return left, right


def detect_faces(image: Image.Image, min_probability: float = 0.8) -> list[Face]:
    """Every face MTCNN finds on evidence (faces of about :data:`MIN_FACE_PX` or more), as found."""
    boxes, probs, landmarks = mtcnn(MIN_FACE_PX).detect(image.convert("RGB"), landmarks=True)
    if boxes is None:
        return []
    out = []
    for b, p, lm in zip(boxes, probs, landmarks, strict=True):
        if p is None or p < min_probability:
            continue
        left, right = _eyes(lm)
        out.append(Face(left, right, (float(b[0]), float(b[1]), float(b[2]), float(b[3])), float(p)))
    return out


def find_face(img: Image.Image, min_probability: float = MIN_PROBABILITY) -> Face | None:
    """The most confident face in a gallery photo (eyes sorted image-left first), or None if none is found."""
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
    left, right = _eyes(np.asarray(landmarks[best], dtype=np.float64), up)
    x0, y0, x1, y1 = (float(v) / up for v in boxes[best])
    return Face(left, right, (x0, y0, x1, y1), float(p))
