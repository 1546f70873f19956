"""A clip's frame as evidence, and the analyst's region as a box to track (issue 16). No Qt.

The chosen frame becomes the session's evidence (:func:`frame_evidence`): its pixels are the
decoded frame (RGB24) exactly as :meth:`core.video.clip.Clip.frame` gives them, and the evidence
records the clip (its SHA-256, file name and header), the frame's index, timestamp and the SHA-256
of its decoded pixels. The clip file itself is only read, never re-encoded; a case keeps the frame
as a lossless PNG (the evidence's hash is that PNG's, like a pasted image) beside the clip.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from core.video.clip import Frame
from core.video.track import Box
from core.workbench.evidence import Evidence, Region, evidence_from_image

#: What the app's File > Open treats as a clip (anything else is read as an image).
VIDEO_SUFFIXES = (".mp4", ".m4v", ".avi", ".mkv", ".mov", ".webm", ".mpg", ".mpeg", ".ts", ".mts", ".wmv", ".3gp")
#: The file dialog's pattern for clips.
VIDEO_PATTERNS = " ".join(f"*{s}" for s in VIDEO_SUFFIXES)


def is_video(path: str | Path) -> bool:
    """Whether ``path`` names a clip (by its suffix)."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


@dataclass
class FrameEvidence(Evidence):
    """Evidence taken from one frame of a clip; :attr:`video` says which."""

    video: dict[str, Any] | None = None

    @property
    def label(self) -> str:
        v = self.video or {}
        return f"{v.get('clip', 'clip')} frame {(v.get('frame') or {}).get('index', '?')}"

    @property
    def frame_index(self) -> int:
        return int((self.video or {}).get("frame", {}).get("index", 0))

    @property
    def clip_sha256(self) -> str:
        return str((self.video or {}).get("clip_sha256", ""))


def frame_evidence(clip_path: str | Path, clip_sha256: str, clip_info: dict[str, Any], frame: Frame,
                   name: str | None = None) -> FrameEvidence:
    """The session's evidence for ``frame`` of the clip at ``clip_path`` (whose SHA-256 and
    :meth:`core.video.clip.ClipInfo.record` are given); ``name``: the clip's own name when the file is a
    copy under another (a case's original)."""
    name = name or Path(clip_path).name
    base = evidence_from_image(Image.fromarray(frame.image, "RGB"), "video frame")
    video = {"clip": name, "path": str(Path(clip_path).resolve()), "clip_sha256": clip_sha256,
             "frame": frame.record(), "clip_info": {k: clip_info.get(k) for k in (
                 "container", "codec", "width", "height", "fps", "n_frames", "duration", "time_base", "rotation",
                 "variable_frame_rate", "size_bytes")}}
    notes = [f"frame {frame.index} ({frame.time:.3f} s) of the clip {name} (SHA-256 {clip_sha256[:12]}\u2026), "
             f"decoded to RGB24 (pixel SHA-256 {frame.sha256[:12]}\u2026); the clip itself is never re-encoded"]
    notes += [str(n) for n in clip_info.get("notes") or []]
    return FrameEvidence(base.image, base.sha256, None, "video frame",
                         {"format": "video frame", "video": video, "notes": notes}, video=video)


def region_box(region: Region | None, size: tuple[int, int]) -> Box:
    """The analyst's region as an axis-aligned :class:`Box` (a quad or the eyes by their bounds; None: the image)."""
    if region is None:
        return Box(0.0, 0.0, float(size[0]), float(size[1]))
    if region.kind == "box" and region.box:
        x0, y0, x1, y1 = region.box
    else:
        pts = list(region.quad or region.eyes or [])
        if not pts:
            return Box(0.0, 0.0, float(size[0]), float(size[1]))
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        x0, y0, x1, y1 = min(xs), min(ys), max(xs), max(ys)
        if region.kind == "eyes":  # a face around the eyes: about 2.2 eye distances wide
            d = max(4.0, x1 - x0)
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
            x0, x1, y0, y1 = cx - 1.1 * d, cx + 1.1 * d, cy - 0.9 * d, cy + 1.5 * d
    return Box(float(x0), float(y0), float(x1 - x0), float(y1 - y0))


def box_region(box: Box) -> Region:
    """A tracked :class:`Box` as the session's box :class:`Region`."""
    return Region.from_box(box.x, box.y, box.x + box.w, box.y + box.h)


def moved(region: Region, dx: float, dy: float) -> Region:
    """``region`` translated by ``(dx, dy)`` pixels (:meth:`Region.moved`)."""
    return region.moved(dx, dy)
