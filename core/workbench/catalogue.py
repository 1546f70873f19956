"""The model catalogue: which models serve each analyst-facing domain, which are installed, which one
suits a crop, and one cache of loaded models shared by the app and :class:`core.case.Regenerator`."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from core.errors import BundleError
from core.model.bundle import list_models, load_model, models_dir, read_config
from core.model.config import ModelConfig
from core.model.varsr import VarSR

#: The models the app knows how to use, per analyst-facing domain.
DOMAIN_MODELS: dict[str, tuple[str, ...]] = {
    "face": ("face-8", "face-12", "face-16"),
    "plate": ("plate-char", "plate-3x6", "plate-4x8"),
    "digit": ("digit",),
}
#: The ``ModelConfig.domain`` each analyst-facing domain needs.
CONFIG_DOMAIN = {"face": "face", "plate": "plate-char", "digit": "digit"}
#: LR sizes of the expected bundles, used only to suggest a model when none is installed.
EXPECTED_LR_SIZE = {"face-8": (8, 8), "face-12": (12, 12), "face-16": (16, 16), "plate-char": (2, 4),
                    "plate-3x6": (3, 6), "plate-4x8": (4, 8), "digit": (6, 6)}


def installed_models(root: Path) -> dict[str, ModelConfig]:
    """Configs of the bundles under ``root`` (unreadable ones are skipped)."""
    out = {}
    for name in list_models(root):
        try:
            out[name] = read_config(root / name)
        except BundleError:
            continue
    return out


def missing_model_messages(root: Path) -> list[str]:
    """One line per expected model that is not installed under ``root``."""
    have = set(list_models(root))
    shown = display_path(root)
    return [f"No model '{n}' installed: {shown}/{n} (see README)"
            for names in DOMAIN_MODELS.values() for n in names if n not in have]


def display_path(p: Path) -> str:
    """``p`` relative to the repository (or the working folder) when inside it."""
    full = Path(p).resolve()
    for base in (models_dir().parents[1], Path.cwd()):
        try:
            return str(full.relative_to(base.resolve()))
        except ValueError:
            continue
    return str(p)


@dataclass(frozen=True)
class Suggestion:
    """The model suggested for a crop, and why (one sentence for the analyst)."""

    name: str
    reason: str
    #: True when even this model's input is larger than the crop (the crop is enlarged).
    enlarges: bool = False


def suggest(domain: str, crop_size: tuple[int, int], installed: dict[str, ModelConfig]) -> Suggestion:
    """The model with the largest LR input that is not larger than the crop (``crop_size`` = (w, h) of the
    crop, or of one cell), so the crop is reduced to what the model sees and never enlarged; a crop
    smaller than every model's input gets the smallest model, with a note. Installed models first."""
    want = CONFIG_DOMAIN[domain]
    sizes = {n: tuple(c.lr_size) for n, c in installed.items() if c.domain == want}
    if not sizes:
        sizes = {n: EXPECTED_LR_SIZE[n] for n in DOMAIN_MODELS[domain]}
    cw, ch = max(1, crop_size[0]), max(1, crop_size[1])
    known = DOMAIN_MODELS[domain]  # of equal inputs, the app's own model (not a -det baseline) wins
    fits = [n for n, (w, h) in sizes.items() if w <= cw and h <= ch]
    if fits:
        name = min(fits, key=lambda n: (-sizes[n][0] * sizes[n][1], n not in known, n))
        w, h = sizes[name]
        bigger = sorted(n for n in sizes if n not in fits and n in known)
        why = (f"{name}: the largest model input ({w}x{h}) not larger than the crop ({cw}x{ch}), so the crop "
               "is never enlarged")
        if bigger:
            why += f"; {', '.join(bigger)} would enlarge it"
        return Suggestion(name, why + ".")
    name = min(sizes, key=lambda n: (sizes[n][0] * sizes[n][1], n not in known, n))
    w, h = sizes[name]
    return Suggestion(name, f"{name}: the crop ({cw}x{ch}) is smaller than every model's input; the smallest "
                            f"({w}x{h}) enlarges it, so the candidates rest on less detail than the model expects.",
                      enlarges=True)


def suggest_model(domain: str, crop_size: tuple[int, int], installed: dict[str, ModelConfig]) -> str:
    """The name of :func:`suggest`'s model."""
    return suggest(domain, crop_size, installed).name


class ModelCache(dict[str, VarSR]):
    """Loaded models of one models folder, by bundle name: each is loaded once (:meth:`load`, safe to
    call from a worker thread) and shared by everyone holding the cache."""

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = Path(root)
        self._lock = threading.Lock()

    def load(self, name: str) -> VarSR:
        """The model ``name`` of :attr:`root`, loaded the first time; :class:`BundleError` when it cannot be."""
        with self._lock:
            if name not in self:
                self[name] = load_model(self.root / name)
            return self[name]
