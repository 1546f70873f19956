"""The frame browser in the real window (#16): open a clip, step frames, use one as the evidence, track the
marked plate row, drop a frame, combine the frames into a recorded candidate; a damaged clip is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt

pytest.importorskip("av")

from core.video import open_clip  # noqa: E402
from core.video.frames import FrameEvidence  # noqa: E402
from core.video.synthetic import moving_square, square_position, write_clip  # noqa: E402
from tests.gui.helpers import WAIT_MS, drag  # noqa: E402

SIZE, BOX = (96, 64), 24
SLOW_MS = 4 * WAIT_MS  # combining loads the plate reader and draws candidates for every frame: slow on a busy CPU


def _idle(dock) -> bool:
    return not dock.runner.busy and not dock._decoding


def _evidence_frame(w) -> int | None:
    ev = w.session.evidence
    return ev.frame_index if isinstance(ev, FrameEvidence) else None


def test_open_step_track_and_combine(qtbot, make_window, gui_models: Path, tmp_path: Path) -> None:
    path = write_clip(tmp_path / "street.mp4", moving_square(30, SIZE, BOX), fps=25, gop=4)
    w = make_window(gui_models)
    assert w.open_path(path)
    dock = w.video_dock
    qtbot.waitUntil(lambda: dock.indexed is not None and dock.frame is not None and _idle(dock), timeout=WAIT_MS)
    assert dock.frame.index == 0 and dock.indexed.n_frames == 30 and "Frame 0 of 0\u201329" in dock.frame_label.text()
    assert dock.indexed.sha256[:16] in dock.info.text() and dock.info.toolTip() == dock.indexed.sha256

    qtbot.mouseClick(dock.next_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(dock.next_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dock.frame.index == 2 and _idle(dock), timeout=WAIT_MS)
    w.menu_actions["previous_frame"].trigger()
    qtbot.waitUntil(lambda: dock.frame.index == 1 and _idle(dock), timeout=WAIT_MS)
    dock.time_box.setValue(0.41)  # by timestamp: the frame shown at 0.41 s is frame 10 (25 fps)
    qtbot.waitUntil(lambda: dock.frame.index == 10 and _idle(dock), timeout=WAIT_MS)
    assert dock.time_box.value() == pytest.approx(0.4)
    dock.scrubber.setValue(25)  # the square is away from the frame's edge there
    qtbot.waitUntil(lambda: dock.frame.index == 25 and _idle(dock), timeout=WAIT_MS)
    with open_clip(path) as clip:
        assert dock.frame.sha256 == clip.frame(25).sha256  # frame-accurate

    w.menu_actions["use_frame"].trigger()  # the frame's PNG and hash are made in the worker
    qtbot.waitUntil(lambda: _evidence_frame(w) == 25 and _idle(dock), timeout=WAIT_MS)
    ev = w.session.evidence
    assert isinstance(ev, FrameEvidence) and ev.frame_index == 25 and ev.label == "street.mp4 frame 25"
    assert ev.load_info["video"]["clip_sha256"] == dock.indexed.sha256
    w.input_panel.domain.setCurrentIndex(w.input_panel.domain.findData("plate"))
    w.session.set_cells(2)
    x, y = square_position(25, SIZE, BOX)
    drag(w.view, (x, y), (x + BOX, y + BOX))
    assert w.session.region is not None and w.session.region.kind == "box"

    dock.reach.setValue(3)
    qtbot.mouseClick(dock.track_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dock.result is not None and _idle(dock), timeout=WAIT_MS)
    pts = dock.result.track.points
    assert sorted(pts) == list(range(22, 29)) and dock.table.rowCount() == 7
    for i, p in pts.items():
        tx, ty = square_position(i, SIZE, BOX)
        assert abs(p.box.x - tx) < 1.0 and abs(p.box.y - ty) < 1.0 and p.score > 0.6, (i, p)
    assert sorted(r["index"] for r in dock.result.records.values()) == list(range(22, 29))
    dock.table.item(1, 0).setCheckState(Qt.CheckState.Unchecked)  # frame 23: drop it
    assert pts[23].dropped and not pts[24].dropped

    dock.go_to(26)  # a correction: frame 26 as the evidence (its tracked box is the region), re-marked, Track
    qtbot.waitUntil(lambda: dock.frame.index == 26 and _idle(dock), timeout=WAIT_MS)
    assert dock.use_frame()
    qtbot.waitUntil(lambda: _evidence_frame(w) == 26 and _idle(dock), timeout=WAIT_MS)
    assert w.session.region is not None and w.session.region.box[0] == pytest.approx(pts[26].box.x)
    x, y = square_position(26, SIZE, BOX)
    w.menu_actions["whole_image"].trigger()  # W first: a drag on the old box's side would move a cell edge
    drag(w.view, (x, y), (x + BOX, y + BOX))
    assert w.session.region.kind == "box" and w.session.cell_edges == [0.0, 0.5, 1.0]  # the row still equal
    qtbot.mouseClick(dock.track_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dock.result.track.points[26].source == "corrected" and _idle(dock), timeout=WAIT_MS)
    pts = dock.result.track.points
    assert sorted(pts) == list(range(22, 30)) and pts[25].source == "marked" and pts[23].dropped

    w.input_panel.n.setValue(4)
    assert dock.combine_button.isEnabled()
    qtbot.mouseClick(dock.combine_button, Qt.MouseButton.LeftButton)
    try:
        qtbot.waitUntil(lambda: len(w.grid.candidate_ids()) == 1 and _idle(dock), timeout=SLOW_MS)
    except Exception as e:  # say what the dock and the window said
        raise AssertionError(f"{dock.status.text()!r} / {w.message_label.text()!r} / {w.runner.busy}") from e
    cid = w.grid.candidate_ids()[0]
    c = w.session.candidates[cid]
    assert c.kind == "video-plate" and [f["index"] for f in c.recipe["frames"]] == [22, 24, 25, 26, 27, 28, 29]
    assert c.recipe["clip"]["sha256"] == dock.indexed.sha256 and w.session.current is c
    assert all(f["region"]["kind"] == "box" for f in c.recipe["frames"])  # the marked box, moved with the track
    assert w.plate_dock.result is not None and w.plate_dock.strings_table.rowCount() > 0
    assert dock.current_reading() is not None and w.combined_reading() is not None
    w.plate_dock.search()  # Read & search on the combined candidate searches the combined reading
    qtbot.waitUntil(lambda: not w.runner.busy, timeout=WAIT_MS)
    assert "Select a plate row" not in w.plate_dock.status.text()


def test_face_candidates_from_every_tracked_frame(qtbot, make_window, gui_models: Path, tmp_path: Path) -> None:
    path = write_clip(tmp_path / "lobby.mkv", moving_square(30, SIZE, BOX), fps=25, gop=4)
    w = make_window(gui_models)
    w.open_path(path)
    dock = w.video_dock
    qtbot.waitUntil(lambda: dock.indexed is not None and _idle(dock), timeout=WAIT_MS)
    dock.go_to(24)
    qtbot.waitUntil(lambda: dock.frame.index == 24 and _idle(dock), timeout=WAIT_MS)
    assert dock.use_frame() and w.session.domain == "face"
    qtbot.waitUntil(lambda: _evidence_frame(w) == 24 and _idle(dock), timeout=WAIT_MS)
    x, y = square_position(24, SIZE, BOX)
    drag(w.view, (x, y), (x + BOX, y + BOX))
    dock.reach.setValue(2)
    w.menu_actions["track"].trigger()
    qtbot.waitUntil(lambda: dock.result is not None and _idle(dock), timeout=WAIT_MS)
    dock.set_dropped(23)
    w.input_panel.n.setValue(4)
    w.menu_actions["combine_frames"].trigger()
    qtbot.waitUntil(lambda: len(w.grid.candidate_ids()) == 16 and _idle(dock), timeout=SLOW_MS)
    frames = sorted({w.session.candidates[c].recipe["frame"]["index"] for c in w.grid.candidate_ids()})
    assert frames == [22, 24, 25, 26] and len(w.session.sets) == 4
    assert all(w.session.candidates[c].kind == "video-face" for c in w.grid.candidate_ids())
    assert w.face_search_dock.source.currentIndex() == 1  # every frame's candidates, searched together
    from varsr_gui.search_dock import SOURCES, face_candidates

    assert len(face_candidates(w.session, SOURCES[1])) == 16


def test_tracking_reports_progress_and_stops_when_cancelled(tmp_path: Path) -> None:
    from core.errors import GenerationCancelled
    from core.video.track import Box
    from varsr_gui import video_work as W

    class Ctx:
        def __init__(self, stop_after: int) -> None:
            self.calls: list[tuple[int, int]] = []
            self.stop_after = stop_after

        def progress(self, i: int, n: int) -> None:
            self.calls.append((i, n))

        def cancelled(self) -> bool:
            return len(self.calls) >= self.stop_after

    path = write_clip(tmp_path / "c.avi", moving_square(30, SIZE, BOX), fps=25, codec="mpeg4")
    x, y = square_position(20, SIZE, BOX)
    with open_clip(path) as clip:
        ctx = Ctx(10**6)
        done = W.track(clip, {20: Box(x, y, BOX, BOX)}, range(15, 26), ctx, dropped={17})  # type: ignore[arg-type]
        assert sorted(done.track.points) == list(range(15, 26)) and done.track.points[17].dropped
        assert ctx.calls[-1] == (11, 11) and len(done.records) == 11
        with pytest.raises(GenerationCancelled):
            W.track(clip, {20: Box(x, y, BOX, BOX)}, range(0, 30), Ctx(3))  # type: ignore[arg-type]


def test_the_last_clip_opened_wins(qtbot, make_window, gui_models: Path, tmp_path: Path) -> None:
    a = write_clip(tmp_path / "a.mp4", moving_square(6), fps=25)
    b = write_clip(tmp_path / "b.mov", moving_square(9, seed=1), fps=25)
    w = make_window(gui_models)
    w.open_path(a)
    w.open_path(b)  # before a has opened
    dock = w.video_dock
    qtbot.waitUntil(lambda: dock.indexed is not None and _idle(dock), timeout=WAIT_MS)
    assert dock.path == b and dock.indexed.n_frames == 9 and "b.mov" in dock.info.text()


def test_a_damaged_clip_gets_a_clear_message(qtbot, make_window, gui_models: Path, tmp_path: Path,
                                             dialogs: list) -> None:
    good = write_clip(tmp_path / "good.mp4", moving_square(8), fps=25)
    bad = tmp_path / "cut.mp4"
    bad.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 3])  # cut before the index (moov) atom
    w = make_window(gui_models)
    w.open_path(bad)
    qtbot.waitUntil(lambda: bool(dialogs) and not w.runner.busy, timeout=WAIT_MS)
    assert "could not be decoded" in dialogs[-1].text() and w.video_dock.clip is None
    assert w.session.evidence is None


def test_a_truncated_mkv_opens_with_its_note(qtbot, make_window, gui_models: Path, tmp_path: Path) -> None:
    full = write_clip(tmp_path / "full.mkv", moving_square(20), fps=25)
    part = tmp_path / "part.mkv"
    part.write_bytes(full.read_bytes()[: full.stat().st_size * 6 // 10])
    w = make_window(gui_models)
    w.open_path(part)
    dock = w.video_dock
    qtbot.waitUntil(lambda: dock.indexed is not None and _idle(dock), timeout=WAIT_MS)
    assert 0 < dock.indexed.n_frames < 20 and "truncated" in dock.info.text()
    assert "truncated" in w.message_label.text()  # said in the window too, not only in the dock



def test_a_saved_video_case_reopens_with_its_clip(qtbot, make_window, gui_models: Path, tmp_path: Path) -> None:
    from core.case.regenerate import verify_case

    (tmp_path / "incoming").mkdir()
    path = write_clip(tmp_path / "incoming" / "street.mp4", moving_square(30, SIZE, BOX), fps=25, gop=4)
    w = make_window(gui_models)
    assert w.case_actions.new_case(tmp_path / "CASE-V", "Examiner V") is not None
    w.open_path(path)
    dock = w.video_dock
    qtbot.waitUntil(lambda: dock.indexed is not None and _idle(dock), timeout=WAIT_MS)
    dock.go_to(25)
    qtbot.waitUntil(lambda: dock.frame.index == 25 and _idle(dock), timeout=WAIT_MS)
    dock.use_frame()
    qtbot.waitUntil(lambda: _evidence_frame(w) == 25 and _idle(dock), timeout=WAIT_MS)
    w.input_panel.domain.setCurrentIndex(w.input_panel.domain.findData("plate"))
    w.session.set_cells(2)
    x, y = square_position(25, SIZE, BOX)
    drag(w.view, (x, y), (x + BOX, y + BOX))
    dock.reach.setValue(2)
    dock.track()
    qtbot.waitUntil(lambda: dock.result is not None and _idle(dock), timeout=WAIT_MS)
    w.input_panel.n.setValue(4)
    dock.combine()
    qtbot.waitUntil(lambda: len(w.grid.candidate_ids()) == 1 and _idle(dock), timeout=SLOW_MS)
    cid = w.grid.candidate_ids()[0]
    w.session.star(cid)
    assert w.case_actions.save_case()
    path.unlink()  # only the case's copy of the clip is left

    w2 = make_window(gui_models, tmp_path / "settings2.ini")
    case = w2.case_actions.open_case(tmp_path / "CASE-V", recover=False)
    assert case is not None and [r.status for r in verify_case(case, [cid])] == ["identical"]
    w2.show_candidate(cid)
    w2.plate_dock.search()  # the recorded combined reading, without the clip
    qtbot.waitUntil(lambda: w2.plate_dock.result is not None and not w2.runner.busy, timeout=WAIT_MS)
    w2.menu_actions["open_case_clip"].trigger()
    d2 = w2.video_dock
    qtbot.waitUntil(lambda: d2.indexed is not None and _idle(d2), timeout=WAIT_MS)
    assert d2.name == "street.mp4" and d2.path.parent.name == "originals" and d2.indexed.n_frames == 30
    assert d2.indexed.sha256 == case.session.candidates[cid].recipe["clip"]["sha256"]
