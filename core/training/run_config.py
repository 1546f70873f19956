"""Training run configuration: a small TOML file per domain (``core/training/configs/*.toml``) plus overrides."""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from core.errors import VarSRError
from core.model.config import ModelConfig

CONFIG_DIR = Path(__file__).resolve().parent / "configs"


@dataclass
class DataConfig:
    """Where the training images come from (roots relative to the data root)."""

    sources: list[dict[str, Any]] = field(default_factory=list)
    hflip: bool = False
    random_degradation: float = 0.0
    #: a named condition of :mod:`core.model.camera` ("ideal", "blur", "camera", "mixture"); "" keeps the
    #: older behaviour (the box filter, with ``random_degradation`` as the chance of each nuisance)
    degradation: str = ""


@dataclass
class TrainConfig:
    """Optimisation settings; defaults are the paper's (Sec. 4.2)."""

    seed: int = 0
    batch_size: int = 64
    steps: int = 20000
    adv_start: int = 12000
    decay_at: int = 16000
    lr: float = 1e-4
    lr_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.99)
    lambda_pixel: float = 1.0
    lambda_kl: float = 0.01
    #: free bits: each latent dimension's KL (averaged over the batch) below this many nats costs nothing,
    #: so the encoders keep passing information through z instead of collapsing onto the prior
    kl_free_bits: float = 0.0
    lambda_adv: float = 0.001
    #: hinged mode-seeking term (:func:`core.training.losses.diversity_hinge`) on ``diversity_share`` of the
    #: batch: two prior samples per input at least ``diversity_target`` apart (mean |pixel| difference)
    lambda_diversity: float = 0.0
    diversity_target: float = 0.03
    diversity_share: float = 0.25
    lambda_perceptual: float = 0.0
    #: best-of-K reconstruction (:func:`core.training.losses.best_of_reconstruction`) on ``best_of_share``
    #: of the batch: ``best_of_samples`` prior samples per input, only the closest (L1 + the perceptual
    #: weight x LPIPS) is pulled to the HR image; a det model gets the same term on its one output
    lambda_best_of: float = 0.0
    best_of_share: float = 0.25
    best_of_samples: int = 4
    #: best-of-K identity term (:func:`core.training.losses.identity_best_of`, the bundled face
    #: embedder's ``1 - cos`` to the HR face) on ``identity_share`` of the batch: ``identity_samples``
    #: prior samples per input (a det model: its one output), chips of ``identity_chip`` px
    lambda_identity: float = 0.0
    identity_share: float = 0.0625
    identity_samples: int = 4
    identity_chip: int = 112
    #: each step draws the chip size from ``identity_chip * (1 +- jitter)``, so the generator cannot fit
    #: what the embedder sees at one scale (at a fixed 112 px chip it did: no gain at the search's 150)
    identity_chip_jitter: float = 0.0
    gp_delta: float = 10.0
    #: lazy gradient penalty: computed every ``gp_every`` critic steps with weight ``gp_every``
    gp_every: int = 1
    log_every: int = 50
    sample_every: int = 1000
    ckpt_every: int = 500


@dataclass
class RunConfig:
    model: ModelConfig
    data: DataConfig
    train: TrainConfig

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model.to_dict(), "data": asdict(self.data), "train": asdict(self.train)}


def _build(cls, d: dict[str, Any], where: str):
    known = {f.name for f in fields(cls)}
    bad = sorted(set(d) - known)
    if bad:
        raise VarSRError(f"{where}: unknown keys {bad}")
    return cls(**d)


def load_run_config(name_or_path: str | Path, overrides: list[str] | None = None, det: bool = False) -> RunConfig:
    """Read ``core/training/configs/<name>.toml`` (or a path), apply ``section.key=value`` overrides.

    ``det=True`` turns it into the deterministic baseline: latent_dim 0, name ``<name>-det``,
    no KL term; everything else (data, steps, losses) stays the same.
    """
    path = Path(name_or_path)
    if not path.is_file():
        path = CONFIG_DIR / f"{name_or_path}.toml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in CONFIG_DIR.glob("*.toml")))
        raise VarSRError(f"no training config '{name_or_path}' (known: {known})")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise VarSRError(f"{path}: invalid TOML ({e})") from e
    for item in overrides or []:
        key, sep, value = item.partition("=")
        section, _, k = key.partition(".")
        if not sep or not k or section not in ("model", "data", "train"):
            raise VarSRError(f"override '{item}' must look like train.steps=100")
        try:
            parsed = tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError:
            parsed = value
        raw.setdefault(section, {})[k] = parsed
    model = dict(raw.get("model", {}))
    if det:
        model["latent_dim"] = 0
        model["name"] = f"{model.get('name', path.stem)}-det"
    for k in ("lr_size", "up_widths"):
        if k in model:
            model[k] = tuple(model[k])
    train = dict(raw.get("train", {}))
    if "betas" in train:
        train["betas"] = tuple(train["betas"])
    try:
        mcfg = _build(ModelConfig, model, f"{path} [model]")
        mcfg.validate()
    except TypeError as e:
        raise VarSRError(f"{path} [model]: {e}") from e
    return RunConfig(
        model=mcfg,
        data=_build(DataConfig, dict(raw.get("data", {})), f"{path} [data]"),
        train=_build(TrainConfig, train, f"{path} [train]"),
    )
