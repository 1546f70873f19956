"""Model configuration: everything needed to rebuild a network from a bundle's ``config.json``."""

from __future__ import annotations

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
            raise BundleError(f"config.json has unknown keys {unknown} (a newer version?)")
        if int(d.get("version", 1)) > CONFIG_VERSION:
            raise BundleError(f"config.json version {d['version']} is newer than this program supports")
        for key in ("name", "domain", "channels", "lr_size", "scale"):
            if key not in d:
                raise BundleError(f"config.json lacks the required key '{key}'")
        try:
            d["lr_size"] = tuple(int(v) for v in d["lr_size"])
            d["up_widths"] = tuple(int(v) for v in d.get("up_widths", (64, 32, 16)))
            cfg = cls(**d)
        except (TypeError, ValueError) as e:
            raise BundleError(f"config.json is malformed: {e}") from e
        cfg.validate()
        return cfg

    def validate(self) -> None:
        """Raise :class:`BundleError` unless every field is in range."""
        checks = [
            (self.domain in DOMAINS, f"domain must be one of {DOMAINS}"),
            (self.channels in (1, 3), "channels must be 1 or 3"),
            (len(self.lr_size) == 2 and all(1 <= v <= 256 for v in self.lr_size), "lr_size out of range"),
            (self.scale in (2, 4, 8, 16), "scale must be 2, 4, 8 or 16"),
            (0 <= self.latent_dim <= 4096, "latent_dim out of range"),
            (1 <= self.width <= 1024 and 0 <= self.n_res_blocks <= 64, "width / n_res_blocks out of range"),
            (len(self.up_widths) >= self.n_upsample, "up_widths needs one width per x2 upsampling"),
            (self.norm in ("instance", "none"), "norm must be 'instance' or 'none'"),
            (self.degradation == "box", "only the 'box' degradation is known"),
            (0 < self.logvar_bound <= 20, "logvar_bound out of range"),
        ]
        for ok, msg in checks:
            if not ok:
                raise BundleError(f"config.json: {msg}")
