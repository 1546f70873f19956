"""A video clip, read-only: metadata, a frame index, frame-accurate seeking and stepping, hashes.

:func:`open_clip` reads only the container header and is cheap for any length (the app can show
:meth:`Clip.first_frame` at once). :meth:`Clip.index` demuxes every packet of the video stream
(no decoding) to list each frame's presentation timestamp and whether it is a keyframe; frame ``i``
is the ``i``-th frame in presentation order. :meth:`Clip.frame` seeks to the nearest keyframe at or
before the frame and decodes forward to exactly that timestamp; asking for the next frame keeps
decoding instead of seeking again, so stepping forward costs one decode per frame.

For the case: :meth:`Clip.sha256` is the SHA-256 of the file's bytes (streamed), and every
:class:`Frame` records its index, timestamp (pts and seconds) and the SHA-256 of its decoded
pixels (RGB24, row-major). The file is never written or re-encoded.

Anything a person should know about the clip is in :attr:`ClipInfo.notes` (variable frame rate,
rotation metadata, a truncated stream, a header frame count that disagrees with the packets, no
timestamps); a clip that cannot be opened or a frame that cannot be decoded raises
:class:`core.errors.VideoError` with one line saying why.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import VideoError

#: How far ahead (frames) stepping keeps decoding instead of seeking.
STEP_AHEAD = 64
#: Relative spread of frame durations above which a clip is called variable frame rate.
VFR_TOLERANCE = 0.05


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes, streamed."""
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class Frame:
    """One decoded frame: its place in the clip and its pixels (``(H, W, 3)`` uint8 RGB)."""

    index: int
    pts: int | None
    time: float
    keyframe: bool
    image: np.ndarray = field(repr=False, compare=False)

    @property
    def sha256(self) -> str:
        """SHA-256 of the decoded pixels (RGB24, row-major, as stored in :attr:`image`)."""
        return hashlib.sha256(np.ascontiguousarray(self.image).tobytes()).hexdigest()

    def grey(self) -> np.ndarray:
        """The frame as ``(H, W)`` float32 luma in [0, 255] (ITU-R BT.601 weights)."""
        return self.image.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)

    def record(self) -> dict[str, Any]:
        """What the case keeps about a used frame."""
        h, w = self.image.shape[:2]
        return {"index": self.index, "pts": self.pts, "time": round(self.time, 6), "keyframe": self.keyframe,
                "width": w, "height": h, "pixel_format": "rgb24", "sha256": self.sha256}


@dataclass(frozen=True)
class FrameIndex:
    """Every frame's timestamp in presentation order and which are keyframes (from demuxing, no decoding)."""

    pts: tuple[int, ...]
    keyframe: tuple[bool, ...]
    has_timestamps: bool
    notes: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.pts)

    def keyframe_before(self, i: int) -> int:
        """The index of the last keyframe at or before frame ``i`` (0 when there is none)."""
        for j in range(i, -1, -1):
            if self.keyframe[j]:
                return j
        return 0

    def at_time(self, seconds: float, time_base: Fraction) -> int:
        """The frame shown at ``seconds`` (the last one whose timestamp is not after it)."""
        t = int(seconds / time_base) if time_base else 0
        return max(0, bisect_right(self.pts, t) - 1)


@dataclass
class ClipInfo:
    """What the header says about a clip (cheap), and the notes found so far."""

    path: str
    size_bytes: int
    container: str
    codec: str
    width: int
    height: int
    fps: float
    n_frames: int  # the header's count (or duration x fps) until the index is built, then exact
    n_frames_exact: bool
    duration: float
    time_base: str
    rotation: int
    variable_frame_rate: bool = False
    notes: list[str] = field(default_factory=list)

    def record(self) -> dict[str, Any]:
        return asdict(self)


def _note(notes: list[str], text: str) -> None:
    if text not in notes:
        notes.append(text)


class Clip:
    """An open clip (see the module docstring). Use as a context manager, or call :meth:`close`."""

    def __init__(self, path: str | Path) -> None:
        import av

        self.path = Path(path)
        if not self.path.is_file():
            raise VideoError(f"{self.path}: no such file")
        try:
            self._container: Any = av.open(str(self.path), mode="r")
        except (av.error.FFmpegError, OSError, UnicodeDecodeError, ValueError) as e:
            why = getattr(e, "strerror", None) or str(e)
            raise VideoError(f"{self.path.name}: cannot be opened as a video (truncated, damaged or not a video): "
                             f"{why}") from e
        streams: list[Any] = [s for s in self._container.streams if s.type == "video"]
        if not streams:
            self._container.close()
            raise VideoError(f"{self.path.name}: has no video stream")
        self._stream: Any = streams[0]
        self._stream.thread_type = "AUTO"
        self._tb: Fraction = self._stream.time_base or Fraction(1, 1)
        self._index: FrameIndex | None = None
        self._sha: str | None = None
        self._decoder: Iterator[Any] | None = None
        self._last: int | None = None  # the index of the frame the decoder gave last
        self.info = self._header_info()
        self._first: Frame | None = None

    # -- metadata ---------------------------------------------------------------------------------
    def _header_info(self) -> ClipInfo:
        s, c = self._stream, self._container
        rate = s.average_rate or s.guessed_rate or s.base_rate
        fps = float(rate) if rate else 0.0
        if s.duration is not None:
            duration = float(s.duration * self._tb)
        elif c.duration is not None:
            duration = c.duration / 1_000_000
        else:
            duration = 0.0
        n = int(s.frames or 0) or int(round(duration * fps))
        ctx: Any = s.codec_context
        notes: list[str] = []
        rotation = 0
        rot = (s.metadata or {}).get("rotate")
        if rot:
            try:
                rotation = int(float(rot)) % 360
            except ValueError:
                pass
        info = ClipInfo(self.path.name, self.path.stat().st_size, c.format.name, ctx.name, ctx.width, ctx.height,
                        round(fps, 6), n, False, round(duration, 6), f"{self._tb.numerator}/{self._tb.denominator}",
                        rotation, False, notes)
        return info

    def _set_rotation(self, frame: Any) -> None:
        rot = int(round(getattr(frame, "rotation", 0) or 0)) % 360
        if rot and not self.info.rotation:
            self.info.rotation = rot
        if self.info.rotation:
            _note(self.info.notes, f"rotation metadata: {self.info.rotation} degrees (frames are kept as decoded; "
                                   "display them rotated)")

    def sha256(self) -> str:
        """SHA-256 of the clip file (computed once; streams the whole file)."""
        if self._sha is None:
            self._sha = file_sha256(self.path)
        return self._sha

    def index(self) -> FrameIndex:
        """The frame index (demuxes the whole stream once; no decoding)."""
        if self._index is not None:
            return self._index
        import av

        notes: list[str] = []
        entries: list[tuple[int, bool]] = []
        timestamps = True
        try:
            self._container.seek(0, stream=self._stream, backward=True)
        except av.error.FFmpegError:
            pass
        self._decoder, self._last = None, None
        order = 0
        try:
            for packet in self._container.demux(self._stream):
                if packet.size == 0 and packet.pts is None and packet.dts is None:
                    continue  # the flush packet
                t = packet.pts if packet.pts is not None else packet.dts
                if t is None:
                    timestamps = False
                    t = order
                if packet.is_corrupt:
                    _note(notes, "the stream has packets flagged corrupt")
                entries.append((int(t), bool(packet.is_keyframe)))
                order += 1
        except (av.error.FFmpegError, OSError) as e:
            _note(notes, f"truncated or damaged: the stream stops after {len(entries)} packets ({e})")
        if not entries:
            raise VideoError(f"{self.path.name}: the video stream has no frames")
        if timestamps:
            entries.sort(key=lambda e: e[0])
        else:
            _note(notes, "no timestamps: frames are numbered in decoding order and seeking decodes from the start")
        pts = tuple(e[0] for e in entries)
        key = tuple(e[1] for e in entries)
        if not key[0]:
            _note(notes, "the first frame is not a keyframe: frames before the first keyframe may not decode")
        header_n = int(self._stream.frames or 0)
        if header_n and header_n != len(pts):
            _note(notes, f"the header says {header_n} frames but the stream holds {len(pts)} (truncated or damaged?)")
        d = np.diff(np.array(pts, dtype=np.int64))
        if timestamps and len(d) and self.info.duration > 0 and self.info.fps > 0:
            end = float((pts[-1] - pts[0]) * self._tb) + float(np.median(d)) * float(self._tb)
            if end < self.info.duration - 1.5 / self.info.fps:
                _note(notes, f"the stream ends at {end:.3f} s but the header says {self.info.duration:.3f} s "
                             "(truncated?)")
        vfr = False
        if timestamps and len(d) >= 2 and (d <= 0).any():
            _note(notes, "repeated or out-of-order timestamps")
        elif timestamps and len(d) >= 2:
            med = float(np.median(d))
            if med > 0 and (d.max() - d.min()) > max(1.0, VFR_TOLERANCE * med):
                vfr = True
                fps_lo, fps_hi = 1 / float(d.max() * self._tb), 1 / float(d.min() * self._tb)
                _note(notes, f"variable frame rate ({fps_lo:.2f}-{fps_hi:.2f} fps): frames are addressed by "
                             "index and timestamp, not by index / fps")
        self._index = FrameIndex(pts, key, timestamps, tuple(notes))
        self.info.n_frames, self.info.n_frames_exact = len(pts), True
        self.info.variable_frame_rate = vfr
        if timestamps and len(pts) >= 2 and not vfr:
            step = float(np.median(d)) * float(self._tb)
            if step > 0:
                self.info.fps = round(1 / step, 6)
        for n in notes:
            _note(self.info.notes, n)
        return self._index

    def __len__(self) -> int:
        return len(self.index())

    # -- decoding ---------------------------------------------------------------------------------
    def _time(self, pts: int | None) -> float:
        return float(pts * self._tb) if pts is not None else 0.0

    def _wrap(self, i: int, raw: Any, pts: int | None, key: bool) -> Frame:
        self._set_rotation(raw)
        img = raw.to_ndarray(format="rgb24")
        return Frame(i, pts, self._time(pts), key, img)

    def first_frame(self) -> Frame:
        """Frame 0 without building the index (what the app shows on opening)."""
        if self._first is not None:
            return self._first
        if self._index is not None:
            self._first = self.frame(0)
            return self._first
        import av

        try:
            for raw in self._container.decode(self._stream):
                self._first = self._wrap(0, raw, raw.pts, bool(raw.key_frame))
                break
        except (av.error.FFmpegError, OSError) as e:
            raise VideoError(f"{self.path.name}: the first frame cannot be decoded ({e})") from e
        finally:
            self._decoder, self._last = None, None
            try:
                self._container.seek(0, stream=self._stream, backward=True)
            except av.error.FFmpegError:
                pass
        if self._first is None:
            raise VideoError(f"{self.path.name}: no frame could be decoded")
        return self._first

    def _restart(self, start_pts: int | None) -> None:
        """Seek to the keyframe at or before ``start_pts`` (None: the start) and decode from there."""
        self._container.seek(0 if start_pts is None else start_pts, stream=self._stream, backward=True,
                             any_frame=False)
        self._decoder = iter(self._container.decode(self._stream))
        self._last = None

    def frame(self, i: int) -> Frame:
        """Frame ``i`` (presentation order), decoded exactly; stepping forward does not seek again."""
        import av

        idx = self.index()
        if not 0 <= i < len(idx):
            raise VideoError(f"{self.path.name}: frame {i} is outside 0-{len(idx) - 1}")
        target = idx.pts[i]
        sequential = self._decoder is not None and self._last is not None and self._last < i <= self._last + STEP_AHEAD
        starts: list[int | None] = [idx.pts[idx.keyframe_before(i)], None] if idx.has_timestamps else [None]
        if not sequential:
            self._restart(starts.pop(0))
        while True:
            try:
                got = self._decode_until(i, target, idx)
            except (av.error.FFmpegError, OSError) as e:
                self._decoder, self._last = None, None
                raise VideoError(f"{self.path.name}: frame {i} cannot be decoded (truncated or damaged: {e})") from e
            if got is not None:
                return got
            if not starts:
                raise VideoError(f"{self.path.name}: frame {i} (pts {target}) was not found when decoding "
                                 "(truncated or damaged stream)")
            self._restart(starts.pop(0))  # the seek landed after the frame: start earlier

    def _decode_until(self, i: int, target: int, idx: FrameIndex) -> Frame | None:
        """Decode forward until the frame with ``target`` pts (or position ``i`` without timestamps)."""
        assert self._decoder is not None
        count = -1 if self._last is None else self._last
        for raw in self._decoder:
            if not idx.has_timestamps:
                count += 1
                self._last = count
                if count == i:
                    return self._wrap(i, raw, raw.pts, idx.keyframe[i])
                continue
            pts = raw.pts
            if pts is None:
                continue
            if pts > target:  # the seek landed after the frame (or it is missing): the caller starts earlier
                self._decoder, self._last = None, None
                return None
            j = bisect_right(idx.pts, pts) - 1
            self._last = j
            if pts == target:
                return self._wrap(i, raw, pts, idx.keyframe[i])
        self._decoder, self._last = None, None
        return None

    def frames(self, start: int = 0, stop: int | None = None, step: int = 1) -> Iterator[Frame]:
        """Frames ``start, start + step, ...`` before ``stop`` (decoded in one forward pass when ``step`` is small)."""
        n = len(self.index())
        stop = n if stop is None else min(stop, n)
        for i in range(start, stop, step):
            yield self.frame(i)

    def index_at(self, seconds: float) -> int:
        """The index of the frame shown at ``seconds`` from the clip's first timestamp (no decoding; once the
        index is built, no reading either)."""
        idx = self.index()
        return idx.at_time(seconds + self._time(idx.pts[0]), self._tb)

    def frame_at(self, seconds: float) -> Frame:
        """The frame shown at ``seconds`` from the clip's first timestamp."""
        return self.frame(self.index_at(seconds))

    def close(self) -> None:
        self._decoder = None
        self._container.close()

    def __enter__(self) -> Clip:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_clip(path: str | Path) -> Clip:
    """Open a clip read-only (header only: cheap for any length)."""
    return Clip(path)
