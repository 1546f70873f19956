"""The investigator's session: evidence, region of interest, candidates, shortlist. No Qt here.

The app's widgets observe a :class:`Session` through plain-Python :class:`Event` callbacks; heavy
work (model loading, sampling) is done by the pure functions below, which the app runs in
worker threads and whose results it hands back to the session (napari's model/view split).

Every candidate is a synthetic, plausible image: an investigative lead, never evidence. Each one
carries its full recipe (model, weights, seed, index, temperature, z, slider values, parent), so
an exported lead can be regenerated and audited.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from core.bundle import list_models, models_dir, read_config
from core.config import ModelConfig
from core.errors import BundleError, ImageLoadError, VarSRError
from core.export import MARK, NOTICE, SheetTile, contact_sheet, marked_image, save_png
from core.images import open_image, pil_to_tensor, sha256_file, tensor_to_pil, to_mode
from core.model import VarSR
from core.preprocess import consistency, prepare_lr

#: The short form of the notice, shown permanently by the app.
BANNER = "Candidates are synthetic \u2014 investigative leads, not evidence."
#: The models the app knows how to use, per analyst-facing domain.
DOMAIN_MODELS: dict[str, tuple[str, ...]] = {
    "face": ("face-8", "face-16"),
    "plate": ("plate-char",),
    "digit": ("digit",),
}
#: The ``ModelConfig.domain`` each analyst-facing domain needs.
CONFIG_DOMAIN = {"face": "face", "plate": "plate-char", "digit": "digit"}
#: LR sizes of the expected bundles, used only to suggest a model when none is installed.
EXPECTED_LR_SIZE = {"face-8": (8, 8), "face-16": (16, 16), "plate-char": (2, 4), "digit": (6, 6)}
N_RANGE = (4, 256)
Point = tuple[float, float]
Progress = Callable[[int, int], None]
CancelCheck = Callable[[], bool]


class ExportError(VarSRError):
    """The shortlist could not be exported (empty, or the folder exists and is not empty)."""


class GenerationCancelled(VarSRError):
    """Raised inside a generation function when its ``cancelled()`` callback turns true."""


class ExportCancelled(ExportError):
    """An export was cancelled part-way: everything it had written was removed."""


class Event:
    """A list of callbacks: ``connect(fn)``, ``disconnect(fn)``, ``emit(*args)``."""

    def __init__(self) -> None:
        self._callbacks: list[Callable[..., Any]] = []

    def connect(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        self._callbacks.append(fn)
        return fn

    def disconnect(self, fn: Callable[..., Any]) -> None:
        if fn in self._callbacks:
            self._callbacks.remove(fn)

    def emit(self, *args: Any) -> None:
        for fn in list(self._callbacks):
            fn(*args)


@dataclass
class SessionEvents:
    """What a :class:`Session` announces."""

    evidence_changed: Event = field(default_factory=Event)
    region_changed: Event = field(default_factory=Event)
    settings_changed: Event = field(default_factory=Event)
    candidates_added: Event = field(default_factory=Event)
    shortlist_changed: Event = field(default_factory=Event)
    #: ``(sets, candidates)``: the oldest sets dropped to bound memory, and the candidates freed with them.
    sets_dropped: Event = field(default_factory=Event)


# -- evidence and regions -------------------------------------------------------------------------
@dataclass
class Evidence:
    """One loaded evidence image; the file itself is only ever read."""

    image: Image.Image
    sha256: str
    path: Path | None = None
    source: str = "file"
    #: How the pixels were made from the file (format, EXIF orientation applied, frames, notes).
    load_info: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.path.name if self.path else f"{self.source} image {self.sha256[:8]}"

    @property
    def notes(self) -> list[str]:
        """What the analyst should know about how the file was read (first frame only, rotated...)."""
        return list(self.load_info.get("notes", []))

    def to_dict(self) -> dict[str, Any]:
        d = {"path": str(self.path) if self.path else None, "source": self.source,
             "sha256": self.sha256, "size": list(self.image.size)}
        if self.load_info:
            d["load"] = dict(self.load_info)
        return d


def load_evidence(path: str | Path) -> Evidence:
    """Read an image file (never written to); :class:`ImageLoadError` when unreadable.

    The EXIF orientation applied, the frame used and any conversion are recorded in ``load_info``.
    """
    path = Path(path)
    loaded = open_image(path, "RGB")
    return Evidence(image=loaded.image, sha256=sha256_file(path), path=path.resolve(), source="file",
                    load_info=loaded.info())


def evidence_from_image(image: Image.Image, source: str = "clipboard") -> Evidence:
    """Evidence from an in-memory image (a paste); its hash is that of its lossless PNG encoding."""
    image = to_mode(image, "RGB")
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return Evidence(image=image, sha256=hashlib.sha256(buf.getvalue()).hexdigest(), source=source)


@dataclass(frozen=True)
class Region:
    """How the analyst's crop is taken from the evidence (image pixel coordinates).

    ``box``: an axis-aligned rectangle ``(x0, y0, x1, y1)``; ``eyes``: the two eye centres
    (image left, image right), aligned to the face models' frame; ``quad``: four corners
    (top-left, top-right, bottom-right, bottom-left) of a tilted plate, straightened.
    """

    kind: str
    box: tuple[float, float, float, float] | None = None
    eyes: tuple[Point, Point] | None = None
    quad: tuple[Point, Point, Point, Point] | None = None

    @staticmethod
    def from_box(x0: float, y0: float, x1: float, y1: float) -> Region:
        return Region("box", box=(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)))

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"kind": self.kind}
        for key in ("box", "eyes", "quad"):
            v = getattr(self, key)
            if v is not None:
                d[key] = json.loads(json.dumps(v))
        return d


def faces_module() -> Any | None:
    """``core.faces`` when it provides eye alignment, else None (the app then says so)."""
    try:
        from core import faces
    except ImportError:
        return None
    ok = all(hasattr(faces, n) for n in ("align_by_eyes", "native_frame_size", "canonical_box_for_eyes"))
    return faces if ok else None


#: A straightened quad may be at most this many times the image's longer side in either direction.
MAX_REGION_FACTOR = 4


def region_notes(image: Image.Image, region: Region) -> list[str]:
    """Check ``region`` against ``image``: :class:`VarSRError` when it cannot be cropped (invalid
    coordinates, empty, wholly outside the image, absurdly large); else notes for the analyst
    (e.g. a region reaching past the image's edge)."""
    w, h = image.size
    pts: list[Point] = []
    if region.kind == "box" and region.box:
        x0, y0, x1, y1 = region.box
        pts = [(x0, y0), (x1, y1)]
    elif region.kind == "eyes" and region.eyes:
        pts = list(region.eyes)
    elif region.kind == "quad" and region.quad:
        pts = list(region.quad)
    else:
        raise VarSRError(f"incomplete region: {region.kind}")
    try:
        coords = [float(v) for p in pts for v in p]
    except (TypeError, ValueError) as e:
        raise VarSRError(f"the {region.kind} region has invalid coordinates") from e
    if len(coords) != 2 * len(pts) or not all(math.isfinite(v) for v in coords):
        raise VarSRError(f"the {region.kind} region has invalid coordinates (not finite numbers)")
    xs, ys = coords[0::2], coords[1::2]
    if max(xs) <= 0 or max(ys) <= 0 or min(xs) >= w or min(ys) >= h:
        raise VarSRError("the selected region is empty or outside the image")
    inside = min(xs) >= 0 and min(ys) >= 0 and max(xs) <= w and max(ys) <= h
    if region.kind == "eyes":
        if not inside:
            raise VarSRError("both eyes must lie inside the image: place the eye markers on the face")
        if math.dist(*region.eyes) < 1:
            raise VarSRError("the two eye markers are on the same spot: place one on each eye")
        return []
    if region.kind == "quad":
        side = MAX_REGION_FACTOR * max(w, h)
        if max(xs) - min(xs) > side or max(ys) - min(ys) > side:
            raise VarSRError(f"the region is far larger than the image ({w}x{h}): draw it around the plate")
        return [] if inside else ["part of the region lies outside the image: that part is filled with black"]
    if not inside:
        return ["the region reaches past the image's edge: it is clipped to the image"]
    return []


def crop_region(image: Image.Image, region: Region) -> Image.Image:
    """The analyst's crop at the evidence's own resolution (see :func:`region_notes` for what is refused)."""
    region_notes(image, region)
    if region.kind == "box" and region.box:
        x0, y0, x1, y1 = (round(v) for v in region.box)
        x0, y0 = max(0, x0), max(0, y0)
        x1, y1 = min(image.width, x1), min(image.height, y1)
        if x1 - x0 < 1 or y1 - y0 < 1:
            raise VarSRError("the selected region is empty or outside the image")
        return image.crop((x0, y0, x1, y1))
    if region.kind == "eyes" and region.eyes:
        faces = faces_module()
        if faces is None:
            raise VarSRError("eye alignment needs core.faces (not installed): select the face with a box")
        left, right = region.eyes
        return faces.align_by_eyes(image, left, right, faces.native_frame_size(left, right))
    if region.kind == "quad" and region.quad:
        tl, tr, br, bl = region.quad
        w = max(1, round((math.dist(tl, tr) + math.dist(bl, br)) / 2))
        h = max(1, round((math.dist(tl, bl) + math.dist(tr, br)) / 2))
        data = (*tl, *bl, *br, *tr)  # PIL's QUAD order: upper-left, lower-left, lower-right, upper-right
        return image.transform((w, h), Image.Transform.QUAD, data, resample=Image.Resampling.BILINEAR)
    raise VarSRError(f"incomplete region: {region.kind}")


def equal_cells(n: int) -> list[float]:
    """Interior boundaries (fractions of the width) of ``n`` equal cells."""
    return [i / n for i in range(1, n)]


def split_cells(crop: Image.Image, bounds: list[float]) -> list[Image.Image]:
    """Cut a crop into a row of cells at the interior boundaries ``bounds`` (fractions of its width)."""
    edges = [0.0, *sorted(min(1.0, max(0.0, b)) for b in bounds), 1.0]
    cells = []
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        x0, x1 = round(a * crop.width), round(b * crop.width)
        if x1 - x0 < 1:
            raise VarSRError("a character cell is narrower than one pixel: move its boundaries apart")
        cells.append(crop.crop((x0, 0, x1, crop.height)))
    return cells


_ASPECT_NOTE = re.compile(r"crop aspect (\d+x\d+) differs from the model's (\d+x\d+): it is stretched")


def merge_cell_notes(notes: list[str]) -> list[str]:
    """One line for the aspect notes of a row of cells, instead of one per distinct cell size."""
    sizes, model, out = [], "", []
    for n in notes:
        m = _ASPECT_NOTE.fullmatch(n)
        if m is None:
            out.append(n)
        else:
            sizes.append(m.group(1))
            model = m.group(2)
    if len(sizes) > 1:
        out.insert(0, f"cell aspects {', '.join(sizes)} differ from the model's {model}: they are stretched "
                      "(drag the cell boundaries, or check the number of characters)")
    elif sizes:
        out.insert(0, f"cell aspect {sizes[0]} differs from the model's {model}: it is stretched")
    return out


# -- models ----------------------------------------------------------------------------------------
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
    shown = _display_path(root)
    return [f"No model '{n}' installed: {shown}/{n} (see README)"
            for names in DOMAIN_MODELS.values() for n in names if n not in have]


def _display_path(p: Path) -> str:
    """``p`` relative to the repository (or the working folder) when inside it."""
    full = Path(p).resolve()
    for base in (models_dir().parents[1], Path.cwd()):
        try:
            return str(full.relative_to(base.resolve()))
        except ValueError:
            continue
    return str(p)


def suggest_model(domain: str, crop_size: tuple[int, int], installed: dict[str, ModelConfig]) -> str:
    """The model whose LR input is closest (in scale) to the crop; installed ones first."""
    want = CONFIG_DOMAIN[domain]
    sizes = {n: c.lr_size for n, c in installed.items() if c.domain == want}
    if not sizes:
        sizes = {n: EXPECTED_LR_SIZE[n] for n in DOMAIN_MODELS[domain]}
    side = max(1, max(crop_size))
    return min(sizes, key=lambda n: (abs(math.log(side / max(sizes[n]))), n))


# -- candidates ------------------------------------------------------------------------------------
@dataclass
class Candidate:
    """One synthetic candidate with what it takes to regenerate it (``recipe``, JSON-ready)."""

    image: torch.Tensor
    lr: torch.Tensor
    z: torch.Tensor | None
    recipe: dict[str, Any]
    l1: float
    lr_psnr: float
    id: str = ""
    parts: list[Candidate] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return str(self.recipe.get("kind", "sample"))

    @property
    def scores(self) -> str:
        return f"L1 {self.l1:.2f} \u00b7 {self.lr_psnr:.1f} dB"

    def recipe_json(self) -> dict[str, Any]:
        """The recipe with z and the consistency scores, for the manifest."""
        d = dict(self.recipe)
        d["id"] = self.id
        d["z"] = [round(float(v), 6) for v in self.z] if self.z is not None else None
        d["consistency_l1_0_255"] = round(self.l1, 4)
        d["lr_psnr_db"] = round(self.lr_psnr, 3)
        return d


@dataclass
class CandidateSet:
    """Candidates generated together (one grid section)."""

    id: str
    title: str
    candidate_ids: list[str]


def _base_recipe(model: VarSR, kind: str, **kw: Any) -> dict[str, Any]:
    cfg = model.config
    d: dict[str, Any] = {"kind": kind, "model": cfg.name, "domain": cfg.domain,
                         "weights_sha256": model.weights_sha256, "lr_size": list(cfg.lr_size),
                         "hr_size": list(cfg.hr_size), "scale": cfg.scale}
    d.update(kw)
    return d


def _scored(model: VarSR, images: torch.Tensor, lr: torch.Tensor, zs: list[torch.Tensor | None],
            recipes: list[dict[str, Any]]) -> list[Candidate]:
    l1, psnr = consistency(images, lr, model.config.scale)
    images = images.detach().cpu()
    # each candidate owns its pixels: a view would keep the whole batch alive as long as any one
    # candidate of it is (a starred one, say) after the session has let the others go
    return [Candidate(image=images[i].clone(), lr=lr.cpu(), z=zs[i], recipe=recipes[i], l1=float(l1[i]),
                      lr_psnr=float(psnr[i])) for i in range(images.shape[0])]


def _generate_chunked(model: VarSR, lr: torch.Tensor, z: torch.Tensor | None, n: int, chunk: int,
                      progress: Progress | None, cancelled: CancelCheck | None) -> torch.Tensor:
    outs = []
    for start in range(0, n, chunk):
        if cancelled and cancelled():
            raise GenerationCancelled("generation cancelled")
        stop = min(n, start + chunk)
        x = lr[None].expand(stop - start, *lr.shape).contiguous()
        outs.append(model.generate(x, z[start:stop] if z is not None else None))
        if progress:
            progress(stop, n)
    return torch.cat(outs)


def generate_candidates(model: VarSR, lr: torch.Tensor, n: int = 16, seed: int = 0, temperature: float = 1.0,
                        *, source: dict[str, Any] | None = None, progress: Progress | None = None,
                        cancelled: CancelCheck | None = None, chunk: int = 16) -> list[Candidate]:
    """Eq. 4: ``n`` candidates ``G(I_L, z_i)``, ``z_i ~ N(mu, (temperature * sigma)^2)``; reproducible.

    A deterministic model (``latent_dim == 0``) gives one candidate.
    """
    if not N_RANGE[0] <= n <= N_RANGE[1]:
        raise VarSRError(f"the number of candidates must be {N_RANGE[0]} to {N_RANGE[1]}, not {n}")
    deterministic = model.config.latent_dim == 0
    if deterministic:
        n = 1
    z = None if deterministic else model.latents(lr[None], n, seed, temperature)[0].float()
    images = _generate_chunked(model, lr, z, n, chunk, progress, cancelled)
    recipes = [_base_recipe(model, "sample", seed=int(seed), index=i, n=int(n), chunk=int(chunk),
                            temperature=float(temperature), sliders={}, parent=None, source=source or {})
               for i in range(n)]
    zs = [z[i] if z is not None else None for i in range(n)]
    return _scored(model, images, lr, zs, recipes)


def attribute_offset(model: VarSR, sliders: dict[str, float]) -> torch.Tensor:
    """``sum_k k * s * Z_att`` over the sliders (Fig. 4a: ``z_k = z + k s Z_att``)."""
    off = torch.zeros(model.config.latent_dim)
    for key, k in sliders.items():
        if key not in model.attributes:
            raise VarSRError(f"model '{model.config.name}' has no attribute direction '{key}'")
        off += float(k) * float(model.config.attribute_scale) * model.attributes[key].float().cpu()
    return off


def derive_with_sliders(model: VarSR, base: Candidate, sliders: dict[str, float]) -> Candidate:
    """``G(I_L, z + sum_k k s Z_att)`` for a candidate; the slider values go into the recipe."""
    if base.z is None or model.config.latent_dim == 0:
        raise VarSRError("this candidate has no latent code to steer")
    sliders = {k: float(v) for k, v in sliders.items() if v}
    z = (base.z.float() + attribute_offset(model, sliders))[None]
    img = model.generate(base.lr[None], z)
    recipe = {**base.recipe, "kind": "sliders", "sliders": sliders,
              "attribute_scale": float(model.config.attribute_scale), "parent": base.id or None}
    return _scored(model, img, base.lr, [z[0]], [recipe])[0]


def more_like_this(model: VarSR, base: Candidate, n: int = 16, seed: int = 0, temperature: float = 0.3,
                   *, progress: Progress | None = None,
                   cancelled: CancelCheck | None = None) -> list[Candidate]:
    """``n`` candidates around ``base``'s z: ``z_i = z + temperature * sigma_L * eps_i``."""
    if base.z is None or model.config.latent_dim == 0:
        raise VarSRError("this candidate has no latent code to sample around")
    with torch.inference_mode():
        _, logvar = model.encode_lr(base.lr[None].float())
    std = torch.exp(0.5 * logvar.float())[0].cpu()
    g = torch.Generator().manual_seed(int(seed))
    eps = torch.randn(n, model.config.latent_dim, generator=g)
    z = base.z.float()[None] + float(temperature) * std[None] * eps
    images = _generate_chunked(model, base.lr, z, n, 16, progress, cancelled)
    recipes = [{**base.recipe, "kind": "more-like-this", "parent": base.id or None, "seed": int(seed),
                "index": i, "n": int(n), "chunk": 16, "temperature": float(temperature)} for i in range(n)]
    return _scored(model, images, base.lr, [z[i] for i in range(n)], recipes)


def align_reference(reference: Image.Image, cfg: ModelConfig,
                    eyes: tuple[Point, Point] | None = None) -> tuple[Image.Image, dict[str, Any]]:
    """The reference in the model's HR frame, and how it was put there (recorded in the recipe).

    Faces with ``eyes`` (image left, image right, e.g. MTCNN's landmarks): rotated, scaled and
    shifted so the eyes land where the face models were trained to expect them
    (:func:`core.faces.align_by_eyes`). Faces without: the centre square, resized (a poor fit
    unless the photo is already framed like the training faces). Other domains: resized.
    """
    ref = to_mode(reference, "L" if cfg.channels == 1 else "RGB")
    w, h = cfg.hr_size
    faces = faces_module()
    if cfg.domain == "face" and eyes is not None and faces is not None:
        left, right = sorted(((float(eyes[0][0]), float(eyes[0][1])), (float(eyes[1][0]), float(eyes[1][1]))))
        out = faces.align_by_eyes(ref, left, right, faces.FRAME)
        if out.size != (w, h):
            out = out.resize((w, h), Image.Resampling.LANCZOS)
        return out, {"method": "eyes", "eyes": [[float(v) for v in left], [float(v) for v in right]],  # exact: replayed
                     "reference_size": list(reference.size)}
    if ref.size == (w, h):
        return ref, {"method": "as given", "reference_size": list(reference.size)}
    if cfg.domain == "face":
        side = min(ref.width, ref.height * w / h)
        cw, ch = side, side * h / w
        x0, y0 = (ref.width - cw) / 2, (ref.height - ch) / 2
        out = ref.resize((w, h), Image.Resampling.LANCZOS, box=(x0, y0, x0 + cw, y0 + ch))
        return out, {"method": "centre", "reference_size": list(reference.size)}
    return ref.resize((w, h), Image.Resampling.LANCZOS), {"method": "resize",
                                                          "reference_size": list(reference.size)}


def reference_transfer(model: VarSR, lr: torch.Tensor, reference: Image.Image, reference_sha256: str,
                       *, source: dict[str, Any] | None = None,
                       eyes: tuple[Point, Point] | None = None) -> Candidate:
    """Fig. 4b: ``G(I_L, E_H(reference))``, the reference first put in the model's HR frame
    (:func:`align_reference`: by its eyes when given, else the centre)."""
    if model.config.latent_dim == 0:
        raise VarSRError("a deterministic model has no latent code for a reference")
    ref, how = align_reference(reference, model.config, eyes)
    with torch.inference_mode():
        mu, _ = model.encode_hr(pil_to_tensor(ref)[None])
    z = mu.float().cpu()
    img = model.generate(lr[None], z)
    recipe = _base_recipe(model, "reference", reference_sha256=reference_sha256, reference_alignment=how,
                          sliders={}, parent=None, source=source or {})
    return _scored(model, img, lr, [z[0]], [recipe])[0]


def generate_cells(model: VarSR, cell_lrs: list[torch.Tensor], n: int, seed: int, temperature: float,
                   *, source: dict[str, Any] | None = None, progress: Progress | None = None,
                   cancelled: CancelCheck | None = None) -> list[list[Candidate]]:
    """``n`` candidates per character cell; cell ``i`` uses seed ``seed + i``."""
    out = []
    total = len(cell_lrs)
    for i, lr in enumerate(cell_lrs):
        cell_source = {**(source or {}), "cell": i}
        out.append(generate_candidates(model, lr, n, seed + i, temperature, source=cell_source,
                                       cancelled=cancelled))
        if progress:
            progress(i + 1, total)
    return out


def assemble_row(model: VarSR, cells: list[list[Candidate]], choices: list[int]) -> Candidate:
    """One whole plate (or digit string): the chosen sample of each cell, side by side."""
    parts = [cells[i][c] for i, c in enumerate(choices)]
    image = torch.cat([p.image for p in parts], dim=2)
    lr = torch.cat([p.lr for p in parts], dim=2)
    recipe = _base_recipe(model, "row", choices=list(choices), parent=None, sliders={},
                          cells=[p.recipe_json() for p in parts],
                          source={k: v for k, v in parts[0].recipe.get("source", {}).items() if k != "cell"})
    c = _scored(model, image[None], lr, [None], [recipe])[0]
    c.parts = parts
    return c


# -- the session -----------------------------------------------------------------------------------
@dataclass
class ShortlistEntry:
    candidate_id: str
    note: str = ""


#: A session keeps at most this many candidates in its sets; the oldest sets beyond it are dropped
#: (starred candidates are always kept), so an hours-long session's memory stays bounded.
MAX_CANDIDATES = 1024


class Session:
    """Everything an investigator has open, observed through :attr:`events`.

    The candidate history is bounded: once the sets hold more than :attr:`max_candidates`
    candidates, the oldest sets are dropped (announced by ``events.sets_dropped``); starred
    candidates stay in :attr:`candidates` for the shortlist and export.
    """

    def __init__(self, models_root: str | Path | None = None, max_candidates: int = MAX_CANDIDATES) -> None:
        self.models_root = Path(models_root) if models_root else models_dir()
        self.events = SessionEvents()
        self.evidence: Evidence | None = None
        self.region: Region | None = None
        self.domain = "face"
        self.model_override: str | None = None
        self.n_cells = 1
        self.cell_bounds: list[float] = []
        self.candidates: dict[str, Candidate] = {}
        self.sets: list[CandidateSet] = []
        self.shortlist: list[ShortlistEntry] = []
        self.max_candidates = max(1, int(max_candidates))
        self.dropped_sets: list[str] = []
        self._next_candidate = 1
        self._next_set = 1
        self.installed: dict[str, ModelConfig] = {}
        self.refresh_models()

    # models
    def refresh_models(self) -> None:
        self.installed = installed_models(self.models_root)

    def missing_models(self) -> list[str]:
        return missing_model_messages(self.models_root)

    def model_path(self, name: str) -> Path:
        return self.models_root / name

    def chosen_model(self) -> str:
        """The override if set, else the model suggested for the current crop and domain."""
        if self.model_override:
            return self.model_override
        crop = self.crop_or_none()
        size = crop.size if crop else (8, 8)
        if crop and self.domain != "face" and self.n_cells > 1:
            size = (max(1, size[0] // self.n_cells), size[1])
        return suggest_model(self.domain, size, self.installed)

    # evidence and region
    def open_file(self, path: str | Path) -> Evidence:
        """Load evidence from a file; raises :class:`ImageLoadError` and leaves the session as it was."""
        ev = load_evidence(path)
        self.set_evidence(ev)
        return ev

    def set_evidence(self, ev: Evidence) -> None:
        self.evidence = ev
        self.region = None
        self.events.evidence_changed.emit(ev)
        self.events.region_changed.emit(None)

    def set_region(self, region: Region | None) -> None:
        self.region = region
        self.events.region_changed.emit(region)

    def set_domain(self, domain: str) -> None:
        if domain not in DOMAIN_MODELS:
            raise VarSRError(f"unknown domain {domain}")
        self.domain = domain
        self.model_override = None
        self.set_cells(1 if domain == "face" else (7 if domain == "plate" else max(1, self.n_cells)))

    def set_cells(self, n: int, bounds: list[float] | None = None) -> None:
        self.n_cells = max(1, int(n))
        self.cell_bounds = list(bounds) if bounds is not None else equal_cells(self.n_cells)
        self.events.settings_changed.emit()

    def set_model_override(self, name: str | None) -> None:
        self.model_override = name or None
        self.events.settings_changed.emit()

    def crop(self) -> Image.Image:
        if self.evidence is None:
            raise VarSRError("open an evidence image first")
        region = self.region or Region.from_box(0, 0, *self.evidence.image.size)
        return crop_region(self.evidence.image, region)

    def crop_or_none(self) -> Image.Image | None:
        try:
            return self.crop()
        except VarSRError:
            return None

    def cells(self) -> list[Image.Image]:
        """The crop as the model's inputs: one image for faces, a row of cells otherwise."""
        crop = self.crop()
        if self.domain == "face" or self.n_cells <= 1:
            return [crop]
        return split_cells(crop, self.cell_bounds)

    def prepare(self, cfg: ModelConfig) -> tuple[list[torch.Tensor], list[str]]:
        """LR tensors exactly as the model sees them, and the analyst's notes."""
        lrs: list[torch.Tensor] = []
        notes = region_notes(self.evidence.image, self.region) if self.evidence and self.region else []
        cells = self.cells()
        for cell in cells:
            lr, n = prepare_lr(cell, cfg)
            lrs.append(lr)
            notes.extend(x for x in n if x not in notes)
        return lrs, merge_cell_notes(notes) if len(cells) > 1 else notes

    def source(self) -> dict[str, Any]:
        """Where the input came from, for recipes."""
        crop = self.crop_or_none()
        return {"evidence": self.evidence.to_dict() if self.evidence else None,
                "region": self.region.to_dict() if self.region else {"kind": "whole image"},
                "crop_size": list(crop.size) if crop else None,
                "cells": {"n": self.n_cells, "bounds": [float(b) for b in self.cell_bounds]}  # exact: replayed
                if self.domain != "face" else None}

    # candidates
    def add_candidate(self, c: Candidate) -> str:
        """Register a candidate (assigning its id if it has none)."""
        if not c.id:
            c.id = f"C{self._next_candidate:04d}"
            self._next_candidate += 1
        self.candidates[c.id] = c
        return c.id

    def add_set(self, title: str, cands: list[Candidate]) -> CandidateSet:
        ids = [self.add_candidate(c) for c in cands]
        s = CandidateSet(id=f"S{self._next_set}", title=title, candidate_ids=ids)
        self._next_set += 1
        self.sets.append(s)
        self.events.candidates_added.emit(s)
        self._bound_history()
        return s

    def _bound_history(self) -> None:
        """Drop the oldest sets while the sets hold more than ``max_candidates`` (the newest always stays)."""
        total = sum(len(s.candidate_ids) for s in self.sets)
        dropped: list[CandidateSet] = []
        while len(self.sets) > 1 and total > self.max_candidates:
            old = self.sets.pop(0)
            dropped.append(old)
            total -= len(old.candidate_ids)
        if not dropped:
            return
        keep = {e.candidate_id for e in self.shortlist} | {cid for s in self.sets for cid in s.candidate_ids}
        freed = [self.candidates.pop(cid) for cid in [c for c in self.candidates if c not in keep]]
        self.dropped_sets.extend(s.id for s in dropped)
        self.events.sets_dropped.emit(dropped, freed)

    # shortlist
    def is_starred(self, cid: str) -> bool:
        return any(e.candidate_id == cid for e in self.shortlist)

    def star(self, cid: str) -> None:
        if cid not in self.candidates:
            raise VarSRError(f"no candidate {cid}")
        if not self.is_starred(cid):
            self.shortlist.append(ShortlistEntry(cid))
            self.events.shortlist_changed.emit()

    def unstar(self, cid: str) -> None:
        before = len(self.shortlist)
        self.shortlist = [e for e in self.shortlist if e.candidate_id != cid]
        if len(self.shortlist) != before:
            self.events.shortlist_changed.emit()

    def toggle_star(self, cid: str) -> bool:
        if self.is_starred(cid):
            self.unstar(cid)
            return False
        self.star(cid)
        return True

    def move(self, cid: str, index: int) -> None:
        entry = next(e for e in self.shortlist if e.candidate_id == cid)
        self.shortlist.remove(entry)
        self.shortlist.insert(max(0, min(index, len(self.shortlist))), entry)
        self.events.shortlist_changed.emit()

    def reorder(self, ids: list[str]) -> None:
        by_id = {e.candidate_id: e for e in self.shortlist}
        if sorted(ids) != sorted(by_id):
            raise VarSRError("reorder must list exactly the shortlisted candidates")
        self.shortlist = [by_id[i] for i in ids]
        self.events.shortlist_changed.emit()

    def set_note(self, cid: str, note: str) -> None:
        for e in self.shortlist:
            if e.candidate_id == cid:
                e.note = note

    def note(self, cid: str) -> str:
        return next((e.note for e in self.shortlist if e.candidate_id == cid), "")

    def export_shortlist(self, folder: str | Path, unmarked_copies: bool = False, *,
                         progress: Progress | None = None, cancelled: CancelCheck | None = None) -> Path:
        """Export the shortlist (see :func:`export_shortlist`); unmarked copies only when asked for."""
        return export_shortlist([(self.candidates[e.candidate_id], e.note) for e in self.shortlist], folder,
                                unmarked_copies=unmarked_copies, progress=progress, cancelled=cancelled)


CONTACT_SHEET = "contact_sheet.png"


def _caption(cand: Candidate, rank: int) -> str:
    r = cand.recipe
    bits = [f"{rank}. {cand.id}", str(r.get("model", "?"))]
    if r.get("seed") is not None:
        bits.append(f"seed {r['seed']}")
    if r.get("index") is not None:
        bits.append(f"index {r['index']}")
    return " \u00b7 ".join(bits)


def _detail(cand: Candidate) -> str:
    r = cand.recipe
    bits = [str(r.get("model", "?")), str(cand.kind)]
    if r.get("seed") is not None:
        bits.append(f"seed {r['seed']}")
    if r.get("index") is not None:
        bits.append(f"index {r['index']}")
    if r.get("temperature") is not None:
        bits.append(f"T {r['temperature']:g}")
    if r.get("sliders"):
        bits.append(", ".join(f"{k} {v:+.2f}" for k, v in r["sliders"].items()))
    if r.get("parent"):
        bits.append(f"from {r['parent']}")
    return " \u00b7 ".join(bits)


def export_shortlist(leads: list[tuple[Candidate, str]], folder: str | Path, unmarked_copies: bool = False,
                     *, progress: Progress | None = None, cancelled: CancelCheck | None = None) -> Path:
    """Write each lead as a marked PNG (+ the LR it came from), ``manifest.json`` and
    ``contact_sheet.png``, atomically.

    Each lead's PNG has :data:`core.export.MARK` burned into its pixels: the candidate enlarged by a
    whole factor (nearest neighbour) between two bands carrying the mark; the manifest records
    the layout (``marked``) so the raw candidate can be recovered exactly. An unmarked copy of
    each lead is written only when ``unmarked_copies`` is true (an explicit request by the
    examiner), and is then recorded per lead in the manifest with the time of the request.

    The folder must not exist or be empty: nothing is ever overwritten. Every PNG carries the
    notice in its metadata, the manifest and ``NOTICE.txt`` state it too.

    Everything is written to a hidden ``.<name>.*.partial`` folder beside the target, renamed to
    ``folder`` only once complete: a full disk, a read-only folder (``OSError``) or ``cancelled()``
    turning true (:class:`ExportCancelled`) removes it and leaves no folder that looks like an export.
    """
    if not leads:
        raise ExportError("the shortlist is empty: star candidates first")
    folder = Path(folder)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise ExportError(f"{folder} already exists and is not empty: choose a new folder "
                          "(nothing was written)")
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.", suffix=".partial"))
    try:
        entries = []
        tiles = []
        for rank, (cand, note) in enumerate(leads, start=1):
            _check_export_cancel(cancelled)
            stem = f"lead_{rank:02d}_{cand.id}_synthetic"
            recipe = cand.recipe_json()
            raw = tensor_to_pil(cand.image)
            marked, layout = marked_image(raw, _caption(cand, rank))
            meta = {"candidate": cand.id, "rank": str(rank), "recipe": json.dumps(recipe), "note": note,
                    "mark": MARK, "marked": json.dumps(layout.to_dict())}
            save_png(marked, tmp / f"{stem}.png", meta)
            save_png(cand.lr, tmp / f"{stem}_input_lr.png",
                     {"candidate": cand.id, "role": "the input exactly as the model saw it"})
            entry: dict[str, Any] = {"rank": rank, "file": f"{stem}.png", "input_lr_file": f"{stem}_input_lr.png",
                                     "note": note, "mark": MARK, "marked": layout.to_dict(), "recipe": recipe}
            if unmarked_copies:
                name = f"{stem}_UNMARKED.png"
                save_png(cand.image, tmp / name,
                         {**{k: v for k, v in meta.items() if k != "marked"},
                          "mark": "none: an unmarked copy requested by the examiner",
                          "unmarked_copy_requested_utc": now})
                entry["unmarked_copy"] = name
                entry["unmarked_copy_request"] = {"requested_by": "examiner", "requested_utc": now,
                                                  "raw_size": list(raw.size),
                                                  "why": "explicitly requested at export; the mark is absent "
                                                         "from this file only"}
            entries.append(entry)
            tiles.append(SheetTile(label=f"{rank}. {cand.id}", image=raw, input_lr=tensor_to_pil(cand.lr),
                                   scores=cand.scores, note=note, detail=_detail(cand)))
            if progress:
                progress(rank, len(leads) + 1)
        _check_export_cancel(cancelled)
        save_png(contact_sheet(tiles), tmp / CONTACT_SHEET,
                 {"role": "contact sheet of the shortlist, in order", "mark": MARK,
                  "leads": json.dumps([c.id for c, _ in leads])})
        from core import __version__

        manifest = {"notice": NOTICE, "mark": MARK, "created_utc": now,
                    "software": {"name": "VarSR Studio", "version": __version__},
                    "marking": "each lead's file has the mark burned in: the candidate enlarged by 'scale' "
                               "(nearest neighbour, pixels unchanged) between two bands carrying the mark; "
                               "see each lead's 'marked'",
                    "unmarked_copies": {"requested": bool(unmarked_copies),
                                        "requested_by": "examiner" if unmarked_copies else None,
                                        "requested_utc": now if unmarked_copies else None},
                    "contact_sheet": CONTACT_SHEET, "leads": entries}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
        (tmp / "NOTICE.txt").write_text(NOTICE + "\n" + MARK + "\n", encoding="utf-8")
        _check_export_cancel(cancelled)
        if folder.exists():
            folder.rmdir()
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if progress:
        progress(len(leads) + 1, len(leads) + 1)
    return folder


def _check_export_cancel(cancelled: CancelCheck | None) -> None:
    if cancelled and cancelled():
        raise ExportCancelled("export cancelled: nothing was exported (the partly written files were removed)")


__all__ = [
    "BANNER", "CONTACT_SHEET", "MARK", "Candidate", "CandidateSet", "Event", "Evidence", "ExportCancelled",
    "ExportError",
    "GenerationCancelled",
    "ImageLoadError", "Region", "Session", "ShortlistEntry", "align_reference", "assemble_row", "crop_region",
    "derive_with_sliders", "evidence_from_image", "export_shortlist", "generate_candidates", "generate_cells",
    "region_notes",
    "load_evidence", "more_like_this", "reference_transfer", "split_cells", "suggest_model",
]
