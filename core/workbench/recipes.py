"""Typed recipes: what it takes to make each kind of candidate again, one dataclass per kind.

A candidate keeps its recipe as JSON (``Candidate.recipe``: what the case, the export manifest and
the app read); these classes write that JSON (:meth:`Recipe.to_json`) and read it back checked
(:func:`parse_recipe`). The JSON is what cases have always held, key for key and in the same order:
a kind derived from a parent (sliders, more-like-this, consistency-enforced) writes its own fields
over a copy of the parent's recipe, so :attr:`Recipe.extends` keeps the JSON a recipe's fields are
written over (the parent's, or everything recorded for a recipe read back).

:data:`RECIPE_FIELDS` and :data:`SOURCE_FIELDS` say what each field must be; the case schema checks
every recorded recipe with :func:`check_recipe`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from core.errors import RecipeError
from core.jsonchecks import ints, is_dict, is_int, is_num, is_str, num_dict, nums, strs
from core.workbench.cell_geometry import check_info as check_cells_info
from core.workbench.evidence import Point, region_from_dict


def _file_ref(v: Any) -> bool:
    """An image a recipe's source names (the evidence, a reference)."""
    return isinstance(v, dict) and all(v.get(k) is None or isinstance(v[k], str) for k in ("sha256", "path", "source"))


def _cells_info(v: Any) -> bool:
    return check_cells_info(v)


#: What each recipe field this program reads must be (``None`` is always allowed; other fields are kept as
#: they are). A recipe with any other value is refused when a case is opened, not when it is used.
RECIPE_FIELDS: dict[str, Any] = {
    "kind": is_str, "model": is_str, "weights_sha256": is_str, "domain": is_str, "parent": is_str,
    "method": is_str, "reference_sha256": is_str, "id": is_str, "seed": is_int, "index": is_int,
    "n": is_int, "chunk": is_int, "scale": is_int, "cell": is_int, "temperature": is_num,
    "attribute_scale": is_num, "consistency_l1_0_255": is_num, "lr_psnr_db": is_num, "sliders": num_dict,
    "choices": ints, "lr_size": ints, "hr_size": ints, "z": nums, "cells": lambda v: isinstance(v, list),
    "source": is_dict, "reference_alignment": is_dict, "parent_scores": is_dict, "change_0_255": is_dict,
    "clip": is_dict, "frames": lambda v: isinstance(v, list) and all(isinstance(f, dict) for f in v),
    "track": is_dict, "combine": is_dict, "result": is_dict, "classifier": is_dict, "frame": is_dict,
    "consistency_operator": is_str, "scores_operator": is_str,
}
#: The same for a recipe's ``source`` (where its input came from).
SOURCE_FIELDS: dict[str, Any] = {"evidence": _file_ref, "reference": _file_ref, "cells": _cells_info,
                                 "cell": is_int, "crop_size": ints, "notes": strs, "region": is_dict}


def check_fields(d: dict[str, Any], fields: dict[str, Any], where: str, prefix: str = "") -> None:
    for key, ok in fields.items():
        v = d.get(key)
        if v is not None and not ok(v):
            raise RecipeError(f"{prefix}{where} has an invalid '{key}' ({str(v)[:40]!r})")


def check_recipe(r: Any, where: str = "the recipe", *, prefix: str = "", cell: bool = False) -> None:
    """Refuse a recipe whose fields are not of the types this program writes (so nothing fails later);
    ``prefix`` starts each message (e.g. which file is malformed)."""
    if not isinstance(r, dict):
        raise RecipeError(f"{prefix}{where} has no recipe")
    check_fields(r, RECIPE_FIELDS, where, prefix)
    src = r.get("source")
    if src is not None:
        check_fields(src, SOURCE_FIELDS, f"{where}'s source", prefix)
        region_from_dict(src.get("region"))
    if r.get("kind") == "row" and not cell:
        cells = r.get("cells")
        if not cells or not all(isinstance(c, dict) for c in cells):
            raise RecipeError(f"{prefix}{where} is a row without its cells")
        for i, c in enumerate(cells):
            check_recipe(c, f"{where} (cell {i + 1})", prefix=prefix, cell=True)


class _Model(Protocol):
    """What a recipe reads of a model (a :class:`core.model.varsr.VarSR`)."""

    config: Any
    weights_sha256: str | None


@dataclass(frozen=True)
class ModelRef:
    """The model that made a candidate: its bundle name, weights and geometry."""

    name: str
    domain: str | None = None
    weights_sha256: str | None = None
    lr_size: list[int] | None = None
    hr_size: list[int] | None = None
    scale: int | None = None

    @staticmethod
    def of(model: _Model) -> ModelRef:
        cfg = model.config
        return ModelRef(cfg.name, cfg.domain, model.weights_sha256, list(cfg.lr_size), list(cfg.hr_size), cfg.scale)

    @staticmethod
    def from_json(d: dict[str, Any]) -> ModelRef:
        return ModelRef(str(d.get("model")), d.get("domain"), d.get("weights_sha256"), d.get("lr_size"),
                        d.get("hr_size"), d.get("scale"))

    def to_json(self) -> dict[str, Any]:
        return {"model": self.name, "domain": self.domain, "weights_sha256": self.weights_sha256,
                "lr_size": self.lr_size, "hr_size": self.hr_size, "scale": self.scale}


@dataclass
class Recipe:
    """What every recipe has: its kind and the JSON its own fields are written over."""

    KIND: ClassVar[str] = ""
    #: Fields a replay needs (checked by :meth:`from_json`).
    REQUIRED: ClassVar[tuple[str, ...]] = ()

    #: The JSON this recipe's fields are written over: the parent's recipe for a derived kind, everything
    #: recorded for a recipe read back, else nothing.
    extends: dict[str, Any] = field(default_factory=dict, kw_only=True, repr=False, compare=False)

    @property
    def model(self) -> ModelRef:
        return ModelRef.from_json(self.to_json())

    def fields(self) -> dict[str, Any]:
        """This kind's own fields, in the order they are written."""
        raise NotImplementedError

    def to_json(self) -> dict[str, Any]:
        return {**self.extends, **self.fields()}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Recipe:
        """The recipe ``d`` records, checked (:class:`RecipeError` when it is of another kind, malformed or
        lacks a field its replay needs); ``to_json()`` gives ``d`` back."""
        check_recipe(d, f"the {cls.KIND} recipe")
        if d.get("kind", "sample") != cls.KIND:
            raise RecipeError(f"a {d.get('kind')} recipe is not a {cls.KIND} recipe")
        missing = [k for k in cls.REQUIRED if d.get(k) is None]
        if missing:
            raise RecipeError(f"the {cls.KIND} recipe has no {', '.join(repr(k) for k in missing)}")
        return cls._parse(d)

    @classmethod
    def _parse(cls, d: dict[str, Any]) -> Recipe:
        raise NotImplementedError


def _present(**kw: Any) -> dict[str, Any]:
    """The keyword arguments that are not None (optional fields are written only when known)."""
    return {k: v for k, v in kw.items() if v is not None}


@dataclass
class SampleRecipe(Recipe):
    """Eq. 4: candidate ``index`` of ``n`` drawn with ``seed`` at ``temperature`` (in batches of ``chunk``)."""

    KIND: ClassVar[str] = "sample"
    REQUIRED: ClassVar[tuple[str, ...]] = ("model", "seed", "index", "temperature")
    model_ref: ModelRef
    seed: int
    index: int
    temperature: float
    n: int | None = None
    chunk: int | None = 16
    source: dict[str, Any] = field(default_factory=dict)

    def fields(self) -> dict[str, Any]:
        return {"kind": self.KIND, **self.model_ref.to_json(), "seed": self.seed, "index": self.index,
                **_present(n=self.n, chunk=self.chunk), "temperature": self.temperature, "sliders": {},
                "parent": None, "source": self.source}

    @classmethod
    def _parse(cls, d: dict[str, Any]) -> SampleRecipe:
        return cls(ModelRef.from_json(d), d["seed"], d["index"], d["temperature"], d.get("n"), d.get("chunk"),
                   d.get("source") or {}, extends=dict(d))


@dataclass
class SlidersRecipe(Recipe):
    """Fig. 4a: the parent's z moved by ``sum_k k * attribute_scale * Z_att`` over the sliders."""

    KIND: ClassVar[str] = "sliders"
    REQUIRED: ClassVar[tuple[str, ...]] = ("model", "parent")
    parent: str | None
    sliders: dict[str, float]
    attribute_scale: float | None = None

    def fields(self) -> dict[str, Any]:
        return {"kind": self.KIND, "sliders": self.sliders, **_present(attribute_scale=self.attribute_scale),
                "parent": self.parent}

    @classmethod
    def _parse(cls, d: dict[str, Any]) -> SlidersRecipe:
        return cls(d["parent"], dict(d.get("sliders") or {}), d.get("attribute_scale"), extends=dict(d))


@dataclass
class MoreLikeThisRecipe(Recipe):
    """Candidate ``index`` of ``n`` around the parent's z: ``z + temperature * sigma_L * eps`` (``seed``)."""

    KIND: ClassVar[str] = "more-like-this"
    REQUIRED: ClassVar[tuple[str, ...]] = ("model", "parent", "seed", "index", "temperature")
    parent: str | None
    seed: int
    index: int
    temperature: float
    n: int | None = None
    chunk: int | None = 16

    def fields(self) -> dict[str, Any]:
        return {"kind": self.KIND, "parent": self.parent, "seed": self.seed, "index": self.index,
                **_present(n=self.n, chunk=self.chunk), "temperature": self.temperature}

    @classmethod
    def _parse(cls, d: dict[str, Any]) -> MoreLikeThisRecipe:
        return cls(d["parent"], d["seed"], d["index"], d["temperature"], d.get("n"), d.get("chunk"),
                   extends=dict(d))


@dataclass
class ReferenceRecipe(Recipe):
    """Fig. 4b: ``G(I_L, E_H(reference))``, the reference put in the model's frame as ``alignment`` says."""

    KIND: ClassVar[str] = "reference"
    REQUIRED: ClassVar[tuple[str, ...]] = ("model", "reference_sha256")
    model_ref: ModelRef
    reference_sha256: str
    alignment: dict[str, Any] = field(default_factory=dict)
    source: dict[str, Any] = field(default_factory=dict)

    @property
    def eyes(self) -> tuple[Point, Point] | None:
        """The reference's eye centres when it was aligned by them."""
        if self.alignment.get("method") != "eyes":
            return None
        (lx, ly), (rx, ry) = self.alignment["eyes"]
        return (float(lx), float(ly)), (float(rx), float(ry))

    def fields(self) -> dict[str, Any]:
        return {"kind": self.KIND, **self.model_ref.to_json(), "reference_sha256": self.reference_sha256,
                "reference_alignment": self.alignment, "sliders": {}, "parent": None, "source": self.source}

    @classmethod
    def _parse(cls, d: dict[str, Any]) -> ReferenceRecipe:
        return cls(ModelRef.from_json(d), d["reference_sha256"], d.get("reference_alignment") or {},
                   d.get("source") or {}, extends=dict(d))


@dataclass
class RowRecipe(Recipe):
    """A whole plate or digit string: the sample ``choices[i]`` of each cell, side by side."""

    KIND: ClassVar[str] = "row"
    REQUIRED: ClassVar[tuple[str, ...]] = ("model", "cells")
    model_ref: ModelRef
    choices: list[int]
    #: Each cell's candidate as the manifest records it (its recipe with id, z and scores).
    cells: list[dict[str, Any]]
    source: dict[str, Any] = field(default_factory=dict)

    @property
    def parts(self) -> list[Recipe]:
        """Each cell's recipe, typed."""
        return [parse_recipe(c) for c in self.cells]

    def fields(self) -> dict[str, Any]:
        return {"kind": self.KIND, **self.model_ref.to_json(), "choices": self.choices, "parent": None,
                "sliders": {}, "cells": self.cells, "source": self.source}

    @classmethod
    def _parse(cls, d: dict[str, Any]) -> RowRecipe:
        return cls(ModelRef.from_json(d), list(d.get("choices") or []), list(d["cells"]), d.get("source") or {},
                   extends=dict(d))


@dataclass
class ConsistentRecipe(Recipe):
    """The parent projected onto the candidates whose degradation equals its input (``method``).

    ``operator``: the degradation it was enforced under (:mod:`core.workbench.operators`); None, and not
    written, for the box filter, as recipes have always been."""

    KIND: ClassVar[str] = "consistent"
    REQUIRED: ClassVar[tuple[str, ...]] = ("model", "parent")
    parent: str | None
    method: str
    parent_scores: dict[str, float] = field(default_factory=dict)
    change_0_255: dict[str, float] = field(default_factory=dict)
    operator: str | None = None

    def fields(self) -> dict[str, Any]:
        # written over a parent enforced under another operator too (None: the box filter)
        op = ({"consistency_operator": self.operator}
              if self.operator is not None or "consistency_operator" in self.extends else {})
        return {"kind": self.KIND, "parent": self.parent, "method": self.method,
                "parent_scores": self.parent_scores, "change_0_255": self.change_0_255, **op}

    @classmethod
    def _parse(cls, d: dict[str, Any]) -> ConsistentRecipe:
        return cls(d["parent"], str(d.get("method") or ""), dict(d.get("parent_scores") or {}),
                   dict(d.get("change_0_255") or {}), d.get("consistency_operator"), extends=dict(d))


@dataclass
class VideoPlateRecipe(Recipe):
    """Issue 16: one plate row read from several tracked frames of a clip (:mod:`core.video.plate_frames`).

    ``clip``: the clip's SHA-256, file and header; ``frames``: each used frame's index, timestamp,
    decoded-pixel SHA-256, box, seed, quality and weight; ``track``: the whole track
    (:meth:`core.video.track.Track.to_json`, dropped frames included); ``combine``: how the frames'
    per-position distributions were combined; ``result``: the combined reading and its hash."""

    KIND: ClassVar[str] = "video-plate"
    REQUIRED: ClassVar[tuple[str, ...]] = ("model", "clip", "frames", "seed", "n", "temperature")
    model_ref: ModelRef
    clip: dict[str, Any]
    frames: list[dict[str, Any]]
    seed: int
    n: int
    temperature: float
    track: dict[str, Any] = field(default_factory=dict)
    combine: dict[str, Any] = field(default_factory=dict)
    classifier: dict[str, Any] = field(default_factory=dict)
    result: dict[str, Any] = field(default_factory=dict)
    source: dict[str, Any] = field(default_factory=dict)

    def fields(self) -> dict[str, Any]:
        return {"kind": self.KIND, **self.model_ref.to_json(), "clip": self.clip, "frames": self.frames,
                "track": self.track, "seed": self.seed, "n": self.n, "temperature": self.temperature,
                "combine": self.combine, "classifier": self.classifier, "result": self.result, "parent": None,
                "sliders": {}, "source": self.source}

    @classmethod
    def _parse(cls, d: dict[str, Any]) -> VideoPlateRecipe:
        if not is_str(d["clip"].get("sha256")) or not d["frames"]:
            raise RecipeError("the video-plate recipe does not name its clip or its frames")
        for f in d["frames"]:
            if not (is_int(f.get("index")) and is_str(f.get("sha256")) and nums(f.get("box"))
                    and len(f["box"]) == 4 and is_int(f.get("seed")) and is_num(f.get("weight"))):
                raise RecipeError("a frame of the video-plate recipe lacks its index, pixel hash, box, seed or weight")
        return cls(ModelRef.from_json(d), dict(d["clip"]), [dict(f) for f in d["frames"]], d["seed"], d["n"],
                   d["temperature"], dict(d.get("track") or {}), dict(d.get("combine") or {}),
                   dict(d.get("classifier") or {}), dict(d.get("result") or {}), d.get("source") or {},
                   extends=dict(d))


@dataclass
class VideoFaceRecipe(Recipe):
    """Issue 16: candidate ``index`` of ``n`` drawn (as :class:`SampleRecipe`) from one tracked frame of a clip:
    ``frame`` names it (index, timestamp, decoded-pixel SHA-256), ``source.region`` is the analyst's region
    moved with the track to that frame, ``track`` the whole track (:mod:`core.video.face_frames`)."""

    KIND: ClassVar[str] = "video-face"
    REQUIRED: ClassVar[tuple[str, ...]] = ("model", "clip", "frame", "seed", "index", "temperature")
    model_ref: ModelRef
    clip: dict[str, Any]
    frame: dict[str, Any]
    seed: int
    index: int
    temperature: float
    n: int | None = None
    chunk: int | None = 16
    track: dict[str, Any] = field(default_factory=dict)
    source: dict[str, Any] = field(default_factory=dict)

    def fields(self) -> dict[str, Any]:
        return {"kind": self.KIND, **self.model_ref.to_json(), "clip": self.clip, "frame": self.frame,
                "track": self.track, "seed": self.seed, "index": self.index, **_present(n=self.n, chunk=self.chunk),
                "temperature": self.temperature, "sliders": {}, "parent": None, "source": self.source}

    @classmethod
    def _parse(cls, d: dict[str, Any]) -> VideoFaceRecipe:
        f = d["frame"]
        if not is_str(d["clip"].get("sha256")) or not is_int(f.get("index")) or not is_str(f.get("sha256")):
            raise RecipeError("the video-face recipe does not name its clip, frame index or pixel hash")
        if not (d.get("source") or {}).get("region"):
            raise RecipeError("the video-face recipe has no region")
        return cls(ModelRef.from_json(d), dict(d["clip"]), dict(f), d["seed"], d["index"], d["temperature"],
                   d.get("n"), d.get("chunk"), dict(d.get("track") or {}), d.get("source") or {}, extends=dict(d))


#: Every kind of recipe, by the ``kind`` its JSON records.
RECIPES: dict[str, type[Recipe]] = {c.KIND: c for c in (SampleRecipe, SlidersRecipe, MoreLikeThisRecipe,
                                                        ReferenceRecipe, RowRecipe, ConsistentRecipe,
                                                        VideoPlateRecipe, VideoFaceRecipe)}


def parse_recipe(d: dict[str, Any]) -> Recipe:
    """The typed recipe a candidate's JSON records (a missing kind is a sample, as it always was)."""
    if not isinstance(d, dict):
        raise RecipeError("the recipe is not an object")
    kind = d.get("kind", "sample")
    cls = RECIPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise RecipeError(f"unknown kind of candidate: {kind}")
    return cls.from_json(d)
