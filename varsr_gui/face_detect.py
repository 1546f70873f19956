"""Face proposals with facenet-pytorch's MTCNN (run in a worker; it needs faces of about 12 px or more)."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from PIL import Image

MIN_FACE_PX = 12


@dataclass
class FaceProposal:
    box: tuple[float, float, float, float]
    left_eye: tuple[float, float]
    right_eye: tuple[float, float]
    probability: float


@functools.cache
def _mtcnn():
    from facenet_pytorch import MTCNN

    return MTCNN(keep_all=True, min_face_size=MIN_FACE_PX, device="cpu")


def detect_faces(image: Image.Image, min_probability: float = 0.8) -> list[FaceProposal]:
    """Boxes and eye centres (image left, image right) of the faces MTCNN finds."""
    boxes, probs, landmarks = _mtcnn().detect(image.convert("RGB"), landmarks=True)
    if boxes is None:
        return []
    out = []
    for b, p, lm in zip(boxes, probs, landmarks, strict=True):
        if p is None or p < min_probability:
            continue
        a, c = (float(lm[0][0]), float(lm[0][1])), (float(lm[1][0]), float(lm[1][1]))
        left, right = sorted((a, c))
        out.append(FaceProposal(tuple(float(v) for v in b), left, right, float(p)))  # type: ignore[arg-type]
    return out
