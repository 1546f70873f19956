"""The video dock's background work (run by the window's :class:`~varsr_gui.workers.TaskRunner`): opening,
indexing and hashing a clip, decoding a frame, tracking a region, combining tracked plate frames.

Every function takes the :class:`~core.video.clip.Clip` it reads; the runner runs one task at a time,
so a clip is never read by two threads at once (PyAV containers are not thread-safe). No widgets here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import GenerationCancelled
from core.search.plate_registry import PlateRegistry
from core.search.plates import PlateSearchResult, load_plate_classifier, plate_classifier_path, search_plate
from core.video.clip import Clip, Frame, open_clip
from core.video.face_frames import read_face_frames
from core.video.plate_frames import PlateFrames, classifier_id, clip_record, plans_from_track, read_plate_frames
from core.video.track import Box, Track, track_region
from core.workbench.candidates import Candidate
from core.workbench.cell_geometry import CellGeometry
from core.workbench.evidence import Region
from core.workbench.session import Session
from varsr_gui.workers import TaskContext


@dataclass
class Opened:
    """A clip just opened: its first frame, shown at once (the index and hash come after)."""

    clip: Clip
    first: Frame


@dataclass
class Indexed:
    """The clip's frame count, SHA-256 and header (with notes) once the whole stream was demuxed and hashed."""

    n_frames: int
    sha256: str
    info: dict[str, Any]


@dataclass
class Tracked:
    """A track and, per tracked frame, what the case keeps of it (index, timestamp, pixel hash)."""

    track: Track
    records: dict[int, dict[str, Any]] = field(default_factory=dict)


def open_first(path: str | Path) -> Opened:
    """Open the clip (header only) and decode its first frame."""
    clip = open_clip(path)
    try:
        return Opened(clip, clip.first_frame())
    except BaseException:
        clip.close()
        raise


def index_and_hash(clip: Clip, ctx: TaskContext) -> Indexed:
    """Demux every packet (the frame index) and hash the file."""
    ctx.progress(0, 2)
    n = len(clip.index())
    ctx.progress(1, 2)
    sha = clip.sha256()
    ctx.progress(2, 2)
    return Indexed(n, sha, clip.info.record())


def track(clip: Clip, anchors: dict[int, Box], frames: range, ctx: TaskContext,
          dropped: set[int] | frozenset[int] = frozenset()) -> Tracked:
    """Follow the anchors' boxes through ``frames`` (progress per decoded frame; cancellable); the frames
    in ``dropped`` stay dropped."""
    records: dict[int, dict[str, Any]] = {}
    total = len(set(frames) | set(anchors))

    def get(i: int) -> Any:
        if ctx.cancelled():
            raise GenerationCancelled("tracking cancelled")
        f = clip.frame(i)  # its pixel hash is taken when the frame is used (combining), not here: 1080p
        records[i] = {"index": f.index, "pts": f.pts, "time": round(f.time, 6), "keyframe": f.keyframe}
        ctx.progress(len(records), total)
        return f.image

    t = track_region(get, anchors, frames)
    for i in dropped:
        if i in t.points:
            t.drop(i)
    return Tracked(t, records)


@dataclass
class Combining:
    """What the window gives a combination: the session's model and row, the generation settings."""

    model_name: str
    #: How each frame's row is cut (the session's edges and polarity, as for a still row).
    cells: CellGeometry
    n: int
    seed: int
    temperature: float
    quality: str
    registry: PlateRegistry | None
    top: int
    clip_name: str = ""


_READER: dict[str, Any] = {}


def combine_frames(session: Session, clip: Clip, path: Path, tracked: Tracked, how: Combining,
                   ctx: TaskContext, anchor: tuple[Box, Region] | None = None) -> tuple[PlateFrames, PlateSearchResult]:
    """Read every used frame of the track, combine, and rank strings and registry plates (``anchor``: a
    tracked box and the analyst's region on that frame, moved with the track to every frame)."""
    model = session.model(how.model_name)
    clf_path = plate_classifier_path()
    if str(clf_path) not in _READER:
        _READER.clear()
        _READER[str(clf_path)] = (load_plate_classifier(clf_path), classifier_id(clf_path))
    clf, clf_info = _READER[str(clf_path)]
    out = read_plate_frames(model, clf, clip.frame, plans_from_track(tracked.track, tracked.records, anchor),
                            cells=how.cells, n=how.n, seed=how.seed,
                            temperature=how.temperature, quality=how.quality,
                            clip=clip_record(path, clip.sha256(), clip.info.record(), how.clip_name or None),
                            track=tracked.track,
                            classifier_info=clf_info, progress=ctx.progress, cancelled=ctx.cancelled)
    return out, search_plate(out.reading, how.registry, top=how.top)


def face_frames(session: Session, clip: Clip, path: Path, tracked: Tracked, anchor: tuple[int, Box], region: Region,
                how: Combining, ctx: TaskContext) -> list[tuple[int, list[Candidate]]]:
    """``n`` face candidates from every used frame of the track (the region moved with the track)."""
    model = session.model(how.model_name)
    return read_face_frames(model, clip.frame, plans_from_track(tracked.track, tracked.records), anchor, region,
                            n=how.n, seed=how.seed, temperature=how.temperature,
                            clip=clip_record(path, clip.sha256(), clip.info.record(), how.clip_name or None),
                            track=tracked.track,
                            progress=ctx.progress, cancelled=ctx.cancelled)
