"""Evidence from video (issue 16): open a clip with PyAV, step through it frame by frame, follow a
region across frames and combine what the frames say. No Qt; the original file is only read.

May import the foundation modules, ``core.model``, ``core.plates``, ``core.search`` and ``core.workbench``
(:mod:`~core.video.frames`: a frame as the session's evidence; :mod:`~core.video.plate_frames`: a
tracked plate row combined across frames as a ``video-plate`` candidate, and its replay, which
``core.case.regenerate`` calls); nothing but ``core.case`` and ``core.cli`` imports it."""

from core.video.clip import Clip, ClipInfo, Frame, FrameIndex, file_sha256, open_clip

__all__ = ["Clip", "ClipInfo", "Frame", "FrameIndex", "file_sha256", "open_clip"]
