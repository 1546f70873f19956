"""Training checkpoints as safetensors + JSON (no pickle), written atomically.

One ``checkpoint.safetensors`` holds the networks, the optimiser moments and the RNG states
(prefixed ``model.``, ``critic.``, ``opt_g.``, ``opt_d.``, ``rng.``); ``checkpoint.json`` holds
the step, the optimiser hyper-parameters and the SHA-256 of the tensors file, and is written
last, so an interrupted save leaves the previous checkpoint usable.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from core.errors import VarSRError
from core.fileio import atomic_write
from core.images import sha256_file

TENSORS = "checkpoint.safetensors"
META = "checkpoint.json"


def _flatten_optimizer(prefix: str, opt: torch.optim.Optimizer, out: dict[str, torch.Tensor]) -> list[dict]:
    sd = opt.state_dict()
    for idx, state in sd["state"].items():
        for k, v in state.items():
            t = v if torch.is_tensor(v) else torch.tensor(v)
            out[f"{prefix}.{idx}.{k}"] = t.detach().cpu().contiguous()
    return sd["param_groups"]


def _unflatten_optimizer(
    prefix: str, opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], groups: list[dict]
) -> None:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, v in tensors.items():
        if key.startswith(prefix + "."):
            _, idx, name = key.split(".", 2)
            state.setdefault(int(idx), {})[name] = v
    opt.load_state_dict({"state": state, "param_groups": groups})


def save_checkpoint(folder: Path, modules: dict[str, torch.nn.Module], optims: dict[str, torch.optim.Optimizer],
                    rng: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    for name, m in modules.items():
        for k, v in m.state_dict().items():
            tensors[f"{name}.{k}"] = v.detach().cpu().contiguous()
    groups = {name: _flatten_optimizer(name, o, tensors) for name, o in optims.items()}
    for k, v in rng.items():
        tensors[f"rng.{k}"] = v.detach().cpu().contiguous()
    atomic_write(folder / TENSORS, lambda p: save_file(tensors, str(p)))
    full = dict(meta, param_groups=groups, tensors_sha256=sha256_file(folder / TENSORS))
    atomic_write(folder / META, lambda p: p.write_text(json.dumps(full, indent=1), encoding="utf-8"))


def load_checkpoint(folder: Path, modules: dict[str, torch.nn.Module], optims: dict[str, torch.optim.Optimizer]
                    ) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Restore modules and optimisers in place; returns (meta, rng tensors)."""
    meta_path, tensors_path = folder / META, folder / TENSORS
    if not meta_path.is_file() or not tensors_path.is_file():
        raise VarSRError(f"{folder}: no checkpoint to resume from")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise VarSRError(f"{meta_path}: not a readable checkpoint record ({e.__class__.__name__})") from e
    if not isinstance(meta, dict) or sha256_file(tensors_path) != meta.get("tensors_sha256"):
        raise VarSRError(f"{tensors_path}: does not match {META} (interrupted or altered save)")
    try:
        tensors = load_file(str(tensors_path))
    except (SafetensorError, OSError, ValueError) as e:
        raise VarSRError(f"{tensors_path}: not a readable safetensors file ({e})") from e
    for name, m in modules.items():
        sub = {k[len(name) + 1:]: v for k, v in tensors.items() if k.startswith(name + ".")}
        m.load_state_dict(sub)
    for name, o in optims.items():
        _unflatten_optimizer(name, o, tensors, meta["param_groups"][name])
    rng = {k[4:]: v for k, v in tensors.items() if k.startswith("rng.")}
    return meta, rng
