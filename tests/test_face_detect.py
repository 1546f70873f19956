"""One face detector (core/search/face_detect.py) for the app's proposals on evidence and for gallery photos."""

from __future__ import annotations

import numpy as np
from PIL import Image

from core.images import load_image
from core.search.face_detect import GALLERY_MIN_FACE_PX, MIN_FACE_PX, Face, detect_faces, mtcnn
from tests.conftest import SHARED_DATA, requires_shared_data


def test_one_shared_mtcnn_per_face_size() -> None:
    assert mtcnn(MIN_FACE_PX) is mtcnn(MIN_FACE_PX) and mtcnn() is mtcnn(GALLERY_MIN_FACE_PX)
    assert mtcnn(MIN_FACE_PX).min_face_size == MIN_FACE_PX


def test_no_face_is_an_empty_list() -> None:
    assert detect_faces(Image.new("RGB", (64, 48), (90, 90, 90))) == []


@requires_shared_data("celeba/img_align_celeba")
def test_evidence_faces_are_faces_with_eyes_in_order() -> None:
    path = sorted((SHARED_DATA / "celeba" / "img_align_celeba").glob("*.jpg"))[0]
    faces = detect_faces(load_image(path))
    assert faces and all(isinstance(f, Face) and f.left_eye[0] < f.right_eye[0] for f in faces)
    f = max(faces, key=lambda f: f.probability)
    x0, y0, x1, y1 = f.box
    assert f.probability > 0.8 and x0 < f.left_eye[0] < f.right_eye[0] < x1 and y0 < f.left_eye[1] < y1
    assert np.isfinite(f.to_dict()["probability"])
