"""Face candidates from each tracked frame of a clip, to be searched together (#16).

For each used (not dropped) frame of a track, in frame order, the frame is decoded again (its pixels
must hash as when tracked), the analyst's region (box, eyes or quad) is moved by the track's
displacement from the anchor frame to that frame, cut and prepared for the face model exactly as the
app cuts evidence, and ``n`` candidates are drawn (eq. 4, seed ``seed + 1000 * j`` for the ``j``-th
used frame). Each candidate's recipe (:class:`core.workbench.recipes.VideoFaceRecipe`) names the clip,
the frame (index, timestamp, pixel SHA-256), the moved region and the track, so it regenerates from the
clip like a sample from its evidence; sliders, more-like-this and consistency derive from it as from
any face candidate. The face search then ranks a gallery against every frame's candidates together
(``min`` fusion over candidates: a record is as close as its best match in any frame).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from core.errors import CaseError, GenerationCancelled, VarSRError
from core.model.varsr import VarSR
from core.video.clip import Frame, open_clip
from core.video.frames import moved
from core.video.plate_frames import FRAME_SEED_STRIDE, FramePlan, clip_file
from core.video.track import Box, Track
from core.workbench.candidates import CancelCheck, Candidate, Progress, generate_candidates
from core.workbench.evidence import Region, crop_region, region_from_dict
from core.workbench.preprocess import prepare_lr
from core.workbench.recipes import ModelRef, VideoFaceRecipe


def frame_candidates(model: VarSR, frame: Frame, region: Region, n: int, seed: int, temperature: float, *,
                     clip: dict[str, Any], track: dict[str, Any] | None = None, chunk: int = 16,
                     cancelled: CancelCheck | None = None) -> list[Candidate]:
    """``n`` face candidates of ``region`` in ``frame`` (its recipes: ``video-face``)."""
    from PIL import Image

    lr, notes = prepare_lr(crop_region(Image.fromarray(frame.image, "RGB"), region), model.config)
    source = {"evidence": {"sha256": clip.get("sha256"), "path": clip.get("path"), "source": "video"},
              "region": region.to_dict(), "notes": notes}
    cands = generate_candidates(model, lr, n, seed, temperature, source=source, cancelled=cancelled, chunk=chunk)
    rec = {"index": frame.index, "pts": frame.pts, "time": round(frame.time, 6), "sha256": frame.sha256}
    for c in cands:
        r = c.recipe
        c.recipe = VideoFaceRecipe(ModelRef.of(model), dict(clip), rec, int(seed), int(r["index"]),
                                   float(temperature), r.get("n"), r.get("chunk"), dict(track or {}),
                                   source).to_json()
    return cands


def read_face_frames(model: VarSR, get_frame: Callable[[int], Frame], plans: Sequence[FramePlan],
                     anchor: tuple[int, Box], region: Region, *, n: int, seed: int, temperature: float,
                     clip: dict[str, Any], track: Track | None = None, progress: Progress | None = None,
                     cancelled: CancelCheck | None = None) -> list[tuple[int, list[Candidate]]]:
    """Every planned frame's candidates, ``[(frame index, candidates), ...]`` (see the module docstring);
    ``anchor``: the frame the region was marked on and its tracked box."""
    if not plans:
        raise VarSRError("no frame to use: every frame of the track is dropped")
    a_box = anchor[1]
    tj = track.to_json() if track is not None else {}
    out = []
    for j, plan in enumerate(plans):
        if cancelled is not None and cancelled():
            raise GenerationCancelled("cancelled")
        frame = get_frame(plan.index)
        if plan.sha256 and frame.sha256 != plan.sha256:
            raise CaseError(f"frame {plan.index} of the clip decodes to other pixels than when it was tracked")
        r = moved(region, plan.box.x - a_box.x, plan.box.y - a_box.y)
        out.append((plan.index, frame_candidates(model, frame, r, n, int(seed) + FRAME_SEED_STRIDE * j, temperature,
                                                 clip=clip, track=tj, cancelled=cancelled)))
        if progress is not None:
            progress(j + 1, len(plans))
    return out


def replay(model: VarSR, r: VideoFaceRecipe, locate: Callable[[str], Path],
           request: Callable[[tuple, Callable[[], list[Candidate]]], list[Candidate]],
           set_size: int | None = None) -> Candidate:
    """The candidate of a ``video-face`` recipe made again from the clip (one decode and one request per
    frame, however many of its candidates are rebuilt); :class:`CaseError` when the clip or frame differ."""
    path = clip_file(r.clip, locate)
    region = region_from_dict(r.source.get("region"))
    if region is None:
        raise CaseError("the video-face recipe has no region")
    n = int(r.n or set_size or r.index + 1)
    chunk = 16 if r.chunk is None else int(r.chunk)
    key = ("video-face", r.clip["sha256"], int(r.frame["index"]), r.frame["sha256"], str(region.to_dict()),
           r.model_ref.name, int(r.seed), n, chunk, float(r.temperature))

    def make() -> list[Candidate]:
        with open_clip(path) as clip:
            frame = clip.frame(int(r.frame["index"]))
        if frame.sha256 != r.frame["sha256"]:
            raise CaseError(f"frame {frame.index} of the clip decodes to other pixels than recorded "
                            f"(SHA-256 {frame.sha256[:12]} against {str(r.frame['sha256'])[:12]})")
        return frame_candidates(model, frame, region, n, int(r.seed), float(r.temperature), clip=r.clip,
                                track=r.track, chunk=chunk)

    return request(key, make)[int(r.index)]
