"""Face search from candidates: what the CLI, the app and the benchmark call. No Qt.

Candidates are face images in the canonical frame of :mod:`core.model.faces` (the models' 64x64
outputs, or any square image framed the same way). They are embedded with the index's own
embedder, optionally thinned to a diverse pick, and ranked against the index (:mod:`core.search.rank`).
Every hit is an investigative lead, never an identification.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.data.common import image_files
from core.errors import ImageLoadError
from core.images import load_image, pil_to_tensor
from core.search.diverse import farthest_point_pick
from core.search.embedders import ChipEmbedder, load_embedder
from core.search.errors import EmbedderError, SearchError
from core.search.gallery import FaceIndex
from core.search.rank import Hit, RecordTable, hits_for, rank

#: Shown with every result.
HIT_NOTICE = ("Ranked gallery records come from synthetic candidates: investigative leads to check by other "
              "means, never an identification and never evidence.")
#: Files a candidate folder may hold that are not candidates (varsr-sample writes input_lr.png).
NOT_CANDIDATES = ("input_lr.png",)


def embedder_for_index(index: FaceIndex, weights: str | Path | None = None) -> ChipEmbedder:
    """The embedder the index was built with (the same weights, by SHA-256), or an EmbedderError."""
    name, version = index.embedder["name"], index.embedder["version"]
    emb = load_embedder(name, weights)
    if emb.version != version:
        raise EmbedderError(f"{index.folder} was built with {name} weights {version[:12]}, these are "
                            f"{emb.version[:12]}: re-index the gallery, or pass the same weights")
    return emb


def read_candidate_folder(folder: str | Path) -> tuple[list[str], torch.Tensor]:
    """Candidate names and images ``(N, 3, S, S)`` in [0, 1] from a folder.

    A ``manifest.json`` from ``varsr-sample`` lists the candidates (and the det output, ``det.png``,
    when it wrote one: det + candidates under ``min`` is the best measured query at 16x16); otherwise
    every image except ``input_lr.png`` is one. Each must be square (the canonical face frame); sizes may differ and
    are resized to the largest.
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise SearchError(f"{folder}: not a folder of candidates")
    files: list[Path] = []
    manifest = folder / "manifest.json"
    if manifest.is_file():
        try:
            m = json.loads(manifest.read_text(encoding="utf-8"))
            files = [folder / c["file"] for c in m.get("candidates", []) if isinstance(c, dict) and "file" in c]
            det = m.get("det")
            if files and isinstance(det, dict) and isinstance(det.get("file"), str):
                files.append(folder / det["file"])
        except (UnicodeDecodeError, json.JSONDecodeError, AttributeError, TypeError):
            files = []
    if not files:
        files = [f for f in image_files(folder) if f.name not in NOT_CANDIDATES]
    if not files:
        raise SearchError(f"{folder}: no candidate images")
    images = []
    for f in files:
        try:
            img = load_image(f, "RGB")
        except ImageLoadError as e:
            raise SearchError(str(e)) from e
        if img.width != img.height:
            raise SearchError(f"{f}: {img.width}x{img.height} is not a face candidate in the square canonical "
                              "frame (e.g. a 64x64 varsr-sample output)")
        images.append(img)
    side = max(im.width for im in images)
    frames = torch.stack([pil_to_tensor(im if im.width == side else im.resize((side, side))) for im in images])
    return [f.name for f in files], frames


@dataclass
class FaceSearchResult:
    """Hits plus what produced them (JSON-ready through :meth:`to_dict`)."""

    hits: list[Hit]
    candidate_ids: list[str]
    used: list[int]
    mode: str
    k: int
    index: FaceIndex
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        hits = []
        for h in self.hits:
            d = h.to_dict()
            d["candidate"] = self.candidate_ids[self.used[h.candidate]]
            d["photo"] = str(self.index.photo_path(h.row))
            entry = self.index.entries[h.row]
            d["photo_in_index"] = entry["path"]
            d["photo_sha256"] = entry["sha256"]
            d["face_found"] = entry.get("face") is not None
            del d["row"]
            hits.append(d)
        return {
            "notice": HIT_NOTICE,
            "index": str(self.index.folder),
            "index_manifest_sha256": self.index.manifest_sha256 or None,
            "embedder": self.index.embedder["name"],
            "embedder_weights_sha256": self.index.embedder["version"],
            "mode": self.mode,
            "k": self.k if self.mode == "knn" else None,
            "candidates": [self.candidate_ids[i] for i in self.used],
            "records_searched": len(set(self.index.record_ids)),
            "notes": self.notes,
            "hits": hits,
        }


def search_embeddings(index: FaceIndex, query: np.ndarray, candidate_ids: list[str], *, mode: str = "min",
                      k: int = 3, top: int = 20, diverse: int | None = None,
                      table: RecordTable | None = None) -> FaceSearchResult:
    """Rank ``index`` against candidate embeddings ``query`` ``(N, D)`` (optionally a diverse pick of them)."""
    if len(candidate_ids) != len(query):
        raise SearchError(f"{len(candidate_ids)} candidate ids for {len(query)} embeddings")
    used = list(range(len(query)))
    notes = []
    if diverse is not None and diverse < len(query):
        used = farthest_point_pick(query, diverse).indices
        notes.append(f"diverse pick: {len(used)} of {len(query)} candidates (farthest-point selection)")
    hits = rank(query[used], index.embeddings, table if table is not None else index.record_ids,
                mode=mode, k=k, top=top)
    return FaceSearchResult(hits, list(candidate_ids), used, mode, k, index, notes)


def _index_embedder(index: FaceIndex, embedder: ChipEmbedder | None) -> ChipEmbedder:
    """``embedder`` (default: the index's own), checked to be the one the index was built with."""
    embedder = embedder if embedder is not None else embedder_for_index(index)
    index.check_embedder(embedder)
    return embedder


def search_frames(index: FaceIndex, frames: torch.Tensor, candidate_ids: list[str],
                  embedder: ChipEmbedder | None = None, **kw: Any) -> FaceSearchResult:
    """Embed canonical-frame candidates ``(N, 3, H, W)`` with the index's embedder and rank."""
    if frames.ndim != 4 or len(frames) == 0:
        raise SearchError("no face candidates to search with")
    if frames.shape[1] not in (1, 3):
        raise SearchError("face candidates must be RGB or grey images")
    embedder = _index_embedder(index, embedder)
    return search_embeddings(index, embedder.embed_frames(frames), candidate_ids, **kw)


@dataclass
class DegradedQuery:
    """What the fused search needs beside the candidates: the ``-det`` output, its model, and the
    optics of the condition the probe was seen under (``sigma`` LR px; 0: the box filter alone)."""

    det_frames: torch.Tensor  # (F, 3, S, S) canonical frames: one, or one per frame of a tracked clip
    det_model: Any
    sigma: float = 0.0
    det_id: str = "det"


def search_fused(index: FaceIndex, frames: torch.Tensor, candidate_ids: list[str], query: DegradedQuery,
                 embedder: ChipEmbedder | None = None, *, top: int = 20, progress: Any = None,
                 cancelled: Any = None) -> FaceSearchResult:
    """Rank records by the fused score of :func:`core.search.degraded.fused_record_scores`: the ``-det``
    output and the candidates against the photos, and the ``-det`` output against the photos degraded
    and restored as the probe was (computed once per index, model and condition, then cached).
    Measured on held-out faces (docs/SEARCH.md): the best search at 8 and 16 px."""
    from core.search.degraded import degraded_embeddings, fused_record_scores

    if frames.ndim != 4 or len(frames) == 0:
        raise SearchError("no face candidates to search with")
    if top < 1:
        raise SearchError("top must be at least 1")
    embedder = _index_embedder(index, embedder)
    if len(index.embeddings) == 0:
        return FaceSearchResult([], list(candidate_ids), [], "fused", 0, index)
    degraded, notes = degraded_embeddings(index, query.det_model, embedder, query.sigma, progress=progress,
                                          cancelled=cancelled)
    e_c = embedder.embed_frames(frames)
    e_det = embedder.embed_frames(query.det_frames)
    table = RecordTable(index.record_ids)
    scores = fused_record_scores(e_det, e_c, index.embeddings, degraded, table)
    top = min(top, len(table))
    recs = np.lexsort((np.arange(len(scores)), scores))[:top]
    n_det = len(e_det)
    ids = [*candidate_ids, *([query.det_id] if n_det == 1 else [f"{query.det_id} {i + 1}" for i in range(n_det)])]
    hits = hits_for(np.concatenate([e_c, e_det]), index.embeddings, table, scores[recs], recs)
    outputs = "-det output" if n_det == 1 else f"-det outputs of {n_det} frames (distances averaged)"
    notes = [*notes, f"fused: {outputs} ({query.det_model.config.name}) and {len(e_c)} candidates against the "
             f"photos, and the same against the photos degraded (optics sigma {query.sigma:g} LR px) and "
             "restored by the same model; each record distance standardised, then summed"]
    return FaceSearchResult(hits, ids, list(range(len(ids))), "fused", 0, index, notes)


def degraded_query(candidates: list[Any], load_model: Any = None) -> DegradedQuery:
    """The fused search's probe from workbench or case candidates (each with ``model_name``, ``lr``,
    ``recipe`` and ``scored_under``): one model, and one input, or the frames of one tracked clip
    (``video-face`` candidates of one clip: one ``-det`` output per frame). The ``-det`` outputs come
    from the model's deterministic baseline; the optics are those of the consistency operator the
    candidates were scored under (the condition the analyst picked). ``load_model(name)``: where models
    come from (default :func:`core.load_model`; the app passes its session's). A :class:`SearchError`
    says what is missing."""
    import core
    from core.model.bundle import find_det
    from core.workbench.operators import operator

    if not candidates:
        raise SearchError("no face candidates to search with")
    first = candidates[0]
    inputs: list[torch.Tensor] = []
    for c in candidates:
        if c.model_name != first.model_name or c.lr.shape != first.lr.shape:
            raise SearchError("the fused search compares one face: these candidates come from more than one model "
                              "(search with one face's candidates, or use min / knn)")
        if not any(torch.equal(c.lr, x) for x in inputs):
            inputs.append(c.lr)
    clips = {str((c.recipe.get("clip") or {}).get("sha256")) if c.recipe.get("kind") == "video-face" else None
             for c in candidates}
    if len(inputs) > 1 and (len(clips) != 1 or None in clips):
        raise SearchError("the fused search compares one face: these candidates come from more than one input "
                          "(search with one face's candidates, or the frames of one tracked clip, or use min / knn)")
    if not first.model_name:
        raise SearchError("the fused search needs the candidates' model, and these do not record one")
    model = (load_model or core.load_model)(first.model_name)
    det = find_det(model)
    if det is None:
        raise SearchError(f"the fused search needs {first.model_name}'s deterministic baseline "
                          f"({first.model_name}-det), which is not installed")
    with torch.inference_mode():
        det_frames = det.generate(torch.stack(inputs).float(), None).float().clamp(0, 1)
    return DegradedQuery(det_frames, det, operator(first.scored_under).sigma, f"{det.config.name} output")
