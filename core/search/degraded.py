"""Degraded-gallery matching: compare a tiny face with gallery photos reduced the same way.

An 8 px face cannot show most of what tells people apart, and its ``-det`` restoration fills that in
with the model's best guess; compared with sharp gallery photos, that guess is matched against the
truth of every record. Here every gallery photo goes through the probe's own loss first: put into
the canonical face frame by its indexed eyes, reduced to the model's input with the condition's
nominal operator (:func:`core.model.camera.nominal_degrade`: the box filter, or Gaussian optics and
the box filter), restored by the same ``-det`` model and embedded. The probe's ``-det`` output is then
compared with those: both sides lost the same information, so only what the probe can show decides.

The fused search (:func:`fused_record_scores`) adds, per record, three standardised distances: the
``-det`` output to the record's photos, the candidates' mean distance to them, and the ``-det``
output to the record's degraded photos. Equal weights, chosen before measuring; the figures are in
docs/SEARCH.md.

The degraded embeddings depend on the model, the condition and the embedder, so they are cached
per index in ``<index>/degraded/`` (``.npy`` read with ``allow_pickle=False`` plus a JSON sidecar
that lists each row's photo SHA-256; rows whose photo is unchanged are reused).
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.fileio import atomic_write
from core.search.errors import SearchCancelled, SearchError
from core.search.gallery import Cancelled, FaceIndex, Progress
from core.search.rank import RecordTable, distances

CACHE_DIR = "degraded"
BATCH = 64


@dataclass(frozen=True)
class DegradedSpec:
    """What a set of degraded-gallery embeddings depends on."""

    det_name: str
    det_weights_sha256: str
    hr_size: tuple[int, int]
    scale: int
    sigma: float  # the condition's Gaussian optics in LR px (0: the box filter alone)
    embedder: str
    embedder_version: str

    def key(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]


def spec_for(det: Any, sigma: float, index: FaceIndex) -> DegradedSpec:
    """The spec of ``det`` (a deterministic bundle) under Gaussian optics ``sigma`` for ``index``."""
    cfg = det.config
    if cfg.latent_dim or cfg.domain != "face":
        raise SearchError(f"degraded-gallery matching needs a deterministic face model, not {cfg.name!r}")
    if sigma < 0:
        raise SearchError(f"the optics' sigma must be 0 or more, not {sigma}")
    return DegradedSpec(cfg.name, str(det.weights_sha256), (int(cfg.hr_size[0]), int(cfg.hr_size[1])),
                        int(cfg.scale), float(sigma), str(index.embedder["name"]), str(index.embedder["version"]))


def gallery_frames(index: FaceIndex, rows: list[int], size: int) -> tuple[torch.Tensor, list[int]]:
    """Gallery photos ``rows`` as ``(N, 3, size, size)`` canonical face frames, aligned by their indexed
    eyes (a photo without a detected face: the whole image, padded square), and the rows that could not
    be read any more (moved or deleted since indexing), which get no frame."""
    from PIL import Image

    from core.errors import ImageLoadError
    from core.images import load_image, pil_to_tensor
    from core.model.faces import align_by_eyes
    from core.search.align import whole_image_as_frame

    out, missing = [], []
    for r in rows:
        try:
            img = load_image(index.photo_path(r), "RGB")
        except ImageLoadError:
            missing.append(r)
            continue
        face = index.entries[r].get("face")
        if face:
            frame = align_by_eyes(img, tuple(face["left_eye"]), tuple(face["right_eye"]), size)
        else:
            frame = whole_image_as_frame(img).resize((size, size), Image.Resampling.LANCZOS)
        out.append(pil_to_tensor(frame))
    return (torch.stack(out) if out else torch.zeros(0, 3, size, size)), missing


def degrade_and_restore(frames: torch.Tensor, det: Any, sigma: float) -> torch.Tensor:
    """``frames`` (HR canonical frames) reduced by the nominal operator and restored by ``det``."""
    from core.model.camera import nominal_degrade

    lr = nominal_degrade(frames, det.config.scale, sigma)
    with torch.inference_mode():
        return det.generate(lr, None).float().clamp(0, 1)


def _cache_paths(index: FaceIndex, spec: DegradedSpec) -> tuple[Path, Path]:
    base = Path(index.folder) / CACHE_DIR / f"{spec.det_name}-{spec.key()}"
    return base.with_suffix(".npy"), base.with_suffix(".json")


def _read_cache(index: FaceIndex, spec: DegradedSpec) -> dict[str, np.ndarray]:
    """Cached embeddings by photo SHA-256 (empty when there is no usable cache)."""
    npy, meta = _cache_paths(index, spec)
    try:
        info = json.loads(meta.read_text(encoding="utf-8"))
        data = npy.read_bytes()
        if not isinstance(info, dict) or info.get("npy_sha256") != hashlib.sha256(data).hexdigest():
            return {}  # written by an interrupted update, or altered: computed again
        buf = io.BytesIO(data)  # its own line: the no-unpickling scan reads np.load's arguments up to the first ')'
        emb = np.load(buf, allow_pickle=False)
    except (OSError, ValueError):
        return {}
    shas = info.get("photo_sha256")
    same_spec = info.get("spec") == json.loads(json.dumps(asdict(spec)))  # tuples come back as lists
    if not same_spec or not isinstance(shas, list) or emb.ndim != 2 or len(emb) != len(shas):
        return {}
    return {str(s): emb[i] for i, s in enumerate(shas)}


def degraded_embeddings(index: FaceIndex, det: Any, embedder: Any, sigma: float = 0.0, *,
                        progress: Progress | None = None, cancelled: Cancelled | None = None,
                        cache: bool = True) -> tuple[np.ndarray, list[str]]:
    """``(P, D)`` embeddings of every gallery photo degraded and restored as a probe of ``det``'s input
    size would be, and notes. Rows of unchanged photos come from the index's cache; the rest are
    computed (``progress(done, todo)``; ``cancelled()`` stops with :class:`SearchCancelled`, writing
    nothing) and the cache is rewritten (a read-only index is used without one, with a note). A photo
    that cannot be read any more keeps its sharp embedding, with a note."""
    spec = spec_for(det, sigma, index)
    index.check_embedder(embedder)
    shas = [str(e["sha256"]) for e in index.entries]
    known = _read_cache(index, spec) if cache else {}
    todo = [r for r, s in enumerate(shas) if s not in known]
    notes: list[str] = []
    fresh: dict[str, np.ndarray] = {}
    missing: list[int] = []
    for start in range(0, len(todo), BATCH):
        if cancelled is not None and cancelled():
            raise SearchCancelled("degraded-gallery matching cancelled: nothing was written")
        rows = todo[start:start + BATCH]
        frames, gone = gallery_frames(index, rows, spec.hr_size[0])
        rows = [r for r in rows if r not in gone]
        missing += gone
        emb = embedder.embed_frames(degrade_and_restore(frames, det, sigma)) if rows else []
        fresh.update({shas[r]: emb[i] for i, r in enumerate(rows)})
        if progress is not None:
            progress(min(start + BATCH, len(todo)), len(todo))
    table = {**known, **fresh}
    dim = int(index.embeddings.shape[1])
    # a photo that cannot be read any more keeps its sharp embedding (and is retried next time)
    out = np.stack([table[s] if s in table else index.embeddings[r] for r, s in enumerate(shas)]).astype(
        np.float32) if shas else np.zeros((0, dim), np.float32)
    if missing:
        notes.append(f"{len(missing)} indexed photos could not be read (moved or deleted?): their sharp "
                     f"embedding stands in, e.g. {index.photo_path(missing[0])}; re-index the gallery")
    if cache and len(todo) > len(missing):
        keep = [r for r, s in enumerate(shas) if s in table]
        try:
            _write_cache(index, spec, out[keep], [shas[r] for r in keep])
        except OSError as e:
            notes.append(f"the degraded-gallery embeddings could not be cached in the index ({e}); "
                         "they will be computed again next time")
    if len(todo) > len(missing):
        notes.append(f"degraded-gallery embeddings computed for {len(todo) - len(missing)} of {len(shas)} photos "
                     f"({spec.det_name}, optics sigma {spec.sigma:g} LR px)")
    return out, notes


def _write_cache(index: FaceIndex, spec: DegradedSpec, emb: np.ndarray, shas: list[str]) -> None:
    npy, meta = _cache_paths(index, spec)
    npy.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    np.save(buf, emb, allow_pickle=False)
    data = buf.getvalue()
    atomic_write(npy, lambda p: p.write_bytes(data))
    info = {"spec": asdict(spec), "npy_sha256": hashlib.sha256(data).hexdigest(), "photo_sha256": shas}
    atomic_write(meta, lambda p: p.write_text(json.dumps(info), encoding="utf-8"))


def record_distances(query: np.ndarray, gallery: np.ndarray, table: RecordTable) -> np.ndarray:
    """``(Q, R)``: each query row's distance to each record of ``table`` (its closest photo)."""
    d = distances(query, gallery)[:, table.order]
    return np.minimum.reduceat(d, table.starts, axis=1) if len(table.starts) else d[:, :0]


def standardise(d: np.ndarray) -> np.ndarray:
    """Record distances ``(R,)`` as z-scores over the records (a constant row becomes zeros)."""
    sd = float(d.std())
    return (d - d.mean()) / sd if sd > 0 else np.zeros_like(d)


def fused_record_scores(det: np.ndarray, candidates: np.ndarray, photos: np.ndarray, degraded: np.ndarray,
                        table: RecordTable) -> np.ndarray:
    """One score per record (lower is better): the sum of three standardised record distances, the
    ``-det`` embedding ``(D,)`` to the photos ``(P, D)``, the candidates' ``(K, D)`` mean distance to
    them, and the ``-det`` embedding to the degraded photos ``(P, D)`` (:func:`degraded_embeddings`).

    Several frames of one face (a tracked clip): ``det`` is ``(F, D)``, one embedding per frame, and
    both of its distances are the mean over the frames."""
    det = np.atleast_2d(det)
    if len(photos) != len(degraded) or len(photos) != len(table.row_record):
        raise SearchError(f"{len(degraded)} degraded embeddings for {len(photos)} gallery photos")
    return fuse_distances(record_distances(det, photos, table), record_distances(candidates, photos, table),
                          record_distances(det, degraded, table))


def fuse_distances(det: np.ndarray, candidates: np.ndarray, degraded: np.ndarray) -> np.ndarray:
    """The fused score from record distances ``(F, R)``, ``(K, R)`` and ``(F, R)`` (det outputs to the
    photos, candidates to the photos, det outputs to the degraded photos): each averaged over its rows,
    standardised over the records, then summed. The search and the evaluations all score with this."""
    return np.sum([standardise(d.mean(0)) for d in (det, candidates, degraded)], axis=0)
