"""The frame browser (issue 16): open a clip, scrub and step frame by frame, make a frame the evidence,
track the marked region through neighbouring frames, drop bad frames and combine a plate row's frames.

All decoding runs in the window's task runner (:mod:`varsr_gui.video_work`); the GUI thread only shows
frames. Stepping coalesces: while a frame decodes, only the last frame asked for is decoded next.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPen, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDockWidget,
    QDoubleSpinBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSlider,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from core.video.clip import Clip, Frame
from core.video.combine import DEFAULT_QUALITY, QUALITIES
from core.video.frames import FrameEvidence, box_region, frame_evidence, is_video, moved, region_box
from varsr_gui import video_work as W
from varsr_gui.video_combine import VideoCombining

PREVIEW_WIDTH = 380
DOUBTFUL = QColor(120, 80, 20)
COLUMNS = ["Use", "Frame", "Time (s)", "Score", "How"]


def frame_qimage(image: np.ndarray) -> QImage:
    """An RGB ``(H, W, 3)`` uint8 array as a QImage (a copy)."""
    a = np.ascontiguousarray(image)
    h, w = a.shape[:2]
    return QImage(a.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


class VideoDock(VideoCombining, QDockWidget):
    """Browse a clip, track a region, combine frames (see the module docstring)."""

    frame_shown = Signal(int)
    tracked = Signal(object)
    combined = Signal(str)

    def __init__(self, window: Any) -> None:
        super().__init__("Video", window)
        self.setObjectName("video_dock")
        self.window_ = window
        self.session = window.session
        self.runner = window.runner
        self.clip: Clip | None = None
        self.path: Path | None = None
        self.indexed: W.Indexed | None = None
        self.frame: Frame | None = None
        self.result: W.Tracked | None = None
        self.readings: dict[str, tuple[Any, dict[str, Any]]] = {}
        self._wanted: int | None = None
        self._decoding = False
        self._task: Any = None
        #: The frame the region was first marked on, its box and the region itself (moved to other frames).
        self._marked: tuple[int, Any, Any] | None = None
        self._opening: object = None  # the latest open request (an earlier one that ends later is closed)
        self.first_time: float | None = None
        self._name = ""
        self._build()

    # -- layout ----------------------------------------------------------------------------------
    def _build(self) -> None:
        body = QWidget()
        lay = QVBoxLayout(body)
        self.info = QLabel("Open a clip: File > Open (MP4, AVI, MKV, MOV).")
        self.info.setWordWrap(True)
        self.info.setTextFormat(Qt.TextFormat.PlainText)
        lay.addWidget(self.info)
        self.preview = QLabel()
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview.setMinimumSize(200, 120)
        self.preview.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)  # the dock may shrink
        self._pixmap: QPixmap | None = None
        self.preview.installEventFilter(self)
        lay.addWidget(self.preview, 1)
        row = QHBoxLayout()
        self.prev_button = QPushButton("\u25c0")
        self.prev_button.setToolTip("Previous frame (,)")
        self.next_button = QPushButton("\u25b6")
        self.next_button.setToolTip("Next frame (.)")
        self.scrubber = QSlider(Qt.Orientation.Horizontal)
        self.scrubber.setRange(0, 0)
        row.addWidget(self.prev_button)
        row.addWidget(self.scrubber, 1)
        row.addWidget(self.next_button)
        lay.addLayout(row)
        row = QHBoxLayout()
        self.frame_label = QLabel("")
        self.time_box = QDoubleSpinBox()
        self.time_box.setDecimals(3)
        self.time_box.setSuffix(" s")
        self.time_box.setToolTip("Go to the frame shown at this time (by timestamp: right for variable frame rate)")
        self.time_box.setKeyboardTracking(False)
        row.addWidget(self.frame_label, 1)
        row.addWidget(self.time_box)
        lay.addLayout(row)
        self.use_button = QPushButton("Use this frame as the evidence")
        self.use_button.setToolTip("The frame (decoded, never re-encoded) becomes the evidence; mark the face or "
                                   "plate on it, then Track")
        lay.addWidget(self.use_button)
        row = QHBoxLayout()
        self.reach = QSpinBox()
        self.reach.setRange(1, 200)
        self.reach.setValue(8)
        self.reach.setPrefix("\u00b1")
        self.reach.setSuffix(" frames")
        self.track_button = QPushButton("Track")
        self.track_button.setToolTip("Follow the marked region through the neighbouring frames (Ctrl+T)")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        row.addWidget(self.reach)
        row.addWidget(self.track_button, 1)
        row.addWidget(self.cancel_button)
        lay.addLayout(row)
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        lay.addWidget(self.progress)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        lay.addWidget(self.table, 1)
        row = QHBoxLayout()
        self.quality = QComboBox()
        for q in QUALITIES:
            self.quality.addItem(f"weights: {q}", q)
        self.quality.setCurrentIndex(QUALITIES.index(DEFAULT_QUALITY))
        self.combine_button = QPushButton("Combine frames")
        self.combine_button.setToolTip("Plates: read each used frame's row and combine them (weighted product). "
                                       "Faces: candidates from every used frame, for the face search to rank "
                                       "together. Every frame, box and weight is recorded")
        row.addWidget(self.quality)
        row.addWidget(self.combine_button, 1)
        lay.addLayout(row)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        lay.addWidget(self.status)
        self.setWidget(body)
        self.prev_button.clicked.connect(lambda: self.step(-1))
        self.next_button.clicked.connect(lambda: self.step(1))
        self.scrubber.valueChanged.connect(self.go_to)
        self.time_box.valueChanged.connect(self.go_to_time)
        self.use_button.clicked.connect(self.use_frame)
        self.track_button.clicked.connect(self.track)
        self.cancel_button.clicked.connect(self.cancel)
        self.combine_button.clicked.connect(self.combine)
        self.table.cellClicked.connect(self._row_clicked)
        self.table.itemChanged.connect(self._item_changed)
        self._enable()

    def _enable(self) -> None:
        have = self.clip is not None and self.indexed is not None
        for w in (self.prev_button, self.next_button, self.scrubber, self.use_button, self.time_box):
            w.setEnabled(have)
        self.track_button.setEnabled(have and self._task is None)
        self.combine_button.setEnabled(have and self.result is not None and self._task is None)

    def _say(self, text: str) -> None:
        self.status.setText(text)

    # -- opening ---------------------------------------------------------------------------------
    def open_clip(self, path: str | Path, name: str | None = None) -> None:
        """Open a clip in the worker: its first frame at once, then its index and SHA-256 (``name``: the
        clip's own name when ``path`` is a copy, e.g. a case's original)."""
        path = Path(path)
        self.show()
        self.raise_()
        self._name = name or path.name
        self.info.setText(f"Opening {self._name}\u2026")
        old, self.clip, self.indexed, self.frame, self.result = self.clip, None, None, None, None
        self._marked = None
        self._wanted = None
        self._fill_table()
        self._enable()

        def work(ctx: W.TaskContext) -> W.Opened:
            if old is not None:
                old.close()
            return W.open_first(path)

        self._opening = ticket = object()
        self.runner.submit("Opening clip", work, lambda o: self._opened(path, o, ticket),
                           lambda e: self._failed_open(path, e))

    @property
    def name(self) -> str:
        """The clip's name (its own, also when the file read is a case's copy)."""
        return self._name or (self.path.name if self.path else "clip")

    def open_case_clip(self) -> None:
        """Open the open case's copy of a clip (the one the selected candidate was made from, else the last)."""
        case = self.window_.case_actions.case
        if case is None:
            self.window_.show_message("Open a case first: this opens the clip the case keeps.")
            return
        clips = [o for o in case.originals.values() if is_video(o.name)]
        cur = self.session.current
        want = ((cur.recipe.get("clip") or {}).get("sha256") if cur is not None else None)
        pick = next((o for o in clips if o.sha256 == want), clips[-1] if clips else None)
        if pick is None:
            self.window_.show_message(f"The case {case.name} holds no clip.")
            return
        self.open_clip(case.original_path(pick.sha256), pick.name)

    def _failed_open(self, path: Path, text: str) -> None:
        self.info.setText(f"{path.name}: could not be opened.")
        self.window_.show_message(f"Could not open the clip: {text}")
        self.window_.show_error_dialog(
            "Could not open the clip",
            f"The clip {path.name} could not be decoded: it is truncated, damaged, not a video, or in a format "
            "FFmpeg cannot read.", f"{text}\n\nNothing was changed: the file was only read, never modified.")

    def _opened(self, path: Path, o: W.Opened, ticket: object = None) -> None:
        if ticket is not None and ticket is not self._opening:  # another clip was opened meanwhile
            self.runner.submit("Closing clip", lambda ctx: o.clip.close(), lambda _r: None)
            return
        self.clip, self.path, self.first_time = o.clip, path, o.first.time
        self._show(o.first)
        i = o.clip.info
        self.info.setText(f"{path.name}: {i.width}x{i.height}, {i.codec} in {i.container}, {i.fps:g} fps; "
                          "indexing and hashing\u2026")
        clip = o.clip
        self.runner.submit("Indexing clip", lambda ctx: W.index_and_hash(clip, ctx),
                           lambda r: self._indexed(clip, r), lambda e: self._failed_open(path, e))
        if hasattr(self.window_, "add_recent"):
            self.window_.add_recent(path.resolve())

    def _indexed(self, clip: Clip, r: W.Indexed) -> None:
        if clip is not self.clip:
            return
        self.indexed = r
        i = r.info
        notes = "".join(f"\n\u26a0 {n}" for n in i.get("notes") or [])
        self.info.setText(f"{self.name}: {i['width']}x{i['height']}, {i['codec']}, "
                          f"{i['fps']:g} fps, {r.n_frames} frames, {i['duration']:.2f} s\n"
                          f"SHA-256 {r.sha256[:16]}… (whole hash in the tooltip and the case){notes}")
        self.info.setToolTip(r.sha256)
        for w, set_range in ((self.scrubber, lambda: self.scrubber.setRange(0, r.n_frames - 1)),
                             (self.time_box, lambda: self.time_box.setRange(0.0, max(0.0, float(i["duration"]))))):
            w.blockSignals(True)
            set_range()
            w.blockSignals(False)
        if self.frame is not None:
            self._show(self.frame)  # the label now knows the frame count
        if i.get("notes"):
            self.window_.show_message(f"{self.name}: " + "; ".join(i["notes"]),
                                      error=False)
        self._enable()

    # -- browsing --------------------------------------------------------------------------------
    @property
    def index(self) -> int:
        return self.frame.index if self.frame is not None else 0

    def step(self, d: int) -> None:
        """The previous (-1) or next (+1) frame, exactly."""
        base = self._wanted if self._wanted is not None else self.index
        self.go_to(base + d)

    def go_to(self, i: int) -> None:
        """Show frame ``i`` (decoded in the worker; only the latest request is decoded next)."""
        if self.clip is None or self.indexed is None:
            return
        self._wanted = max(0, min(self.indexed.n_frames - 1, int(i)))
        if not self._decoding:
            self._decode_next()

    def go_to_time(self, seconds: float) -> None:
        """Show the frame shown at ``seconds`` from the clip's start (by timestamp)."""
        if self.clip is not None and self.indexed is not None:
            self.go_to(self.clip.index_at(float(seconds)))  # the index is built: no reading here

    def _decode_next(self) -> None:
        i, clip = self._wanted, self.clip
        if i is None or clip is None:
            return
        self._decoding = True

        def failed(text: str) -> None:
            self._decoding = False
            self._wanted = None
            self._say(f"Frame {i} could not be decoded: {text}")
            self.window_.show_message(f"Frame {i} could not be decoded: {text}")

        self.runner.submit("Decoding frame", lambda ctx: clip.frame(i), lambda f: self._decoded(f, clip), failed)

    def _decoded(self, frame: Frame, clip: Clip | None = None) -> None:
        self._decoding = False
        if clip is not None and clip is not self.clip:  # another clip was opened meanwhile
            return
        self._show(frame)
        if self._wanted is not None and self._wanted != frame.index:
            self._decode_next()
        else:
            self._wanted = None

    def _show(self, frame: Frame) -> None:
        self.frame = frame
        img = frame_qimage(frame.image)
        p = self.result.track.points.get(frame.index) if self.result else None
        if p is not None:
            painter = QPainter(img)
            colour = QColor("grey") if p.dropped else (QColor("orange") if p.doubtful else QColor("lime"))
            pen = QPen(colour)
            pen.setWidthF(max(1.0, img.width() / 300))
            if p.dropped:
                pen.setStyle(Qt.PenStyle.DashLine)
            painter.setPen(pen)
            painter.drawRect(round(p.box.x), round(p.box.y), round(p.box.w), round(p.box.h))
            painter.end()
        self._pixmap = QPixmap.fromImage(img)
        self._fit()
        n = self.indexed.n_frames if self.indexed else None
        of = f" of 0\u2013{n - 1}" if n else ""
        key = " \u00b7 keyframe" if frame.keyframe else ""
        self.frame_label.setText(f"Frame {frame.index}{of} \u00b7 {frame.time:.3f} s{key}")
        for w, value in ((self.scrubber, frame.index), (self.time_box, frame.time - self._start_time())):
            w.blockSignals(True)
            w.setValue(value)
            w.blockSignals(False)
        self.frame_shown.emit(frame.index)

    def _fit(self) -> None:
        """Show the frame as large as the preview allows (pixels kept sharp when enlarged)."""
        if self._pixmap is None:
            return
        pm, size = self._pixmap, self.preview.size()
        if size.width() < 2 or size.height() < 2:
            size = size.expandedTo(pm.size().scaled(PREVIEW_WIDTH, PREVIEW_WIDTH, Qt.AspectRatioMode.KeepAspectRatio))
        up = pm.width() < size.width() and pm.height() < size.height()
        mode = Qt.TransformationMode.FastTransformation if up else Qt.TransformationMode.SmoothTransformation
        self.preview.setPixmap(pm.scaled(size, Qt.AspectRatioMode.KeepAspectRatio, mode))

    def eventFilter(self, obj: Any, event: Any) -> bool:  # noqa: N802 - Qt override
        if obj is self.preview and event.type() == QEvent.Type.Resize:
            self._fit()
        return super().eventFilter(obj, event)

    def _start_time(self) -> float:
        """The first frame's timestamp (times in the dock count from it)."""
        return self.first_time if self.first_time is not None else 0.0

    def use_frame(self) -> bool:
        """Make the shown frame the evidence (its PNG encoding and hash are made in the worker); on a tracked
        frame, the marked region moved with the track becomes the region. False when there is no frame."""
        if self.frame is None or self.indexed is None or self.path is None:
            self._say("Open a clip and wait until it is indexed.")
            return False
        path, indexed, frame, name = self.path, self.indexed, self.frame, self.name
        self.runner.submit("Frame as evidence",
                           lambda ctx: frame_evidence(path, indexed.sha256, indexed.info, frame, name),
                           self._use, self._failed)
        return True

    def _use(self, ev: FrameEvidence) -> None:
        if not self.window_.admit_evidence(ev):
            return
        self.session.set_evidence(ev)
        p = self.result.track.points.get(ev.frame_index) if self.result else None
        if p is not None:
            marked = self._marked
            region = (moved(marked[2], p.box.x - marked[1].x, p.box.y - marked[1].y) if marked is not None
                      else box_region(p.box))
            self.session.set_region(region)
        self.window_.set_title(ev.label)
        self.window_.statusBar().showMessage(f"{ev.label} is the evidence (pixel SHA-256 "
                                             f"{ev.video['frame']['sha256'][:12] if ev.video else ''}\u2026); the "
                                             "clip is never modified", 10000)

    # -- tracking --------------------------------------------------------------------------------
    def _anchor(self) -> tuple[int, Any] | None:
        ev = self.session.evidence
        if not isinstance(ev, FrameEvidence) or self.indexed is None or ev.clip_sha256 != self.indexed.sha256:
            self._say("Use a frame of this clip as the evidence and mark the region on it first.")
            return None
        if self.session.region is None:
            self._say("Mark the face or the plate row on the frame first (drag a box).")
            return None
        return ev.frame_index, region_box(self.session.region, ev.image.size)

    def track(self) -> None:
        """Follow the marked region through ± the chosen number of frames (in the worker; cancellable).

        When the evidence frame is already in the track, its region is a correction: the track is made
        again from all its anchors (frames dropped before stay dropped)."""
        got = self._anchor()
        if got is None or self.clip is None or self.indexed is None:
            return
        anchor, box = got
        if self._marked is None or self.result is None or anchor not in self.result.track.points:
            self._marked = (anchor, box, self.session.region)  # the region as marked (a box, eyes or a quad)
        n, reach = self.indexed.n_frames, self.reach.value()
        lo, hi = anchor - reach, anchor + reach
        anchors, dropped, what = {anchor: box}, set(), "Tracking"
        old = self.result.track if self.result else None
        if old is not None and anchor in old.points:
            anchors = {**old.anchors(), anchor: box}
            dropped = {i for i, p in old.points.items() if p.dropped}
            lo, hi, what = min(lo, min(old.points)), max(hi, max(old.points)), f"Correcting frame {anchor}; tracking"
        frames = range(max(0, lo), min(n, hi + 1))
        clip = self.clip
        self._busy(f"{what} frames {frames.start}\u2013{frames.stop - 1}\u2026")
        self._task = self.runner.submit("Tracking", lambda ctx: W.track(clip, anchors, frames, ctx, dropped),
                                        lambda r: self._tracked(r, clip), self._failed, self._progress,
                                        self._cancelled)
        self._enable()

    def _busy(self, text: str) -> None:
        self._say(text)
        self.progress.setValue(0)
        self.progress.setVisible(True)
        self.cancel_button.setEnabled(True)

    def _idle(self) -> None:
        self._task = None
        self.progress.setVisible(False)
        self.cancel_button.setEnabled(False)
        self._enable()

    def _progress(self, i: int, n: int) -> None:
        self.progress.setRange(0, max(1, n))
        self.progress.setValue(i)

    def _failed(self, text: str) -> None:
        self._idle()
        self._say(text)
        self.window_.show_message(text)

    def _cancelled(self) -> None:
        self._idle()
        self._say("Cancelled.")

    def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()

    def _tracked(self, result: W.Tracked, clip: Clip | None = None) -> None:
        if clip is not None and clip is not self.clip:  # another clip was opened meanwhile
            self._idle()
            return
        self.result = result
        self._idle()  # after the result is set: Combine frames is enabled by the first track
        pts = result.track.points
        low = [i for i, p in pts.items() if p.doubtful]
        self._say(f"Tracked {len(pts)} frames" + (f"; doubtful (score < 0.6, check or untick): {low}" if low else "")
                  + ". Untick bad frames (blur, occlusion), then Combine frames.")
        self._fill_table()
        if self.frame is not None:
            self._show(self.frame)
        self.tracked.emit(result.track)

    def _fill_table(self) -> None:
        t = self.table
        t.blockSignals(True)
        pts = self.result.track.points if self.result else {}
        t.setRowCount(len(pts))
        for r, (i, p) in enumerate(sorted(pts.items())):
            use = QTableWidgetItem()
            use.setFlags(Qt.ItemFlag.ItemIsUserCheckable | Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
            use.setCheckState(Qt.CheckState.Unchecked if p.dropped else Qt.CheckState.Checked)
            use.setData(Qt.ItemDataRole.UserRole, i)
            rec = self.result.records.get(i, {}) if self.result else {}
            cells = [use, QTableWidgetItem(str(i)), QTableWidgetItem(f"{rec.get('time', 0.0):.3f}"),
                     QTableWidgetItem(f"{p.score:.3f}"), QTableWidgetItem(p.source + (" \u26a0" if p.doubtful else ""))]
            for c, item in enumerate(cells):
                if p.doubtful:
                    item.setBackground(DOUBTFUL)
                t.setItem(r, c, item)
        t.blockSignals(False)

    def _row_clicked(self, row: int, _col: int) -> None:
        item = self.table.item(row, 0)
        if item is not None:
            self.go_to(int(item.data(Qt.ItemDataRole.UserRole)))

    def _item_changed(self, item: QTableWidgetItem) -> None:
        if item.column() != 0 or self.result is None:
            return
        self.set_dropped(int(item.data(Qt.ItemDataRole.UserRole)), item.checkState() != Qt.CheckState.Checked)

    def set_dropped(self, frame: int, dropped: bool = True) -> None:
        """Leave a tracked frame out of (or put it back into) the combination."""
        if self.result is None or frame not in self.result.track.points:
            return
        self.result.track.drop(frame, dropped)
        row = sorted(self.result.track.points).index(frame)
        item = self.table.item(row, 0)
        want = Qt.CheckState.Unchecked if dropped else Qt.CheckState.Checked
        if item is not None and item.checkState() != want:
            self.table.blockSignals(True)
            item.setCheckState(want)
            self.table.blockSignals(False)
        if self.frame is not None and self.frame.index == frame:
            self._show(self.frame)
