"""The investigator's session: evidence, region of interest, candidates, shortlist. No Qt here.

The app's widgets observe a :class:`Session` through plain-Python :class:`Event` callbacks; heavy
work (model loading, sampling) is done by pure functions (:mod:`core.workbench.candidates`), which the app
runs in worker threads and whose results it hands back to the session (napari's model/view split).
What a session holds lives in modules by concern: :mod:`core.workbench.evidence` (evidence, regions, crops,
cells), :mod:`core.workbench.candidates` (candidates and their generation), :mod:`core.workbench.catalogue` (models),
:mod:`core.workbench.export` (the shortlist export); this module re-exports their names for its callers.

Every candidate is a synthetic, plausible image: an investigative lead, never evidence. Each one
carries its full recipe (model, weights, seed, index, temperature, z, slider values, parent), so
an exported lead can be regenerated and audited.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from core.errors import ExportCancelled, ExportError, GenerationCancelled, ImageLoadError, VarSRError
from core.model.bundle import models_dir
from core.model.config import ModelConfig
from core.model.varsr import VarSR
from core.workbench.candidates import (
    N_RANGE,
    CancelCheck,
    Candidate,
    CandidateSet,
    Progress,
    align_reference,
    assemble_row,
    attribute_offset,
    derive_with_sliders,
    generate_candidates,
    generate_cells,
    more_like_this,
    reference_transfer,
)
from core.workbench.catalogue import (
    CONFIG_DOMAIN,
    DOMAIN_MODELS,
    EXPECTED_LR_SIZE,
    ModelCache,
    Suggestion,
    installed_models,
    missing_model_messages,
    suggest,
    suggest_model,
)
from core.workbench.cell_geometry import CellGeometry
from core.workbench.evidence import (
    Evidence,
    Point,
    Region,
    crop_region,
    equal_cells,
    evidence_from_image,
    faces_module,
    load_evidence,
    merge_cell_notes,
    region_notes,
    split_cells,
)
from core.workbench.export import CONTACT_SHEET, MARK, export_shortlist
from core.workbench.operators import DEFAULT as DEFAULT_OPERATOR
from core.workbench.operators import operator as consistency_op
from core.workbench.operators import rescore
from core.workbench.preprocess import prepare_lr

#: The short form of the notice, shown permanently by the app.
BANNER = "Candidates are synthetic \u2014 investigative leads, not evidence."


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
    #: ``(candidate or None)``: the candidate the analyst selected.
    current_changed: Event = field(default_factory=Event)
    #: ``(new, old)``: the steered or re-chosen candidate shown beside the current one, not yet kept.
    preview_changed: Event = field(default_factory=Event)
    #: ``(candidates)``: candidates scored again under another consistency operator.
    scores_changed: Event = field(default_factory=Event)
    #: ``(candidate id, note, old note)``: the note on a shortlisted candidate changed.
    note_changed: Event = field(default_factory=Event)


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
        #: The analyst's model choice per domain, kept while other domains are visited.
        self.model_overrides: dict[str, str] = {}
        self.n_cells = 1
        self.cell_bounds: list[float] = []
        #: The outer cell edges and the row's polarity (see :class:`core.workbench.cell_geometry.CellGeometry`).
        self.cell_outer: tuple[float, float] = (0.0, 1.0)
        self.cell_inverted = False
        self.candidates: dict[str, Candidate] = {}
        self.sets: list[CandidateSet] = []
        self.shortlist: list[ShortlistEntry] = []
        self.max_candidates = max(1, int(max_candidates))
        #: What consistency is scored and enforced under (:mod:`core.workbench.operators`; default the box filter).
        self.consistency_operator = DEFAULT_OPERATOR
        self.dropped_sets: list[str] = []
        self._next_candidate = 1
        self._next_set = 1
        #: The candidate the analyst selected, and the derived one shown beside it but not yet kept.
        self.current: Candidate | None = None
        self.preview: Candidate | None = None
        #: Plate rows: each row's id -> the cells' candidates it was drawn from (to re-choose a cell).
        self.row_cells: dict[str, list[list[Candidate]]] = {}
        #: Shortlist exports made while no case was open (:meth:`record_export`): the next case created
        #: records them, with their times, as made before it.
        self.exports: list[dict[str, Any]] = []
        self.installed: dict[str, ModelConfig] = {}
        #: Loaded models of :attr:`models_root`, shared by the app and the case's regeneration.
        self.models = ModelCache(self.models_root)
        self.refresh_models()

    @property
    def next_candidate_number(self) -> int:
        """The number the next new candidate's id (``C0001``...) takes."""
        return self._next_candidate

    @property
    def next_set_number(self) -> int:
        """The number the next new set's id (``S1``...) takes."""
        return self._next_set

    # models
    def refresh_models(self) -> None:
        self.installed = installed_models(self.models_root)

    def missing_models(self) -> list[str]:
        return missing_model_messages(self.models_root)

    def model_path(self, name: str) -> Path:
        return self.models_root / name

    def model(self, name: str) -> VarSR:
        """The installed model ``name``, loaded once and shared (call it from a worker the first time)."""
        return self.models.load(name)

    def model_input_size(self) -> tuple[int, int]:
        """The size the model's input is cut from: the crop, or one cell of a plate or digit row."""
        crop = self.crop_or_none()
        size = crop.size if crop else (8, 8)
        if crop and self.domain != "face" and self.n_cells > 1:
            span = self.cell_outer[1] - self.cell_outer[0]
            size = (max(1, int(size[0] * span) // self.n_cells), size[1])
        return size

    def suggestion(self) -> Suggestion:
        """The model suggested for the current crop and domain, and why (:func:`core.workbench.catalogue.suggest`)."""
        return suggest(self.domain, self.model_input_size(), self.installed)

    def chosen_model(self) -> str:
        """The override if set, else the model suggested for the current crop and domain."""
        if self.model_override:
            return self.model_override
        return self.suggestion().name

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
        self.model_override = self.model_overrides.get(domain)
        self.set_cells(1 if domain == "face" else (7 if domain == "plate" else max(1, self.n_cells)))

    def set_cells(self, n: int, bounds: list[float] | None = None) -> None:
        """``n`` cells over the whole row at interior ``bounds`` (None: equal), not inverted."""
        self.n_cells = max(1, int(n))
        self.cell_bounds = list(bounds) if bounds is not None else equal_cells(self.n_cells)
        self.cell_outer, self.cell_inverted = (0.0, 1.0), False
        self.events.settings_changed.emit()

    @property
    def cell_edges(self) -> list[float]:
        """All ``n + 1`` cell edges, fractions of the row's width."""
        return list(self.cell_geometry().edges)

    def cell_geometry(self) -> CellGeometry:
        """How the row is cut: its edges and polarity."""
        return CellGeometry.from_bounds(self.n_cells, self.cell_bounds, self.cell_outer, self.cell_inverted)

    def set_cell_geometry(self, g: CellGeometry) -> None:
        """Cut the row at ``g``'s edges, inverted when ``g`` says so (dragged edges, Fit cells, undo)."""
        self.n_cells = g.n
        self.cell_bounds = g.bounds
        self.cell_outer, self.cell_inverted = g.outer, g.inverted
        self.events.settings_changed.emit()

    def set_model_override(self, name: str | None) -> None:
        """The analyst's model for the current domain (None: the suggested one); kept per domain."""
        self.model_override = name or None
        if self.model_override:
            self.model_overrides[self.domain] = self.model_override
        else:
            self.model_overrides.pop(self.domain, None)
        self.events.settings_changed.emit()

    def set_consistency_operator(self, name: str | None) -> None:
        """Score (and enforce) consistency under ``name`` (None: the box filter): every candidate held is
        scored again (``events.scores_changed``), and the setting announced (the case logs it)."""
        name = consistency_op(name).name
        if name == self.consistency_operator:
            return
        self.consistency_operator = name
        cells = [c for rows in self.row_cells.values() for cell in rows for c in cell]
        changed = rescore([*self.candidates.values(), self.current, self.preview, *cells], name)
        self.events.settings_changed.emit()
        self.events.scores_changed.emit(changed)

    def crop(self) -> Image.Image:
        """The analyst's crop (the whole image without a region); cut once per evidence and region, since a
        large frame's crop is a copy of tens of megabytes. Treat it as read-only."""
        if self.evidence is None:
            raise VarSRError("open an evidence image first")
        cached = getattr(self, "_crop_cache", None)
        if cached is not None and cached[0] is self.evidence and cached[1] == self.region:
            return cached[2]
        if self.region is None:
            crop = self.evidence.image  # the whole image: no copy (the evidence is only ever read)
        else:
            crop = crop_region(self.evidence.image, self.region)
        self._crop_cache = (self.evidence, self.region, crop)
        return crop

    def crop_or_none(self) -> Image.Image | None:
        try:
            return self.crop()
        except VarSRError:
            return None

    def cells(self) -> list[Image.Image]:
        """The crop as the model's inputs: one image for faces, a row of cells otherwise."""
        crop = self.crop()
        if self.domain == "face":
            return [crop]
        return self.cell_geometry().cut(crop)

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
                "cells": self.cell_geometry().to_info() if self.domain != "face" else None}

    # candidates
    def add_candidate(self, c: Candidate) -> str:
        """Register a candidate (assigning its id if it has none)."""
        if not c.id:
            c.id = f"C{self._next_candidate:04d}"
            self._next_candidate += 1
        rescore([c], self.consistency_operator)  # nothing to do under the box filter
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
        for c in freed:
            self.row_cells.pop(c.id, None)
        self.events.sets_dropped.emit(dropped, freed)
        if self.current is not None and self.current.id not in self.candidates:
            self.set_current(None)

    # the selection
    def set_current(self, c: Candidate | None) -> None:
        """Select a candidate (None: nothing); the preview beside it is dropped."""
        self.set_preview(None)
        self.current = c
        self.events.current_changed.emit(c)

    def set_preview(self, c: Candidate | None) -> None:
        """Show ``c`` beside the current candidate without keeping it (None: no preview)."""
        rescore([c], self.consistency_operator)
        old, self.preview = self.preview, c
        if old is not c:
            self.events.preview_changed.emit(c, old)

    def set_row_cells(self, row_ids: list[str], cells: list[list[Candidate]]) -> None:
        """Remember the cells' candidates the rows ``row_ids`` were drawn from."""
        rescore([c for cell in cells for c in cell], self.consistency_operator)
        for cid in row_ids:
            self.row_cells[cid] = cells

    def cells_of(self, cid: str | None) -> list[list[Candidate]] | None:
        """The cells a plate row was drawn from, or None."""
        return self.row_cells.get(cid) if cid is not None else None

    # restoring
    def clear(self) -> None:
        """Forget every candidate, set and the shortlist (new ids start again at ``C0001``)."""
        self.set_current(None)
        self.row_cells.clear()
        self.candidates, self.sets, self.shortlist = {}, [], []
        self.exports = []
        self._next_candidate = 1
        self.events.shortlist_changed.emit()

    def record_export(self, **details: Any) -> dict[str, Any]:
        """Remember an export made without a case (its UTC time added); the next case created records it."""
        entry = {"utc": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"), **details}
        self.exports.append(entry)
        return entry

    def restore(self, *, evidence: Evidence | None, region: Region | None, domain: str | None, n_cells: int,
                cell_bounds: list[float] | None, model_override: str | None, consistency_operator: str | None = None,
                sets: list[tuple[CandidateSet | None, list[Candidate]]], shortlist: list[ShortlistEntry],
                next_candidate: int, next_set: int, cell_edges: list[float] | None = None,
                cell_inverted: bool = False) -> None:
        """Replace everything the session holds with saved work (a case), announcing each part.

        ``sets``: each set with its candidates (None for candidates outside any set); ``consistency_operator``:
        what the candidates are scored under (None: the box filter; any recorded under another is scored again);
        ``next_candidate``
        and ``next_set``: the numbers new ids continue from (the caller keeps them past every id in use).
        """
        self.set_current(None)
        self.row_cells.clear()
        self.evidence, self.region = None, None
        self.candidates, self.sets, self.shortlist = {}, [], []
        self.exports = []
        self._next_candidate = 1
        if evidence is not None:
            self.set_evidence(evidence)
        if domain in DOMAIN_MODELS:
            self.set_domain(domain)
        self.consistency_operator = consistency_op(consistency_operator).name
        self.set_cells(n_cells, cell_bounds)
        if cell_edges or cell_inverted:
            self.set_cell_geometry(CellGeometry(tuple(cell_edges), cell_inverted) if cell_edges
                                   else CellGeometry.from_bounds(n_cells, cell_bounds, inverted=cell_inverted))
        self.set_model_override(model_override)
        self.set_region(region)
        for cs, cands in sets:
            rescore(cands, self.consistency_operator)  # before the views show them
            for c in cands:
                self.candidates[c.id] = c
            if cs is not None:
                self.sets.append(cs)
                self.events.candidates_added.emit(cs)
        self._next_candidate = next_candidate
        self._next_set = next_set
        self.shortlist = list(shortlist)
        self.events.shortlist_changed.emit()

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
        """The note on shortlisted ``cid`` (``events.note_changed`` when it changes)."""
        for e in self.shortlist:
            if e.candidate_id == cid and e.note != note:
                old, e.note = e.note, note
                self.events.note_changed.emit(cid, note, old)

    def note(self, cid: str) -> str:
        return next((e.note for e in self.shortlist if e.candidate_id == cid), "")

    def export_shortlist(self, folder: str | Path, unmarked_copies: bool = False, *,
                         progress: Progress | None = None, cancelled: CancelCheck | None = None) -> Path:
        """Export the shortlist (see :func:`export_shortlist`); unmarked copies only when asked for."""
        return export_shortlist([(self.candidates[e.candidate_id], e.note) for e in self.shortlist], folder,
                                unmarked_copies=unmarked_copies, progress=progress, cancelled=cancelled)


__all__ = [
    "BANNER", "CONFIG_DOMAIN", "CONTACT_SHEET", "DOMAIN_MODELS", "EXPECTED_LR_SIZE", "MARK", "MAX_CANDIDATES",
    "N_RANGE", "CancelCheck", "Candidate", "CandidateSet", "Event", "Evidence", "ExportCancelled", "ExportError",
    "GenerationCancelled", "ImageLoadError", "ModelCache", "Point", "Progress", "Region", "Session",
    "SessionEvents", "ShortlistEntry", "Suggestion", "align_reference", "assemble_row", "attribute_offset",
    "crop_region",
    "derive_with_sliders", "equal_cells", "evidence_from_image", "export_shortlist", "faces_module",
    "generate_candidates", "generate_cells", "installed_models", "load_evidence", "merge_cell_notes",
    "missing_model_messages", "more_like_this", "reference_transfer", "region_notes", "split_cells",
    "suggest", "suggest_model",
]
