"""Model configuration: everything needed to rebuild a network from a bundle's ``config.json``."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from core.errors import BundleError

DOMAINS = ("face", "digit", "plate-char", "generic")
CONFIG_VERSION = 1


@dataclass
class ModelConfig:
    """Architecture and data contract of one VarSR (or deterministic 'det') model.

    Sizes are (width, height). ``latent_dim == 0`` makes the deterministic baseline: the same
    generator with no latent code.
    """

    name: str
    domain: str
    channels: int
    lr_size: tuple[int, int]
    scale: int
    latent_dim: int = 256
    width: int = 64
    n_res_blocks: int = 8
    up_widths: tuple[int, ...] = (64, 32, 16)
    enc_width: int = 32
    critic_width: int = 32
    logvar_bound: float = 6.0
    norm: str = "instance"
    degradation: str = "box"
    data: str = ""
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    attribute_scale: float = 1.0
    #: the default multiplier on sigma of p(z | I_L) when candidates are drawn (the app, varsr-sample,
    #: the evaluations); a model whose prior spread came out too narrow in training (face-16: the same
    #: face 16 times at 1.0) gets the smallest value that restores the spread, measured on held-out
    #: faces by tools/calibrate_temperature.py. Recipes record the temperature actually used.
    sample_temperature: float = 1.0
    version: int = CONFIG_VERSION

    @property
    def hr_size(self) -> tuple[int, int]:
        return (self.lr_size[0] * self.scale, self.lr_size[1] * self.scale)

    @property
    def deterministic(self) -> bool:
        return self.latent_dim == 0

    @property
    def n_upsample(self) -> int:
        n = self.scale.bit_length() - 1
        return n

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["hr_size"] = list(self.hr_size)
        d["lr_size"] = list(self.lr_size)
        d["up_widths"] = list(self.up_widths)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        """Validate a parsed ``config.json`` (the schema is this dataclass) and build the config."""
        if not isinstance(d, dict):
            raise BundleError("config.json must hold a JSON object")
        known = {f.name for f in fields(cls)}
        d = {k: v for k, v in d.items() if k != "hr_size"}
        unknown = sorted(set(d) - known)
        if unknown:
            raise BundleError(f"config.json has unknown keys {unknown[:5]} (a newer version?)")
        version = d.get("version", 1)
        if not _is_int(version) or version < 1:
            raise BundleError(f"config.json: version must be a positive integer, not {_short(version)}")
        if version > CONFIG_VERSION:
            raise BundleError(f"config.json version {version} is newer than this program supports "
                              f"(up to {CONFIG_VERSION}): update VarSR Studio")
        for key in ("name", "domain", "channels", "lr_size", "scale"):
            if key not in d:
                raise BundleError(f"config.json lacks the required key '{key}'")
        for key in ("lr_size", "up_widths"):
            v = d.get(key, (64, 32, 16))
            if not isinstance(v, (list, tuple)) or len(v) > 16 or not all(_is_int(x) for x in v):
                raise BundleError(f"config.json: {key} must be a short list of integers, not {_short(v)}")
        d["lr_size"] = tuple(d["lr_size"])
        d["up_widths"] = tuple(d.get("up_widths", (64, 32, 16)))
        for f in fields(cls):
            if f.name in d and f.name not in ("lr_size", "up_widths"):
                _check_type(f.name, d[f.name], f.type)
        try:
            cfg = cls(**d)
        except (TypeError, ValueError) as e:
            raise BundleError(f"config.json is malformed: {e}") from e
        cfg.validate()
        return cfg

    def validate(self) -> None:
        """Raise :class:`BundleError` unless every field is in range."""
        checks = [
            (isinstance(self.name, str) and 0 < len(self.name) <= 200, "name must be a non-empty string"),
            (self.domain in DOMAINS, f"domain must be one of {DOMAINS}"),
            (self.channels in (1, 3), "channels must be 1 or 3"),
            (len(self.lr_size) == 2 and all(1 <= v <= 256 for v in self.lr_size), "lr_size out of range"),
            (self.scale in (2, 4, 8, 16), "scale must be 2, 4, 8 or 16"),
            (0 <= self.latent_dim <= 4096, "latent_dim out of range"),
            (1 <= self.width <= 1024 and 0 <= self.n_res_blocks <= 64, "width / n_res_blocks out of range"),
            (1 <= self.enc_width <= 1024 and 1 <= self.critic_width <= 1024, "enc_width / critic_width out of range"),
            (len(self.up_widths) >= self.n_upsample, "up_widths needs one width per x2 upsampling"),
            (all(1 <= v <= 1024 for v in self.up_widths), "up_widths out of range"),
            (self.norm in ("instance", "none"), "norm must be 'instance' or 'none'"),
            (self.degradation == "box", "only the 'box' degradation is known"),
            (0 < self.logvar_bound <= 20, "logvar_bound out of range"),
            (math.isfinite(self.attribute_scale) and 0 <= self.attribute_scale <= 1000, "attribute_scale out of range"),
            (isinstance(self.sample_temperature, (int, float)) and 0 < self.sample_temperature <= 10,
             "sample_temperature out of range (0, 10]"),
        ]
        for ok, msg in checks:
            if not ok:
                raise BundleError(f"config.json: {msg}")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 40 else text[:39] + "\u2026"


_TYPES: dict[str, tuple[type, ...]] = {"str": (str,), "int": (int,), "float": (int, float),
                                       "dict[str, Any]": (dict,)}


def _check_type(name: str, value: Any, annotation: Any) -> None:
    """:class:`BundleError` unless ``value`` has the JSON type the field's annotation names."""
    want = _TYPES.get(str(annotation))
    if want is None:
        return
    ok = isinstance(value, want) and not isinstance(value, bool)
    if ok and isinstance(value, float) and not math.isfinite(value):
        ok = False
    if not ok:
        kind = "a finite number" if float in want else f"of type {want[0].__name__}"
        raise BundleError(f"config.json: {name} must be {kind}, not {_short(value)}")
