"""Video benchmark (#16): opening a long 1080p clip and tracking a region through 100 frames.

A synthetic 1080p H.264 clip (a textured plate-sized patch moving 2 px right and 1 px down per
frame over a smooth background) is encoded once for one group of pictures and remuxed, without
re-encoding, until it is ``--minutes`` long. Measured in the same run, each against a plain
baseline:

* **open**: :func:`core.video.open_clip` + :meth:`Clip.first_frame` vs plain PyAV (``av.open``,
  the first decoded frame to RGB); target under 2 s. The index (demuxing every packet), the file's
  SHA-256 and a random seek are timed too (the app runs them in a worker).
* **track**: :func:`core.video.track.track_region` over frames 0-99 of a 160x40 box vs decoding the
  same 100 frames alone; target under 5 s. The NCC step alone is compared with OpenCV's
  ``matchTemplate`` (TM_CCOEFF_NORMED) on the same windows when ``cv2`` is installed.

    python -m benchmarks.bench_video [--minutes 10] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

SIZE = (1920, 1080)
GOP = 125
FPS = 25
BOX = (400, 500, 160, 40)  # x, y, w, h in frame 0


def _frame(i: int, patch: np.ndarray, background: np.ndarray) -> np.ndarray:
    f = background.copy()
    x, y = BOX[0] + 2 * i, BOX[1] + i
    f[y:y + patch.shape[0], x:x + patch.shape[1]] = patch
    return f


def make_long_clip(path: Path, minutes: float) -> dict[str, Any]:
    """Encode one GOP of 1080p frames, then remux its packets until the clip is ``minutes`` long."""
    import av

    from core.video.synthetic import write_clip

    rng = np.random.default_rng(0)
    w, h = SIZE
    yy, xx = np.mgrid[0:h, 0:w]
    background = np.stack([(xx * 255 // w), (yy * 255 // h), ((xx + yy) * 255 // (w + h))], -1).astype(np.uint8)
    patch = np.kron((rng.random((BOX[3] // 4, BOX[2] // 4, 1)) * 255).astype(np.uint8), np.ones((4, 4, 3), np.uint8))
    t0 = time.perf_counter()
    gop = Path(str(path) + ".gop.mp4")
    write_clip(gop, (_frame(i, patch, background) for i in range(GOP)), fps=FPS, codec="libx264", gop=GOP)
    encode_s = time.perf_counter() - t0
    reps = max(1, round(minutes * 60 * FPS / GOP))
    t0 = time.perf_counter()
    with av.open(str(path), "w") as out:
        stream: Any = None
        for r in range(reps):
            with av.open(str(gop)) as src:
                s = src.streams.video[0]
                if stream is None:
                    stream = out.add_stream_from_template(s)
                step = int(round(1 / (FPS * s.time_base)))
                for packet in src.demux(s):
                    if packet.dts is None:
                        continue
                    packet.pts += r * GOP * step
                    packet.dts += r * GOP * step
                    packet.stream = stream
                    out.mux(packet)
    gop.unlink()
    return {"frames": reps * GOP, "minutes": round(reps * GOP / FPS / 60, 2),
            "size_mb": round(path.stat().st_size / 1e6, 1), "encode_gop_s": round(encode_s, 2),
            "remux_s": round(time.perf_counter() - t0, 2)}


def bench_open(path: Path, reps: int) -> dict[str, Any]:
    import av

    from core.video import open_clip

    plain, ours = [], []
    for _ in range(reps):
        t = time.perf_counter()
        with av.open(str(path)) as c:
            next(iter(c.decode(video=0))).to_ndarray(format="rgb24")
        plain.append(time.perf_counter() - t)
        t = time.perf_counter()
        with open_clip(path) as clip:
            clip.first_frame()
        ours.append(time.perf_counter() - t)
    with open_clip(path) as clip:
        t = time.perf_counter()
        n = len(clip.index())
        index_s = time.perf_counter() - t
        t = time.perf_counter()
        clip.sha256()
        sha_s = time.perf_counter() - t
        seeks = []
        for i in np.random.default_rng(0).integers(0, n, 5):
            t = time.perf_counter()
            clip.frame(int(i))
            seeks.append(time.perf_counter() - t)
    p, o = statistics.median(plain), statistics.median(ours)
    return {"plain_first_frame_s": round(p, 3), "open_first_frame_s": round(o, 3), "ratio": round(o / p, 2),
            "target_s": 2.0, "met": o < 2.0, "index_s": round(index_s, 2), "frames_indexed": n,
            "sha256_s": round(sha_s, 2), "random_seek_s_median": round(statistics.median(seeks), 3)}


def bench_track(path: Path, frames: int) -> dict[str, Any]:
    from core.video import open_clip
    from core.video.track import Box, track_region

    with open_clip(path) as clip:
        clip.index()
        t = time.perf_counter()
        for i in range(frames):
            clip.frame(i)
        decode_s = time.perf_counter() - t
    with open_clip(path) as clip:
        clip.index()
        x, y, w, h = BOX
        t = time.perf_counter()
        track = track_region(lambda i: clip.frame(i).image, {0: Box(x, y, w, h)}, range(frames))
        track_s = time.perf_counter() - t
    err = max(max(abs(p.box.x - (x + 2 * i)), abs(p.box.y - (y + i))) for i, p in track.points.items())
    out: dict[str, Any] = {"frames": frames, "plain_decode_s": round(decode_s, 2), "track_s": round(track_s, 2),
                           "ratio": round(track_s / decode_s, 2), "target_s": 5.0, "met": track_s < 5.0,
                           "max_error_px": round(err, 2),
                           "min_score": round(min(p.score for p in track.points.values()), 3)}
    out.update(_ncc_vs_opencv(path))
    return out


def _ncc_vs_opencv(path: Path, n: int = 50) -> dict[str, Any]:
    """The matching step alone: torch NCC vs cv2.matchTemplate on the same search windows."""
    from core.video import open_clip
    from core.video.track import ncc_map, to_luma

    x, y, w, h = BOX
    with open_clip(path) as clip:
        first = to_luma(clip.frame(0).image)
        tpl = first[y - 20:y + h + 20, x - 20:x + w + 20].contiguous()
        wins = [to_luma(clip.frame(i).image)[y + i - 60:y + i + h + 60, x + 2 * i - 60:x + 2 * i + w + 60].contiguous()
                for i in range(1, n + 1)]
    t = time.perf_counter()
    ours = [ncc_map(s, tpl) for s in wins]
    torch_s = time.perf_counter() - t
    res: dict[str, Any] = {"ncc_windows": n, "ncc_torch_ms": round(1000 * torch_s / n, 2)}
    try:
        import cv2
    except ImportError:
        res["ncc_opencv_ms"] = None
        return res
    t = time.perf_counter()
    theirs = [cv2.matchTemplate(s.numpy(), tpl.numpy(), cv2.TM_CCOEFF_NORMED) for s in wins]
    cv_s = time.perf_counter() - t
    same = all(np.unravel_index(np.argmax(a), a.shape) == np.unravel_index(int(b.argmax()), b.shape)
               for a, b in zip(theirs, ours, strict=True))
    res.update(ncc_opencv_ms=round(1000 * cv_s / n, 2), ncc_torch_over_opencv=round(torch_s / cv_s, 2),
               same_peaks=same)
    return res


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bench_video", description=__doc__.split("\n")[0])
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--frames", type=int, default=100)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "long-1080p.mp4"
        res = {"clip": make_long_clip(path, args.minutes), "threads": torch.get_num_threads()}
        res["open"] = bench_open(path, args.reps)
        res["track"] = bench_track(path, args.frames)
    print(json.dumps(res, indent=1))
    if args.json:
        args.json.write_text(json.dumps(res, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
