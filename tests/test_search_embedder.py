"""The face embedders: the face-api converter, the port of dlib's ResNet, facenet's no-download rule, MTCNN."""

from __future__ import annotations

import importlib.util
import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from core.search.embedders import DlibFaceEmbedder, FacenetEmbedder, embedders_dir, load_embedder
from core.search.errors import EmbedderError
from core.training.train import default_data_root
from tests.conftest import REPO

CELEBA = default_data_root() / "celeba"  # $VARSR_DATA or ../shared/data
FIXTURE = Path(__file__).parent / "data" / "face_api_reference.json"
needs_celeba = pytest.mark.skipif(not (CELEBA / "img_align_celeba").is_dir() or
                                  not (CELEBA / "identity_CelebA.txt").is_file(),
                                  reason="CelebA not present ($VARSR_DATA or ../shared/data)")


def _tool(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "tools" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def dlib() -> DlibFaceEmbedder:
    return DlibFaceEmbedder()


@pytest.fixture(scope="module")
def face_api_net():
    """The bundled weights in FaceResNet with face-api's /255 input normalisation."""
    from safetensors.torch import load_file

    from core.nets.face_resnet import FaceResNet, state_from_stored

    net = FaceResNet(input_scale=255.0)
    net.load_state_dict(state_from_stored(load_file(str(embedders_dir() / "dlib-face-resnet.safetensors"))))
    return net.eval()


# -- converter -------------------------------------------------------------------------------------
def test_converter_decodes_quantised_and_float_tensors_in_manifest_order() -> None:
    conv = _tool("convert_face_api")
    filters = np.arange(2 * 2 * 3 * 4, dtype=np.uint8).reshape(2, 2, 3, 4)  # HWIO codes
    bias = np.array([0.5, -1.0, 2.0, 0.25], dtype="<f4")
    manifest = [{"paths": ["x.bin"], "weights": [
        {"name": "conv32_down/conv/filters", "shape": [2, 2, 3, 4], "dtype": "float32",
         "quantization": {"dtype": "uint8", "scale": 0.5, "min": -3.0}},
        {"name": "conv32_down/conv/bias", "shape": [4], "dtype": "float32"},
        {"name": "fc", "shape": [4, 2], "dtype": "float32", "quantization": {"dtype": "uint8", "scale": 1.0,
                                                                               "min": 0.0}},
    ]}]
    data = filters.tobytes() + bias.tobytes() + np.arange(8, dtype=np.uint8).tobytes()
    stored = conv.convert(manifest, data)
    assert stored["conv32_down.conv.weight"].dtype == np.uint8
    assert stored["conv32_down.conv.weight"].shape == (4, 3, 2, 2)  # OIHW
    from core.nets.face_resnet import state_from_stored

    state = state_from_stored({k: torch.from_numpy(v.copy()) for k, v in stored.items()})
    w = state["conv32_down.conv.weight"].numpy()
    assert np.array_equal(w, (filters.astype(np.float64) * 0.5 - 3.0).astype(np.float32).transpose(3, 2, 0, 1))
    assert np.array_equal(state["conv32_down.conv.bias"].numpy(), bias)
    assert state["fc.weight"].shape == (2, 4)  # (out, in)
    assert state["fc.weight"][1, 0] == 1.0  # fc[in=0, out=1] = code 1
    with pytest.raises(ValueError, match="weights file"):
        conv.decode_weights(manifest, data[:-1])
    with pytest.raises(ValueError, match="covers"):
        conv.decode_weights(manifest, data + b"\0")


def test_converter_names_follow_the_torch_module() -> None:
    conv = _tool("convert_face_api")
    from core.nets.face_resnet import FaceResNet

    own = set(FaceResNet().state_dict())
    for tf_name in ("conv32_down/conv/filters", "conv64_down/conv2/scale/biases", "conv256_2/conv1/scale/weights",
                    "conv128_1/conv2/conv/bias", "fc"):
        assert conv.torch_name(tf_name) in own


def test_bundled_card_records_licence_source_and_hash() -> None:
    card = json.loads((embedders_dir() / "dlib-face-resnet.json").read_text())
    assert card["licence"] == "MIT"
    assert card["source"]["package"] == "@vladmandic/face-api@1.7.15"
    assert len(card["source"]["bin_sha256"]) == 64
    from core.images import sha256_file

    assert card["weights_sha256"] == sha256_file(embedders_dir() / "dlib-face-resnet.safetensors")


# -- the port --------------------------------------------------------------------------------------
def test_port_reproduces_face_api_on_synthetic_chips(face_api_net) -> None:
    """Descriptors from face-api itself (TF.js) for the same pixels: the port matches to float precision."""
    ref = json.loads(FIXTURE.read_text())
    tool = _tool("face_api_reference")
    cases = [c for c in ref["cases"] if c["kind"] == "pattern"]
    assert len(cases) >= 3
    x = torch.stack([torch.from_numpy(tool.pattern(c["name"])).permute(2, 0, 1).float() for c in cases])
    with torch.inference_mode():
        got = face_api_net(x).numpy()
    want = np.array([c["descriptor"] for c in cases])
    assert np.abs(got - want).max() < 2e-5


@needs_celeba
def test_port_reproduces_face_api_on_real_faces(face_api_net) -> None:
    ref = json.loads(FIXTURE.read_text())
    tool = _tool("face_api_reference")
    cases = [c for c in ref["cases"] if c["kind"] == "celeba"]
    if not cases:
        pytest.skip("the fixture was made without the CelebA data")
    chips = [tool.celeba_chip(CELEBA, c["name"]) for c in cases]
    x = torch.stack([torch.from_numpy(a.copy()).permute(2, 0, 1).float() for a in chips])
    with torch.inference_mode():
        got = face_api_net(x).numpy()
    assert np.abs(got - np.array([c["descriptor"] for c in cases])).max() < 1e-3


@needs_celeba
def test_a_face_and_its_mirror_are_closer_than_two_different_people(dlib) -> None:
    from core.data.celeba import CELEBA_BOX, read_identity_file
    from core.images import load_image, pil_to_tensor
    from core.model.faces import crop_fractional

    ids = read_identity_file(CELEBA / "identity_CelebA.txt")
    files, seen = [], set()
    for f in sorted((CELEBA / "img_align_celeba").glob("*.jpg")):
        if f.name in ids and ids[f.name] not in seen:
            seen.add(ids[f.name])
            files.append(f)
        if len(files) == 8:
            break
    frames = torch.stack([pil_to_tensor(crop_fractional(load_image(f), CELEBA_BOX, 64)) for f in files])
    e = dlib.embed_frames(frames)
    m = dlib.embed_frames(frames.flip(-1))
    mirror = np.linalg.norm(e - m, axis=1)
    other = np.linalg.norm(e[:, None] - e[None], axis=-1)
    np.fill_diagonal(other, np.inf)
    assert (mirror < other.min(1)).all(), (mirror, other.min(1))
    assert mirror.max() < 0.6 < np.median(other[np.isfinite(other)])  # dlib's same-person threshold


@needs_celeba
def test_same_identity_is_closer_than_other_identities_on_average(dlib) -> None:
    from core.data.celeba import CELEBA_BOX, read_identity_file
    from core.images import load_image, pil_to_tensor
    from core.model.faces import crop_fractional

    ids = read_identity_file(CELEBA / "identity_CelebA.txt")
    by_id: dict[str, list[str]] = {}
    for name, ident in sorted(ids.items()):
        if (CELEBA / "img_align_celeba" / name).is_file():
            by_id.setdefault(ident, []).append(name)
    pairs = [v[:2] for v in by_id.values() if len(v) >= 2][:6]
    names = [n for p in pairs for n in p]
    frames = torch.stack([pil_to_tensor(crop_fractional(load_image(CELEBA / "img_align_celeba" / n), CELEBA_BOX, 64))
                          for n in names])
    e = dlib.embed_frames(frames).reshape(len(pairs), 2, -1)
    same = np.linalg.norm(e[:, 0] - e[:, 1], axis=1)
    diff = np.linalg.norm(e[:, None, 0] - e[None, :, 1], axis=-1)[~np.eye(len(pairs), dtype=bool)]
    assert same.mean() < diff.mean()


def test_chips_put_the_eyes_where_dlib_puts_them(dlib) -> None:
    from core.search.align import dlib_chip_eyes

    (lx, ly), (rx, ry) = dlib_chip_eyes(150)
    assert abs(rx - lx - 52.9) < 0.1 and abs(ly - 47.1) < 0.1 and abs((lx + rx) / 2 - 75) < 0.6
    frame = torch.zeros(3, 64, 64)
    frame[:, 18, 19] = 1.0  # the pixel holding the canonical left eye centre (19.5, 18.6)
    chip = np.asarray(dlib.frame_chip(frame)).sum(-1)
    y, x = np.unravel_index(np.argmax(chip), chip.shape)
    assert abs(x + 0.5 - lx) < 2.5 and abs(y + 0.5 - ly) < 2.5


def test_tampered_bundled_weights_are_refused(tmp_path: Path) -> None:
    src = embedders_dir()
    shutil.copy(src / "dlib-face-resnet.json", tmp_path / "dlib-face-resnet.json")
    data = bytearray((src / "dlib-face-resnet.safetensors").read_bytes())
    data[-10] ^= 0xFF
    (tmp_path / "dlib-face-resnet.safetensors").write_bytes(bytes(data))
    with pytest.raises(EmbedderError, match="SHA-256"):
        DlibFaceEmbedder(tmp_path / "dlib-face-resnet.safetensors")
    with pytest.raises(EmbedderError, match="missing"):
        DlibFaceEmbedder(tmp_path / "nope.safetensors")
    with pytest.raises(EmbedderError, match="unknown embedder"):
        load_embedder("arcface")


def test_embeddings_are_batched_consistently(dlib) -> None:
    g = torch.Generator().manual_seed(0)
    frames = torch.rand(3, 3, 64, 64, generator=g)
    together = dlib.embed_frames(frames)
    alone = np.concatenate([dlib.embed_frames(frames[i : i + 1]) for i in range(3)])
    assert together.shape == (3, 128) and together.dtype == np.float32
    assert np.abs(together - alone).max() < 1e-4
    assert dlib(frames).shape == (3, 128)  # core.evaluation.evaluate's embedder hook


# -- facenet: never a download ----------------------------------------------------------------------
def test_facenet_without_weights_fails_fast_and_clearly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))

    def no_download(*_a, **_k):
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    import facenet_pytorch.models.inception_resnet_v1 as irv1

    monkeypatch.setattr(irv1, "download_url_to_file", no_download)
    t0 = time.perf_counter()
    with pytest.raises(EmbedderError) as err:
        FacenetEmbedder()
    assert time.perf_counter() - t0 < 2.0
    msg = str(err.value)
    assert "never downloads" in msg and "20180402-114759-vggface2.pt" in msg and "dlib-face-resnet" in msg
    assert "\n" not in msg
    with pytest.raises(EmbedderError, match="no such facenet weights file"):
        FacenetEmbedder(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(EmbedderError, match="not a readable"):
        FacenetEmbedder(tmp_path / "junk.pt")


def test_facenet_loads_weights_found_in_the_torch_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from facenet_pytorch import InceptionResnetV1

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    torch.manual_seed(0)
    state = InceptionResnetV1(pretrained=None).eval().state_dict()
    target = tmp_path / "torch" / "checkpoints" / "20180402-114759-vggface2.pt"
    target.parent.mkdir(parents=True)
    torch.save(state, target)
    emb = FacenetEmbedder()
    assert emb.path == target and len(emb.version) == 64
    e = emb.embed_frames(torch.rand(2, 3, 64, 64))
    assert e.shape == (2, 512)
    assert np.allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-4)


# -- MTCNN -------------------------------------------------------------------------------------------
def test_mtcnn_runs_here_through_the_gallery_detector() -> None:
    """facenet-pytorch's MTCNN (weights from its wheel) constructs and runs on this torch, on the CPU."""
    from core.search.face_detect import find_face, mtcnn

    net = mtcnn()
    assert next(net.parameters()).device.type == "cpu"
    rng = np.random.default_rng(0)
    im = Image.fromarray(rng.integers(0, 256, (90, 70, 3), dtype=np.uint8))
    ImageDraw.Draw(im).ellipse((15, 15, 55, 75), fill=(200, 160, 140))
    face = find_face(im)  # a blob may or may not pass as a face; it must not crash
    assert face is None or face.left_eye[0] < face.right_eye[0]


@needs_celeba
def test_mtcnn_finds_the_eyes_of_a_small_real_photo() -> None:
    from core.data.celeba import CELEBA_BOX
    from core.images import load_image
    from core.model.faces import LEFT_EYE, RIGHT_EYE
    from core.search.face_detect import find_face

    im = load_image(sorted((CELEBA / "img_align_celeba").glob("*.jpg"))[0])
    face = find_face(im)  # 89x109: enlarged before detection, landmarks mapped back
    assert face is not None and face.probability > 0.9
    x0, y0 = CELEBA_BOX[0] * im.width, CELEBA_BOX[1] * im.height
    s = 64 / ((CELEBA_BOX[2] - CELEBA_BOX[0]) * im.width)
    for (ex, ey), (cx, cy) in zip((face.left_eye, face.right_eye), (LEFT_EYE, RIGHT_EYE), strict=True):
        assert abs((ex - x0) * s - cx) < 4 and abs((ey - y0) * s - cy) < 4
