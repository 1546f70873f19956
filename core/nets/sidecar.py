"""The small networks' files: float16 safetensors weights with a JSON sidecar describing them, each
written atomically (:func:`core.fileio.atomic_write`) and read back checked. Never unpickles."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from torch import nn

from core.errors import BundleError
from core.fileio import atomic_write

Net = TypeVar("Net", bound=nn.Module)


def save_with_sidecar(model: nn.Module, path: str | Path, meta: dict[str, Any]) -> Path:
    """Write ``path`` (.safetensors, float16) and ``meta`` as its ``.json`` sidecar; returns ``path``."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in model.state_dict().items()}
    atomic_write(path, lambda tmp: save_file(state, str(tmp)))
    text = json.dumps(meta, indent=2) + "\n"
    atomic_write(path.with_suffix(".json"), lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return path


def load_with_sidecar(path: str | Path, build: Callable[[dict[str, Any]], Net], what: str) -> Net:
    """The network ``build(sidecar)`` with the weights of ``path`` (float32, eval mode); :class:`BundleError`
    naming ``what`` when either file is missing, unreadable or they do not match."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    meta_path = path.with_suffix(".json")
    if not path.is_file() or not meta_path.is_file():
        raise BundleError(f"{what} (with {meta_path.name}) not found")
    try:
        model = build(json.loads(meta_path.read_text(encoding="utf-8")))
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in load_file(str(path)).items()})
    except (SafetensorError, OSError, ValueError, TypeError, KeyError, RuntimeError) as e:
        raise BundleError(f"{what}: unreadable or does not match its JSON ({e})") from e
    return model.eval()
