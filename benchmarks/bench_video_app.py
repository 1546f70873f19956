"""Video in the app (#16): a long 1080p clip opened, stepped and tracked in the real window (offscreen).

The clip of :mod:`benchmarks.bench_video` (one encoded GOP remuxed to ``--minutes``) is opened with
File > Open's path; measured: the time until the first frame is shown, until the index and SHA-256
are in, a step to the next frame (median of 20), tracking the patch through frames 0-99 (from the
frame used as evidence, reach 99), and in every phase the **longest pause of the window's event
loop** (the longest single turn of the loop while waiting: what an analyst would feel as a freeze).
The plain baseline in the same run: PyAV opening the clip and decoding its first frame to RGB.

    python -m benchmarks.bench_video_app [--minutes 10] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.bench_video import BOX, make_long_clip


class Loop:
    """Runs the Qt event loop until a condition holds, keeping the longest single turn."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.longest = 0.0

    def until(self, cond: Callable[[], bool], timeout: float = 600.0) -> float:
        from PySide6.QtCore import QEventLoop

        t0 = time.perf_counter()
        while not cond():
            t = time.perf_counter()
            self.app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 5)
            self.longest = max(self.longest, time.perf_counter() - t)
            if time.perf_counter() - t0 > timeout:
                raise TimeoutError("the window did not finish in time")
            time.sleep(0.001)
        return time.perf_counter() - t0

    def phase(self) -> float:
        """The longest turn since the last call, in milliseconds (and start a new phase)."""
        out, self.longest = self.longest * 1000, 0.0
        return round(out, 1)


def baseline_first_frame(path: Path) -> float:
    import av

    t0 = time.perf_counter()
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            f.to_ndarray(format="rgb24")
            break
    return time.perf_counter() - t0


def run(minutes: float) -> dict[str, Any]:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from core.video.frames import FrameEvidence
    from core.workbench.evidence import Region
    from varsr_gui.main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "long.mp4"
        made = make_long_clip(clip, minutes)
        base = statistics.median(baseline_first_frame(clip) for _ in range(3))
        (Path(tmp) / "models").mkdir()
        w = MainWindow(models_root=Path(tmp) / "models",
                       settings=QSettings(str(Path(tmp) / "settings.ini"), QSettings.Format.IniFormat))
        w.confirm_quit = False
        w.show()
        loop = Loop(app)
        loop.until(lambda: True)
        loop.phase()
        t0 = time.perf_counter()
        w.open_path(clip)
        dock = w.video_dock
        loop.until(lambda: dock.frame is not None)
        first = time.perf_counter() - t0
        loop.until(lambda: dock.indexed is not None and not w.runner.busy)
        indexed = time.perf_counter() - t0
        open_pause = loop.phase()
        steps = []
        for k in range(1, 21):
            t = time.perf_counter()
            dock.step(1)
            loop.until(lambda k=k: dock.frame.index == k and not dock._decoding)
            steps.append(time.perf_counter() - t)
        step_pause = loop.phase()
        dock.go_to(0)
        loop.until(lambda: dock.frame.index == 0 and not dock._decoding)
        dock.use_frame()
        loop.until(lambda: isinstance(w.session.evidence, FrameEvidence) and not w.runner.busy)
        x, y, bw, bh = BOX
        w.session.set_region(Region.from_box(x, y, x + bw, y + bh))
        loop.phase()
        dock.reach.setValue(99)
        t = time.perf_counter()
        dock.track()
        loop.until(lambda: dock.result is not None and not w.runner.busy)
        track_s = time.perf_counter() - t
        track_pause = loop.phase()
        err = max(abs(p.box.x - (x + 2 * i)) + abs(p.box.y - (y + i)) for i, p in dock.result.track.points.items())
        w.runner.shutdown()
        w.close()
        info = dock.indexed.info
    return {"clip": {"minutes": minutes, "size": [info["width"], info["height"]], "frames": info["n_frames"],
                     "bytes": info["size_bytes"], **{k: v for k, v in made.items() if k.endswith("_s")}},
            "first_frame_shown_s": round(first, 3), "baseline_av_first_frame_s": round(base, 3),
            "ratio": round(first / base, 2) if base else None, "indexed_and_hashed_s": round(indexed, 3),
            "step_median_s": round(statistics.median(steps), 4), "track_100_frames_s": round(track_s, 3),
            "track_error_px": round(err, 3),
            "longest_event_loop_turn_ms": {"open": open_pause, "stepping": step_pause, "tracking": track_pause}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    out = run(args.minutes)
    text = json.dumps(out, indent=1)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
