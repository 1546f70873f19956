"""Exact regeneration: rebuild candidates from a case's originals and recipes, and compare pixel by pixel.

Each candidate is replayed the way it was made: its input is cut again from the case's copy of
the original (region, alignment, cells) and prepared for the model; then the same call with the
same arguments (seed, number of candidates, batch size, temperature, slider values, reference,
parent) runs again. On the same machine and build the result must be bit-identical; elsewhere
the largest pixel difference is reported.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from core.case.recorder import Case
from core.errors import CaseError, VarSRError
from core.images import sha256_file
from core.model.varsr import VarSR
from core.workbench import session as S
from core.workbench.catalogue import ModelCache
from core.workbench.cell_geometry import CellGeometry
from core.workbench.enforce import enforce_consistency
from core.workbench.evidence import region_from_dict
from core.workbench.preprocess import prepare_lr
from core.workbench.recipes import (
    ConsistentRecipe,
    MoreLikeThisRecipe,
    Recipe,
    ReferenceRecipe,
    RowRecipe,
    SampleRecipe,
    SlidersRecipe,
    VideoFaceRecipe,
    VideoPlateRecipe,
    parse_recipe,
)


@dataclass
class RegenResult:
    """One candidate's regeneration: ``identical``, ``differs`` or ``failed``."""

    candidate: str
    kind: str
    model: str
    status: str
    max_diff_255: float | None = None
    differing_8bit: int | None = None
    detail: str = ""

    @property
    def identical(self) -> bool:
        return self.status == "identical"

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def line(self) -> str:
        if self.status == "identical":
            return "bit-identical"
        if self.status == "differs":
            why = f"; {self.detail}" if self.detail else ""
            if self.max_diff_255 is None:
                return f"differs{why}"
            return (f"differs: largest pixel difference {self.max_diff_255:.4g}/255 ({self.differing_8bit} 8-bit "
                    f"values){why}")
        return f"failed: {self.detail}"


class Regenerator:
    """Rebuilds the candidates of a case (memoised: a parent or a shared request runs once)."""

    def __init__(self, case: Case, models_root: str | Path | None = None) -> None:
        self.case = case
        self.models_root = Path(models_root) if models_root else case.session.models_root
        # the session's own cache when the models are the session's (the app loads each model once)
        same = self.models_root.resolve() == case.session.models_root.resolve()
        self._models = case.session.models if same else ModelCache(self.models_root)
        self._images: dict[str, Image.Image] = {}
        self._requests: dict[tuple, list[S.Candidate]] = {}
        self._built: dict[str, S.Candidate] = {}
        self.notes: list[str] = []

    # inputs
    def model(self, recipe: dict[str, Any]) -> VarSR:
        name = str(recipe.get("model"))
        if name not in self._models:
            path = self.models_root / name
            if "/" in name or name.startswith(".") or not path.is_dir():
                raise CaseError(f"model '{name}' is not installed (looked in {self.models_root.name}/)")
        m = self._models.load(name)
        want = recipe.get("weights_sha256")
        if want and m.weights_sha256 != want:
            note = (f"model '{name}': the installed weights ({str(m.weights_sha256)[:12]}) are not the recorded "
                    f"ones ({want[:12]})")
            if note not in self.notes:
                self.notes.append(note)
        return m

    def original(self, sha: str) -> Image.Image:
        if sha not in self._images:
            path = self.case.original_path(sha)
            if sha256_file(path) != sha:
                raise CaseError(f"the case's copy of original {sha[:12]} no longer matches its SHA-256")
            self._images[sha] = S.load_evidence(path).image  # read exactly as the app reads evidence
        return self._images[sha]

    def lr(self, source: dict[str, Any], model: VarSR) -> torch.Tensor:
        """The model's input, cut again from the original as the source describes."""
        ev = source.get("evidence") or {}
        if not ev.get("sha256"):
            raise CaseError("the recipe does not name its original")
        image = self.original(ev["sha256"])
        region = region_from_dict(source.get("region")) or S.Region.from_box(0, 0, *image.size)
        crop = S.crop_region(image, region)
        cells_info = source.get("cells") or {}
        cells = CellGeometry.from_info(cells_info).cut(crop) if cells_info else [crop]  # no bounds: equal cells
        lr, _ = prepare_lr(cells[int(source.get("cell", 0))], model.config)
        return lr

    def set_size(self, cid: str | None) -> int | None:
        for cs in self.case.session.sets:
            if cid in cs.candidate_ids:
                return len(cs.candidate_ids)
        for e in self.case.archived_sets:  # sets kept in the case's files, not in memory
            if cid in e["candidates"]:
                return len(e["candidates"])
        return None

    # candidates
    def candidate(self, cid: str) -> S.Candidate:
        """The regenerated candidate ``cid`` of the case."""
        if cid not in self._built:
            stored = self.case.session.candidates.get(cid)
            recipe = stored.recipe if stored is not None else self.case.retired.get(cid)
            if recipe is None and cid in self.case.archived_records:
                recipe = self.case.archived_records[cid]["recipe"]
            if recipe is None:
                raise CaseError(f"candidate {cid} is not in the case")
            c = self.build(recipe, cid)
            c.id = cid
            self._built[cid] = c
        return self._built[cid]

    def build(self, r: dict[str, Any], cid: str | None = None) -> S.Candidate:
        """Replay one recipe (its model first: a missing model fails every kind alike)."""
        model = self.model(r)
        recipe = parse_recipe(r)
        return REPLAYS[recipe.KIND](self, model, recipe, cid)

    def parent(self, recipe: Recipe) -> S.Candidate:
        """The regenerated parent a derived recipe names."""
        parent = getattr(recipe, "parent", None)
        if not parent:
            raise CaseError("the recipe names no parent candidate")
        return self.candidate(str(parent))

    def request(self, key: tuple, make: Callable[[], list[S.Candidate]]) -> list[S.Candidate]:
        """The candidates of one generation request, made once however many of them are rebuilt."""
        if key not in self._requests:
            self._requests[key] = make()
        return self._requests[key]


# -- replaying each kind -------------------------------------------------------------------------------------
Replay = Callable[[Regenerator, VarSR, Any, str | None], S.Candidate]


def _sample(regen: Regenerator, model: VarSR, r: SampleRecipe, cid: str | None) -> S.Candidate:
    lr = regen.lr(r.source, model)
    n = int(r.n or regen.set_size(cid) or r.index + 1)
    chunk = 16 if r.chunk is None else int(r.chunk)
    key = ("sample", r.model_ref.name, int(r.seed), n, chunk, float(r.temperature),
           hashlib.sha256(lr.numpy().tobytes()).hexdigest())
    cands = regen.request(key, lambda: S.generate_candidates(model, lr, n, int(r.seed), float(r.temperature),
                                                             chunk=chunk))
    return cands[int(r.index)]


def _sliders(regen: Regenerator, model: VarSR, r: SlidersRecipe, cid: str | None) -> S.Candidate:
    return S.derive_with_sliders(model, regen.parent(r), dict(r.sliders))


def _more_like_this(regen: Regenerator, model: VarSR, r: MoreLikeThisRecipe, cid: str | None) -> S.Candidate:
    parent = regen.parent(r)
    n = int(r.n or regen.set_size(cid) or r.index + 1)
    key = ("more", r.parent, int(r.seed), n, float(r.temperature))
    return regen.request(key, lambda: S.more_like_this(model, parent, n, int(r.seed), float(r.temperature)))[r.index]


def _reference(regen: Regenerator, model: VarSR, r: ReferenceRecipe, cid: str | None) -> S.Candidate:
    lr = regen.lr(r.source, model)
    ref = regen.original(r.reference_sha256)
    return S.reference_transfer(model, lr, ref, r.reference_sha256, eyes=r.eyes)


def _row(regen: Regenerator, model: VarSR, r: RowRecipe, cid: str | None) -> S.Candidate:
    parts = [regen.build(cell) for cell in r.cells]
    if not parts:
        raise CaseError("a row recipe without cells")
    return S.assemble_row(model, [[p] for p in parts], [0] * len(parts))


def _consistent(regen: Regenerator, model: VarSR, r: ConsistentRecipe, cid: str | None) -> S.Candidate:
    return enforce_consistency(regen.parent(r), r.operator)


def _video_plate(regen: Regenerator, model: VarSR, r: VideoPlateRecipe, cid: str | None) -> S.Candidate:
    from core.video.plate_frames import replay  # PyAV and the plate reader only when a case has a clip

    return replay(model, r, regen.case.original_path)


def _video_face(regen: Regenerator, model: VarSR, r: VideoFaceRecipe, cid: str | None) -> S.Candidate:
    from core.video.face_frames import replay

    return replay(model, r, regen.case.original_path, regen.request, regen.set_size(cid))


#: How each kind of recipe is replayed: ``(regenerator, model, recipe, candidate id) -> candidate``.
REPLAYS: dict[str, Replay] = {
    SampleRecipe.KIND: _sample, SlidersRecipe.KIND: _sliders, MoreLikeThisRecipe.KIND: _more_like_this,
    ReferenceRecipe.KIND: _reference, RowRecipe.KIND: _row, ConsistentRecipe.KIND: _consistent,
    VideoPlateRecipe.KIND: _video_plate, VideoFaceRecipe.KIND: _video_face,
}


def compare(stored: torch.Tensor, new: torch.Tensor) -> tuple[str, float | None, int | None]:
    """``(status, largest difference on the 0-255 scale, number of differing 8-bit values)``."""
    from core.images import to_uint8

    if tuple(stored.shape) != tuple(new.shape):
        return "differs", None, None
    a, b = stored.float().cpu(), new.float().cpu()
    if torch.equal(a, b):
        return "identical", 0.0, 0
    diff = float((a - b).abs().max()) * 255.0
    n8 = int((to_uint8(a) != to_uint8(b)).sum())
    return "differs", diff, n8


def verify_case(case: Case, ids: list[str] | None = None, *, models_root: str | Path | None = None,
                progress: Callable[[int, int], None] | None = None,
                cancelled: Callable[[], bool] | None = None) -> list[RegenResult]:
    """Rebuild each candidate of ``ids`` (default: the shortlist) and compare it with the case's pixels."""
    ids = list(ids) if ids is not None else [e.candidate_id for e in case.session.shortlist]
    if not ids:
        raise CaseError("the shortlist is empty: there is nothing to verify")
    regen = Regenerator(case, models_root)
    out = []
    for i, cid in enumerate(ids):
        if cancelled is not None and cancelled():
            raise S.GenerationCancelled("verification cancelled")
        stored = case.session.candidates.get(cid)
        kind = stored.kind if stored else "?"
        model = str(stored.recipe.get("model", "?")) if stored else "?"
        try:
            if stored is None:
                raise CaseError(f"candidate {cid} is not in the case")
            status, diff, n8 = compare(stored.image, regen.candidate(cid).image)
            detail = "" if status == "identical" else ("the sizes differ" if diff is None else "; ".join(regen.notes))
            out.append(RegenResult(cid, kind, model, status, diff, n8, detail))
        except (VarSRError, KeyError, ValueError, TypeError) as e:
            out.append(RegenResult(cid, kind, model, "failed", detail=str(e) or e.__class__.__name__))
        if progress is not None:
            progress(i + 1, len(ids))
    return out


def summary(results: list[RegenResult]) -> str:
    """One line: all identical, or which were not."""
    bad = [r for r in results if not r.identical]
    if not bad:
        return f"all {len(results)} candidate(s) regenerated bit-identically"
    worst = ", ".join(f"{r.candidate}: {r.line()}" for r in bad[:3])
    more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
    return f"{len(bad)} of {len(results)} candidate(s) did not regenerate bit-identically ({worst}{more})"
