"""Small synthetic clips for tests and benchmarks (written with PyAV; never used on evidence)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np


def pick_codec() -> str:
    """libx264 when this FFmpeg has it, else mpeg4."""
    import av

    return "libx264" if "libx264" in av.codecs_available else "mpeg4"


def moving_square(n: int, size: tuple[int, int] = (64, 48), box: int = 12, seed: int = 0) -> list[np.ndarray]:
    """``n`` RGB frames of a textured square moving by about one pixel per frame over a textured background."""
    w, h = size
    rng = np.random.default_rng(seed)
    background = (rng.random((h, w, 3)) * 80 + 60).astype(np.uint8)
    patch = (rng.random((box, box, 3)) * 255).astype(np.uint8)
    frames = []
    for i in range(n):
        f = background.copy()
        x, y = 4 + (i * 7) // 6 % max(1, w - box - 8), 6 + (i // 3) % max(1, h - box - 12)
        f[y:y + box, x:x + box] = patch
        frames.append(f)
    return frames


def square_position(i: int, size: tuple[int, int] = (64, 48), box: int = 12) -> tuple[int, int]:
    """Top-left corner (x, y) of the square of :func:`moving_square` in frame ``i``."""
    w, h = size
    return 4 + (i * 7) // 6 % max(1, w - box - 8), 6 + (i // 3) % max(1, h - box - 12)


def write_clip(path: str | Path, frames: Iterable[np.ndarray], fps: int = 25, codec: str | None = None,
               gop: int = 10, rotation: int = 0, durations: Sequence[int] | None = None) -> Path:
    """Encode RGB ``frames`` (any iterable: a generator keeps memory small) into ``path`` (container
    from the suffix). ``durations``: per-frame durations in milliseconds (a 1/1000 s time base), for
    a variable-frame-rate clip."""
    import av

    path = Path(path)
    codec = codec or pick_codec()
    it = iter(frames)
    first = next(it)
    h, w = first.shape[:2]
    with av.open(str(path), mode="w") as out:
        stream: Any = out.add_stream(codec, rate=fps)
        stream.width, stream.height = w, h
        stream.pix_fmt = "yuv420p"
        stream.gop_size = gop
        if codec == "libx264":
            stream.options = {"preset": "ultrafast", "bframes": "0"}
        if durations is not None:
            stream.codec_context.time_base = Fraction(1, 1000)
        if rotation:
            stream.set_display_rotation(rotation)
        t = 0
        for i, a in enumerate(_chain(first, it)):
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(a), format="rgb24")
            if durations is not None:
                vf.pts, vf.time_base = t, Fraction(1, 1000)
                t += int(durations[i])
            for packet in stream.encode(vf):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def _chain(first: np.ndarray, rest: Iterable[np.ndarray]) -> Iterable[np.ndarray]:
    yield first
    yield from rest
