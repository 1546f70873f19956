"""Evidence from video (issue 16): open a clip with PyAV, step through it frame by frame, follow a
region across frames and combine what the frames say. No Qt; the original file is only read."""

from core.video.clip import Clip, ClipInfo, Frame, FrameIndex, file_sha256, open_clip

__all__ = ["Clip", "ClipInfo", "Frame", "FrameIndex", "file_sha256", "open_clip"]
