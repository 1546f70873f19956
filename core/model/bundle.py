"""Model bundles: ``model.safetensors`` + ``config.json`` (+ ``attributes.safetensors``) in one folder.

Loading never unpickles: the config is JSON validated against :class:`ModelConfig`, tensors come
from safetensors, the weights' SHA-256 must match the one recorded in the config, and every
tensor's name and shape (read from the safetensors header, before any tensor is loaded or the
network allocated) must match the network the config describes.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from core.errors import BundleError
from core.fileio import atomic_write
from core.images import sha256_file
from core.model.config import ModelConfig
from core.model.varsr import VarSR

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
ATTRIBUTES = "attributes.safetensors"
#: A config.json larger than this is refused unread (a real one is a few kB).
MAX_CONFIG_BYTES = 1 << 20


def resources_dir() -> Path:
    """The repository's ``resources/`` folder (bundled models, LPIPS weights, cards)."""
    return Path(__file__).resolve().parents[2] / "resources"


def models_dir() -> Path:
    return resources_dir() / "models"


def list_models(root: str | Path | None = None) -> list[str]:
    """Names of the bundles under ``root`` (default: the bundled ``resources/models``)."""
    root = Path(root) if root else models_dir()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / CONFIG).is_file() and (p / WEIGHTS).is_file())


def resolve(name_or_path: str | Path) -> Path:
    """A bundle folder from a bundled name or a path; :class:`BundleError` if neither exists."""
    p = Path(name_or_path)
    if p.is_dir():
        return p
    if p.name == CONFIG or p.name == WEIGHTS:
        return p.parent
    cand = models_dir() / str(name_or_path)
    if "/" not in str(name_or_path) and cand.is_dir():
        return cand
    known = ", ".join(list_models()) or "none installed"
    raise BundleError(f"no model bundle '{name_or_path}' (bundled models: {known})")


def read_config(folder: Path) -> ModelConfig:
    return _read_config(folder)[0]


def _read_config(folder: Path) -> tuple[ModelConfig, dict]:
    """The validated config and the recorded hashes (``weights_sha256``, ``attributes_sha256``)."""
    path = folder / CONFIG
    if not path.is_file():
        raise BundleError(f"{folder}: not a model bundle (no {CONFIG})")
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise BundleError(f"{path}: {path.stat().st_size} bytes is far too large for a {CONFIG}")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BundleError(f"{path}: not valid JSON ({e})") from e
    except RecursionError as e:
        raise BundleError(f"{path}: not a {CONFIG} (nested too deeply)") from e
    hashes = {}
    if isinstance(raw, dict):
        raw = dict(raw)
        hashes = {k: raw.pop(k, None) for k in ("weights_sha256", "attributes_sha256")}
        for k, v in hashes.items():
            if v is not None and not (isinstance(v, str) and len(v) == 64):
                raise BundleError(f"{path}: {k} must be a 64-character hex SHA-256")
    return ModelConfig.from_dict(raw), hashes


def load_model(name_or_path: str | Path, device: str = "cpu") -> VarSR:
    """Load a bundle by name (``face-8``) or folder path, checked, in eval mode."""
    folder = resolve(name_or_path)
    cfg, raw = _read_config(folder)
    weights = folder / WEIGHTS
    if not weights.is_file():
        raise BundleError(f"{folder}: the weights file {WEIGHTS} is missing")
    expected = raw.get("weights_sha256")
    actual = sha256_file(weights)
    if expected and actual != expected.lower():
        raise BundleError(f"{weights}: SHA-256 does not match the one recorded in {CONFIG} (altered or corrupt)")
    with torch.device("meta"):  # the shapes the config implies, without allocating the network
        own = {k: tuple(v.shape) for k, v in VarSR(cfg).state_dict().items()}
    header = _tensor_shapes(weights)
    missing = sorted(set(own) - set(header))
    extra = sorted(set(header) - set(own))
    if missing or extra:
        raise BundleError(f"{weights}: tensors do not match config.json (missing {missing[:3]}, extra {extra[:3]})")
    for k, shape in own.items():
        if header[k] != shape:
            raise BundleError(f"{weights}: tensor {k} has shape {header[k]}, config says {shape}")
    state = _load_tensors(weights)
    if any(not v.is_floating_point() for v in state.values()):
        raise BundleError(f"{weights}: every tensor must be floating point")
    model = VarSR(cfg)
    model.load_state_dict({k: v.float() for k, v in state.items()})
    attrs = folder / ATTRIBUTES
    if attrs.is_file():
        exp_a = raw.get("attributes_sha256")
        if exp_a and sha256_file(attrs) != exp_a.lower():
            raise BundleError(f"{attrs}: SHA-256 does not match the one recorded in {CONFIG}")
        for k, shape in _tensor_shapes(attrs).items():
            if shape != (cfg.latent_dim,):
                raise BundleError(f"{attrs}: direction {k} is not a {cfg.latent_dim}-vector")
        a = _load_tensors(attrs)
        model.attributes = {k: v.float() for k, v in a.items()}
    model.bundle_path = folder
    model.weights_sha256 = actual  # what the recipes record: the weights actually used
    return model.to(device).eval()



def find_det(model: VarSR) -> VarSR | None:
    """The deterministic baseline beside a bundle: ``<folder>-det`` or ``<name>-det`` next to the
    model's bundle folder, or None (also for a model that is itself deterministic)."""
    folder = model.bundle_path
    if model.config.latent_dim == 0 or folder is None:
        return None
    for name in dict.fromkeys([f"{Path(folder).name}-det", f"{model.config.name}-det"]):
        cand = Path(folder).parent / name
        if (cand / CONFIG).is_file():
            return load_model(cand)
    return None

def _tensor_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Names and shapes from a safetensors file's header only (no tensor data is read)."""
    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise BundleError(f"{path}: not a readable safetensors file ({e})") from e


def _load_tensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise BundleError(f"{path}: not a readable safetensors file ({e})") from e


def save_bundle(model: VarSR, folder: str | Path, half: bool = False) -> Path:
    """Write a bundle atomically (temporary files, then rename); returns the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: (v.half() if half and v.is_floating_point() else v).detach().cpu().contiguous()
             for k, v in model.state_dict().items()}
    atomic_write(folder / WEIGHTS, lambda p: save_file(state, str(p)))
    meta = model.config.to_dict()
    meta["weights_sha256"] = sha256_file(folder / WEIGHTS)
    if model.attributes:
        attrs = {k: v.detach().float().cpu().contiguous() for k, v in model.attributes.items()}
        atomic_write(folder / ATTRIBUTES, lambda p: save_file(attrs, str(p)))
        meta["attributes_sha256"] = sha256_file(folder / ATTRIBUTES)
    text = json.dumps(meta, indent=2, sort_keys=True) + "\n"
    atomic_write(folder / CONFIG, lambda p: p.write_text(text, encoding="utf-8"))
    return folder

