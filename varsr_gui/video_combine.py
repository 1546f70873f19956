"""Combining a track's frames, for the video dock (a mixin of :class:`~varsr_gui.video_dock.VideoDock`).

Plates: every used frame's row is read and the readings are combined into one ``video-plate``
candidate, whose ranked strings and registry plates the plate search dock shows. Faces: ``n``
candidates from every used frame (one set per frame, ``video-face`` recipes), and the face search is
set to search all face candidates together. The work runs in the window's task runner.
"""

from __future__ import annotations

from typing import Any

from core.video.frames import FrameEvidence
from core.video.plate_frames import PlateFrames, recorded_reading
from core.workbench.candidates import Candidate
from varsr_gui import video_work as W


class VideoCombining:
    """Combine frames (the dock's attributes: ``session``, ``window_``, ``runner``, ``clip``, ``path``, ``result``)."""

    session: Any
    window_: Any
    runner: Any
    clip: Any
    path: Any
    result: W.Tracked | None
    readings: dict[str, tuple[Any, dict[str, Any]]]
    name: str
    quality: Any
    _task: Any

    def combine(self) -> None:
        """Read the used frames in the worker: plates combined into one candidate, faces one set per frame."""
        s, w = self.session, self.window_
        if self.result is None or self.clip is None or self.path is None:
            self._say("Track the region first.")
            return
        used = self.result.track.used()
        if not used:
            self._say("Every frame is unticked: tick at least one.")
            return
        how = W.Combining(s.chosen_model(), s.cell_geometry(), w.input_panel.n.value(),
                          w.input_panel.seed.value(), w.input_panel.temperature.value(),
                          str(self.quality.currentData()), w.plate_dock.registry, w.plate_dock.top.value(),
                          self.name)
        clip, path, tracked = self.clip, self.path, self.result
        ev, region = s.evidence, s.region
        on_track = isinstance(ev, FrameEvidence) and ev.frame_index in tracked.track.points and region is not None
        if s.domain == "face":
            if not on_track:
                self._say("Faces: the evidence must be a tracked frame of this clip with the face marked on it.")
                return
            anchor = (ev.frame_index, tracked.track.points[ev.frame_index].box)
            if how.n * len(used) > s.max_candidates:  # the session would drop the first frames' sets again
                self._say(f"{how.n} candidates from each of {len(used)} frames is more than the session keeps "
                          f"({s.max_candidates}): lower the count or untick frames.")
                return
            self._busy(f"Drawing {how.n} candidates from each of {len(used)} frames\u2026")
            self._task = self.runner.submit(
                "Face candidates from frames", lambda ctx: W.face_frames(s, clip, path, tracked, anchor, region,
                                                                         how, ctx),
                self._faces_done, self._failed, self._progress, self._cancelled)
        else:
            moves = (tracked.track.points[ev.frame_index].box, region) if on_track else None
            self._busy(f"Reading {len(used)} frames\u2026")
            self._task = self.runner.submit(
                "Combining frames", lambda ctx: W.combine_frames(s, clip, path, tracked, how, ctx, moves),
                self._combined, self._failed, self._progress, self._cancelled)
        self._enable()

    def _faces_done(self, per_frame: list[tuple[int, list[Candidate]]]) -> None:
        self._idle()
        name = self.name
        first = None
        for i, cands in per_frame:
            cset = self.session.add_set(f"{name} frame {i}", cands)
            first = first or cset.candidate_ids[0]
        if first is not None:
            self.window_.show_candidate(first)
        dock = self.window_.face_search_dock
        dock.source.setCurrentIndex(1)  # all face candidates: every frame's, searched together
        dock.show()
        dock.raise_()
        self._say(f"{sum(len(c) for _, c in per_frame)} candidates from {len(per_frame)} frames. The face search "
                  "ranks a gallery against all of them together (leads, never an identification).")

    def _combined(self, res: tuple[PlateFrames, Any]) -> None:
        out, result = res
        self._idle()
        frames = [f["index"] for f in out.frames]
        name = self.name
        cset = self.session.add_set(f"{name}: {len(frames)} frames combined ({frames[0]}\u2013{frames[-1]})",
                                    [out.candidate])
        cid = cset.candidate_ids[0]
        used = {"row": cid, "set": cset.id, "video_frames": frames,
                "weights": [f["weight"] for f in out.frames], "k": out.candidate.recipe["n"]}
        self.readings[cid] = (out.reading, used)
        reading = out.candidate.recipe["result"]["reading"]
        self._say(f"{cid}: {len(frames)} frames combined; most likely reading {reading} (a lead, not a reading of "
                  "the plate). The plate search shows the ranked strings and registry plates.")
        dock = self.window_.plate_dock
        self.window_.show_candidate(cid)
        dock.show_result(result)
        dock.show()
        dock.raise_()
        clf = out.candidate.recipe.get("classifier") or {}
        dock.hits_found.emit({**result.to_dict(), "top": dock.top.value(), "classifier": clf, "candidates": used})

    def current_reading(self) -> tuple[Any, dict[str, Any]] | None:
        """The combined reading of the selected candidate, when it is a combination of frames (also one
        of a reopened case: the recipe records it)."""
        cur = self.session.current
        if cur is None:
            return None
        if cur.id not in self.readings and (reading := recorded_reading(cur.recipe)) is not None:
            frames = cur.recipe.get("frames") or []
            self.readings[cur.id] = (reading, {"row": cur.id, "video_frames": [f.get("index") for f in frames],
                                               "weights": [f.get("weight") for f in frames], "k": cur.recipe.get("n")})
        return self.readings.get(cur.id)

    # provided by the dock
    def _say(self, text: str) -> None: ...
    def _busy(self, text: str) -> None: ...
    def _idle(self) -> None: ...
    def _enable(self) -> None: ...
    def _failed(self, text: str) -> None: ...
    def _progress(self, i: int, n: int) -> None: ...
    def _cancelled(self) -> None: ...
