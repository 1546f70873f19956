"""One plate row read from several tracked frames of a clip, combined, as a candidate with its recipe (#16).

For each used (not dropped) frame of a track, in frame order:

1. the frame is decoded again and its pixels must hash to the SHA-256 recorded when it was tracked;
2. the analyst's region moved with the track (a tilted plate's quad straightened as in the app), or
   else the track's box, is cut from it (:func:`core.workbench.evidence.crop_region`) and cut into
   the row's cells as a still row is (:meth:`core.workbench.cell_geometry.CellGeometry.cut`: the
   analyst's edges, outer ones included, inverted for light characters on a dark plate); each cell
   is prepared for the model as in the app;
3. ``n`` candidates per cell are drawn (:func:`core.workbench.candidates.generate_cells`, seed
   ``seed + 1000 * j`` for the ``j``-th used frame, cell ``i`` adding ``i``);
4. the plate reader gives the frame's per-position distribution as for a still row
   (:func:`core.search.plates.position_probabilities`: each candidate stretched for the reader, a VarSR
   reading averaged with the cells' bicubic reading, tempered per position), as
   :mod:`core.video.plate_eval` measures it; the recipe's ``combine.reading`` names the reading, and a
   recipe without it (made before) replays as it was made: the plain mean softmax, unstretched.

The frames' distributions are combined by the weighted product of :mod:`core.video.combine`
(weights: a per-frame quality relative to the best frame). The result is one candidate of kind
``video-plate``: its image stacks each frame's row (sample 0 of each cell) top to bottom, its input
the frames' rows as the model saw them, and its recipe (:class:`core.workbench.recipes.VideoPlateRecipe`)
names the clip, every used frame (index, time, pixel hash, box, seed, quality, weight), the track,
the row's cell geometry (``source.cells``, as a still row's recipe writes it; none or bounds only:
equal cells, not inverted) and the combined reading with the SHA-256 of its probabilities.
:func:`replay` makes it again from the clip; the probabilities must hash the same, else
:class:`core.errors.CaseError`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.errors import CaseError, GenerationCancelled, VarSRError
from core.images import sha256_file
from core.model.varsr import VarSR
from core.search.plates import PlateReading, load_plate_classifier, plate_classifier_path, position_probabilities
from core.video.clip import Frame, file_sha256, open_clip
from core.video.combine import DEFAULT_QUALITY, FLOOR, QUALITIES, combine
from core.video.frames import box_region, moved
from core.video.track import Box, Track
from core.workbench.candidates import CancelCheck, Candidate, Progress, generate_cells
from core.workbench.cell_geometry import CellGeometry
from core.workbench.evidence import Region, crop_region, region_from_dict
from core.workbench.preprocess import consistency, prepare_lr
from core.workbench.recipes import ModelRef, VideoPlateRecipe

#: Seeds of consecutive used frames are this far apart (cells add their position).
FRAME_SEED_STRIDE = 1000


@dataclass
class FramePlan:
    """One frame to read: its index, the box to cut and the tracker's score (the pixel hash when known)."""

    index: int
    box: Box
    score: float = 1.0
    sha256: str | None = None
    #: The analyst's region moved to this frame (a plate's quad is straightened); None: the box, upright.
    region: Region | None = None


@dataclass
class PlateFrames:
    """The combined candidate, its reading, and each frame's cells (for the plate search)."""

    candidate: Candidate
    reading: PlateReading
    frames: list[dict[str, Any]]
    cells: list[list[list[Candidate]]]  # per frame, per cell, the n candidates


def probs_sha256(probs: np.ndarray) -> str:
    """SHA-256 of the combined probabilities (float64, row-major): what regeneration compares."""
    return hashlib.sha256(np.ascontiguousarray(probs, dtype=np.float64).tobytes()).hexdigest()


def plans_from_track(track: Track, records: dict[int, dict[str, Any]] | None = None,
                     anchor: tuple[Box, Region] | None = None) -> list[FramePlan]:
    """The used frames of a track, in order (with the pixel hashes recorded when tracking, if given).
    ``anchor``: a tracked box and the analyst's region on the same frame; each frame then cuts that region
    moved with the track (else the tracked box itself)."""
    records = records or {}
    return [FramePlan(p.frame, p.box, float(p.score), (records.get(p.frame) or {}).get("sha256"),
                      moved(anchor[1], p.box.x - anchor[0].x, p.box.y - anchor[0].y) if anchor else None)
            for p in track.used()]


def classifier_id(path: Path | None = None) -> dict[str, str]:
    """The plate reader's file name and SHA-256 (recorded with the reading)."""
    p = path or plate_classifier_path()
    return {"name": p.name, "sha256": sha256_file(p)}


def read_plate_frames(model: VarSR, classifier: Any, get_frame: Callable[[int], Frame], plans: Sequence[FramePlan],
                      *, cells: CellGeometry, n: int, seed: int, temperature: float,
                      quality: str = DEFAULT_QUALITY, clip: dict[str, Any], track: Track | None = None,
                      classifier_info: dict[str, Any] | None = None, progress: Progress | None = None,
                      cancelled: CancelCheck | None = None, legacy: bool = False) -> PlateFrames:
    """Read and combine the planned frames (see the module docstring); ``cells``: how each frame's row is cut;
    ``clip``: the clip's SHA-256, file and header; ``legacy`` only replays a recipe recorded before frames
    were read as stills are (its ``combine`` has no ``reading``: plain mean softmax, unstretched)."""
    if not plans:
        raise VarSRError("no frame to combine: every frame of the track is dropped")
    if quality not in QUALITIES:
        raise VarSRError(f"unknown frame quality {quality!r}; known: {', '.join(QUALITIES)}")
    rows, lrs, probs, greys, cells_all, records = [], [], [], [], [], []
    classes: list[str] = []
    method, frame_t = "", 1.0
    for j, plan in enumerate(plans):
        if cancelled is not None and cancelled():
            raise GenerationCancelled("combining cancelled")
        frame = get_frame(plan.index)
        if plan.sha256 and frame.sha256 != plan.sha256:
            raise CaseError(f"frame {plan.index} of the clip decodes to other pixels than when it was tracked "
                            f"(SHA-256 {frame.sha256[:12]} against {plan.sha256[:12]})")
        image = _pil(frame.image)
        region = plan.region or box_region(plan.box)
        crop = crop_region(image, region)
        cell_lrs = [prepare_lr(c, model.config)[0] for c in cells.cut(crop)]
        fseed = int(seed) + FRAME_SEED_STRIDE * j
        src = {"video_frame": plan.index}
        cands = generate_cells(model, cell_lrs, n, fseed, temperature, source=src, cancelled=cancelled)
        stacks = [torch.stack([c.image for c in cell]) for cell in cands]
        reading = (position_probabilities(classifier, stacks, stretch=False) if legacy else position_probabilities(
            classifier, stacks, lrs=cell_lrs, method="det" if model.config.deterministic else "varsr"))
        classes, method, frame_t = reading.classes, reading.method, reading.temperature
        probs.append(reading.probs)
        greys.append(np.asarray(crop.convert("L"), dtype=np.float64))
        rows.append(torch.cat([cell[0].image for cell in cands], dim=2))
        lrs.append(torch.cat(cell_lrs, dim=2))
        cells_all.append(cands)
        box = plan.box
        records.append({"index": frame.index, "pts": frame.pts, "time": round(frame.time, 6),
                        "sha256": frame.sha256, "box": [box.x, box.y, box.w, box.h], "region": region.to_dict(),
                        "score": round(plan.score, 6), "seed": fseed})
        if progress is not None:
            progress(j + 1, len(plans))
    comb = combine(probs, [f"frame {r['index']}" for r in records], quality, rows=greys,
                   scores=[round(plan.score, 6) for plan in plans])
    for r, f in zip(records, comb.frames, strict=True):
        r["quality"], r["weight"] = f["quality"], f["weight"]
    reading = PlateReading(comb.probs, list(classes), [n * len(plans)] * comb.probs.shape[0], method)
    best = "".join(classes[int(i)] for i in comb.probs.argmax(-1))
    result = {"reading": best, "probs_sha256": probs_sha256(comb.probs), "classes": "".join(classes),
              "probs": comb.probs.tolist()}  # exact: JSON keeps every float64 as it is
    combine_rec = {"rule": "weighted product", "floor": FLOOR, "quality": quality, "frames": len(records),
                   **({} if legacy else {"reading": method, "position_temperature": frame_t})}
    source = {"evidence": {"sha256": clip.get("sha256"), "path": clip.get("path"), "source": "video"},
              "cells": cells.to_info()}
    recipe = VideoPlateRecipe(ModelRef.of(model), dict(clip), records, int(seed), int(n), float(temperature),
                              track.to_json() if track is not None else {}, combine_rec,
                              dict(classifier_info or {}), result, source).to_json()
    image = torch.cat(rows, dim=1)
    lr = torch.cat(lrs, dim=1)
    l1, psnr = consistency(image[None], lr, model.config.scale)
    cand = Candidate(image=image.detach().cpu().clone(), lr=lr.cpu(), z=None, recipe=recipe, l1=float(l1[0]),
                     lr_psnr=float(psnr[0]))
    return PlateFrames(cand, reading, records, cells_all)


def recorded_reading(recipe: dict[str, Any]) -> PlateReading | None:
    """The combined reading a ``video-plate`` recipe records (None for another kind, or an older record)."""
    res = recipe.get("result") if recipe.get("kind") == VideoPlateRecipe.KIND else None
    if not isinstance(res, dict) or not isinstance(res.get("probs"), list) or not isinstance(res.get("classes"), str):
        return None
    probs = np.asarray(res["probs"], dtype=np.float64)
    if probs.ndim != 2 or probs.shape[1] != len(res["classes"]) or probs_sha256(probs) != res.get("probs_sha256"):
        return None
    n = int(recipe.get("n") or 1) * len(recipe.get("frames") or [])
    return PlateReading(probs, list(res["classes"]), [n] * probs.shape[0])


def _pil(image: np.ndarray) -> Any:
    from PIL import Image

    return Image.fromarray(image, "RGB")


def clip_record(path: str | Path, sha256: str, info: dict[str, Any], name: str | None = None) -> dict[str, Any]:
    """What a recipe keeps of the clip: its SHA-256, path (reduced to the name in a case), name (``name``:
    the clip's own when ``path`` is a copy) and header."""
    keep = ("container", "codec", "width", "height", "fps", "n_frames", "duration", "time_base", "rotation",
            "variable_frame_rate", "size_bytes", "notes")
    return {"sha256": sha256, "path": str(Path(path).resolve()), "name": name or Path(path).name,
            **{k: info.get(k) for k in keep}}


def replay(model: VarSR, recipe: VideoPlateRecipe, locate: Callable[[str], Path]) -> Candidate:
    """The candidate of a ``video-plate`` recipe made again from the clip (``locate(sha256)``: the case's
    copy); :class:`CaseError` when the clip, a frame or the combined probabilities differ."""
    path = clip_file(recipe.clip, locate)
    clf_path = plate_classifier_path()
    want = recipe.classifier.get("sha256")
    info = classifier_id(clf_path)
    if want and info["sha256"] != want:
        raise CaseError(f"the plate reader {clf_path.name} is not the recorded one ({want[:12]})")
    classifier = load_plate_classifier(clf_path)
    plans = [FramePlan(int(f["index"]), Box(*[float(v) for v in f["box"]]), float(f.get("score", 1.0)),
                       str(f["sha256"]), region_from_dict(f.get("region"))) for f in recipe.frames]
    cells = CellGeometry.from_info(recipe.source.get("cells"))  # none recorded: one cell, as before
    with open_clip(path) as clip:
        out = read_plate_frames(model, classifier, clip.frame, plans, cells=cells, n=int(recipe.n),
                                seed=int(recipe.seed),
                                temperature=float(recipe.temperature),
                                quality=str(recipe.combine.get("quality", "confidence")), clip=recipe.clip,
                                track=Track.from_json(recipe.track) if recipe.track else None,
                                classifier_info=recipe.classifier,
                                legacy="reading" not in recipe.combine)
    want_probs = recipe.result.get("probs_sha256")
    got = out.candidate.recipe["result"]["probs_sha256"]
    if want_probs and got != want_probs:
        raise CaseError(f"the combined reading differs from the recorded one (probabilities {got[:12]} against "
                        f"{want_probs[:12]})")
    weights = [f.get("weight") for f in recipe.frames]
    if weights != [f["weight"] for f in out.frames]:
        raise CaseError("the frames' weights differ from the recorded ones")
    return out.candidate


_HASHED: dict[tuple[str, int, int], str] = {}


def clip_file(clip: dict[str, Any], locate: Callable[[str], Path]) -> Path:
    """The case's copy of the clip a recipe names (``locate(sha256)``), else its recorded path (a session not
    yet saved); :class:`CaseError` when neither is there or the file's SHA-256 is not the recorded one."""
    sha = str(clip["sha256"])
    path: Path | None = None
    try:
        p = locate(sha)
        path = p if p.is_file() else None
    except CaseError:
        pass
    recorded = clip.get("path")
    if path is None and recorded and Path(recorded).is_absolute() and Path(recorded).is_file():
        path = Path(recorded)
    if path is None:
        raise CaseError(f"the clip {clip.get('name') or sha[:12]} is neither in the case nor at its recorded place")
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _HASHED:  # hashed once while its size and time are unchanged, not once per frame
        _HASHED[key] = file_sha256(path)
    if _HASHED[key] != sha:
        raise CaseError(f"the clip {path.name} no longer matches its recorded SHA-256 {sha[:12]}")
    return path
