"""Face search dock: index a gallery, search it with the shortlist (or all face candidates), show hits.

Thin: indexing, embedding and ranking run in the worker (:mod:`core.search`); the GUI thread only
shows the hits, each with the candidate that matched it, the distance and the gallery photo.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from PIL import Image
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDockWidget,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from core.workbench.session import Candidate, Session
from varsr_gui.qt_images import CandidateImages, pil_to_qimage
from varsr_gui.workers import Task, TaskContext, TaskRunner

NOTICE = ("Gallery hits come from synthetic candidates: investigative leads to check by other means, never an "
          "identification and never evidence.")
ID_ROLE = Qt.ItemDataRole.UserRole
THUMB = 48
SOURCES = ("Shortlist", "All face candidates")
#: record scores offered, the default first (core.search.faces.search_fused; core.search.rank)
MODES = ("fused", "min", "knn")


def face_candidates(session: Session, source: str) -> list[Candidate]:
    """The session's face candidates to search with: the shortlist (in order) or all of them."""
    if source == SOURCES[0]:
        cands = [session.candidates[e.candidate_id] for e in session.shortlist if e.candidate_id in session.candidates]
    else:
        cands = list(session.candidates.values())
    return [c for c in cands if c.recipe.get("domain") == "face" and c.image.dim() == 3
            and c.image.shape[-1] == c.image.shape[-2]]


class FaceSearchDock(QDockWidget):
    """Index a gallery (folder or CSV) or open an index; search it; list hits."""

    candidate_selected = Signal(str)
    #: the JSON-ready result of each search, with ``top``, ``diverse``, ``source`` and ``candidates_offered``
    #: (for the case file: :func:`core.case.search.face_entry`)
    hits_found = Signal(object)

    def __init__(self, runner: TaskRunner, session: Session, images: CandidateImages | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__("Face search", parent)
        self.setObjectName("face_search_dock")
        self.runner, self.session = runner, session
        self.images = images if images is not None else CandidateImages()
        self.index: Any = None
        self.result: dict[str, Any] | None = None
        self._embedder: Any = None
        self._task: Task | None = None
        body = QWidget()
        lay = QVBoxLayout(body)
        notice = QLabel(NOTICE)
        notice.setWordWrap(True)
        notice.setStyleSheet("color:#b06060;")
        lay.addWidget(notice)
        row = QHBoxLayout()
        self.index_button = QPushButton("Index gallery\u2026")
        self.index_button.setToolTip("A folder of photos or a CSV of path,record_id; then where to keep the index "
                                     "(re-indexing only embeds changed photos)")
        self.open_button = QPushButton("Open index\u2026")
        row.addWidget(self.index_button)
        row.addWidget(self.open_button)
        lay.addLayout(row)
        self.index_label = QLabel("No gallery index open.")
        self.index_label.setWordWrap(True)
        lay.addWidget(self.index_label)
        row = QHBoxLayout()
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setVisible(False)
        row.addWidget(self.progress, 1)
        row.addWidget(self.cancel_button)
        lay.addLayout(row)
        row = QHBoxLayout()
        self.source = QComboBox()
        self.source.addItems(SOURCES)
        self.mode = QComboBox()
        self.mode.addItems(list(MODES))
        self.mode.setToolTip("fused (default): the -det output and the candidates against the photos, plus the -det "
                             "output against the photos degraded and restored as this face was (the best measured; "
                             "one face's candidates; the first search of an index computes them once); "
                             "min: a record is as close as its best-matching candidate; knn: mean of its k "
                             "nearest candidates")
        self.k = QSpinBox()
        self.k.setRange(1, 64)
        self.k.setValue(3)
        self.k.setPrefix("k ")
        self.diverse = QSpinBox()
        self.diverse.setRange(0, 256)
        self.diverse.setSpecialValueText("all")
        self.diverse.setPrefix("diverse ")
        self.diverse.setToolTip("Search with a diverse pick of this many candidates (farthest-point); "
                                "'all' = every one")
        self.top = QSpinBox()
        self.top.setRange(1, 1000)
        self.top.setValue(20)
        self.top.setPrefix("top ")
        for w in (self.source, self.mode, self.k, self.diverse, self.top):
            row.addWidget(w)
        lay.addLayout(row)
        self.search_button = QPushButton("Search gallery")
        self.search_button.setEnabled(False)
        lay.addWidget(self.search_button)
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["Candidate", "Record", "Distance", "Gallery photo"])
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setIconSize(QPixmap(THUMB, THUMB).size())
        self.table.verticalHeader().setDefaultSectionSize(THUMB + 6)
        self.table.horizontalHeader().setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        lay.addWidget(self.table, 1)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        lay.addWidget(self.status)
        self.setWidget(body)
        self.index_button.clicked.connect(self.choose_gallery)
        self.open_button.clicked.connect(self.choose_index)
        self.cancel_button.clicked.connect(self.cancel)
        self.search_button.clicked.connect(self.search)
        self.mode.currentTextChanged.connect(self._on_mode)
        self._on_mode(self.mode.currentText())
        self.table.itemSelectionChanged.connect(self._on_select)

    def _on_mode(self, mode: str) -> None:
        self.k.setEnabled(mode == "knn")
        self.diverse.setEnabled(mode != "fused")  # fused uses every candidate's mean distance

    # -- worker plumbing -------------------------------------------------------------------------------
    def _embedder_for(self, name: str = "dlib-face-resnet") -> Any:
        """Load (once, in the worker) the embedder an index needs."""
        from core.search.embedders import load_embedder

        if self._embedder is None or self._embedder.name != name:
            self._embedder = load_embedder(name)
        return self._embedder

    def _busy(self, what: str | None) -> None:
        on = what is not None
        self.progress.setVisible(on)
        self.cancel_button.setVisible(on)
        self.progress.setRange(0, 0)
        for b in (self.index_button, self.open_button, self.search_button):
            b.setEnabled(not on and (b is not self.search_button or self.index is not None))
        if on:
            self.status.setText(what or "")

    def _on_progress(self, i: int, n: int) -> None:
        self.progress.setRange(0, max(1, n))
        self.progress.setValue(i)

    def _failed(self, message: str) -> None:
        self._busy(None)
        self.status.setText(message)

    def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()

    # -- indexing ----------------------------------------------------------------------------------------
    def choose_gallery(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Gallery: a folder of photos (Cancel to pick a CSV)")
        gallery = folder
        if not gallery:
            gallery, _ = QFileDialog.getOpenFileName(self, "Gallery: a CSV of path,record_id", "",
                                                     "CSV files (*.csv);;All files (*)")
        if not gallery:
            return
        out = QFileDialog.getExistingDirectory(self, "Where to keep the index (a new or empty folder, or an index)")
        if out:
            self.build(gallery, out)

    def build(self, gallery: str | Path, out: str | Path) -> Task:
        """Index ``gallery`` into ``out`` in the worker; opens the index when done."""
        from core.search.errors import SearchCancelled
        from core.search.gallery import build_index, load_index

        def work(ctx: TaskContext) -> Any:
            try:
                report = build_index(gallery, out, self._embedder_for(), progress=ctx.progress,
                                     cancelled=ctx.cancelled)
            except SearchCancelled:
                return None  # the task reports it as cancelled
            return report, load_index(out)

        def done(res: Any) -> None:
            self._busy(None)
            report, index = res
            self._set_index(index)
            self.status.setText(report.summary() + "".join(f"\n{n}" for n in report.notes))

        def cancelled() -> None:
            self._busy(None)
            self.status.setText("Indexing cancelled: nothing was written.")

        self._busy(f"Indexing {gallery}\u2026")
        self._task = self.runner.submit("Indexing the gallery", work, done, self._failed, self._on_progress,
                                        cancelled)
        return self._task

    def choose_index(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a face gallery index")
        if folder:
            self.open_index(folder)

    def open_index(self, folder: str | Path) -> Task:
        from core.search.gallery import load_index

        def done(index: Any) -> None:
            self._busy(None)
            self._set_index(index)
            self.status.setText("")

        self._busy(f"Opening {folder}\u2026")
        self._task = self.runner.submit("Opening the index", lambda ctx: load_index(folder), done, self._failed)
        return self._task

    def _set_index(self, index: Any) -> None:
        self.index = index
        m = index.manifest
        c = m["counts"]
        self.index_label.setText(f"{index.folder}: {c['records']} records, {c['photos']} photos "
                                 f"({c['no_face']} without a detected face), embedder {m['embedder']['name']}")
        self.search_button.setEnabled(True)

    # -- searching ---------------------------------------------------------------------------------------
    def search(self) -> Task | None:
        """Search the open index with the chosen candidates (in the worker)."""
        if self.index is None:
            self.status.setText("Open or build a gallery index first.")
            return None
        cands = face_candidates(self.session, self.source.currentText())
        if not cands:
            self.status.setText("No face candidates to search with: generate faces"
                                + (" and star some" if self.source.currentText() == SOURCES[0] else "") + ".")
            return None
        side = max(c.image.shape[-1] for c in cands)
        frames = torch.stack([c.image.detach().float().cpu() if c.image.shape[-1] == side else
                              torch.nn.functional.interpolate(c.image[None].float(), size=(side, side),
                                                              mode="bilinear", align_corners=False)[0]
                              for c in cands])
        ids = [c.id for c in cands]
        index, mode, k, top = self.index, self.mode.currentText(), self.k.value(), self.top.value()
        diverse = (self.diverse.value() or None) if mode != "fused" else None
        source = self.source.currentText().lower()

        def work(ctx: TaskContext) -> Any:
            from core.search.errors import SearchCancelled, SearchError
            from core.search.faces import degraded_query, embedder_for_index, search_frames, search_fused

            emb = self._embedder
            if emb is None or (emb.name, emb.version) != (index.embedder["name"], index.embedder["version"]):
                emb = self._embedder = embedder_for_index(index)
            result = None
            if mode == "fused":
                try:
                    query = degraded_query(cands, self.session.model)
                except SearchError as e:  # several faces, or no -det model: the plain search, saying why
                    fallback = f"not fused ({e}): ranked by min"
                else:
                    try:
                        result = search_fused(index, frames, ids, query, emb, top=top, progress=ctx.progress,
                                              cancelled=ctx.cancelled)
                    except SearchCancelled:
                        return None  # the task reports it as cancelled
            if result is None:
                result = search_frames(index, frames, ids, emb, mode="min" if mode == "fused" else mode, k=k,
                                       top=top, diverse=diverse)
                if mode == "fused":
                    result.notes.insert(0, fallback)
            out = result.to_dict()
            out.update(top=top, diverse=diverse, source=source, candidates_offered=ids)
            thumbs = []
            for h in out["hits"]:
                try:
                    from core.images import load_image

                    im = load_image(h["photo"], "RGB")
                    im.thumbnail((THUMB, THUMB), Image.Resampling.LANCZOS)
                    thumbs.append(im)
                except Exception:  # a moved or unreadable photo: the hit stays, without a picture
                    thumbs.append(None)
            return out, thumbs

        def done(res: Any) -> None:
            self._busy(None)
            if res is None:
                self.status.setText("Search cancelled.")
                return
            out, thumbs = res
            self.show_result(out, thumbs)
            self.hits_found.emit(out)

        self._busy(f"Searching with {len(cands) if not diverse else min(diverse, len(cands))} candidates\u2026")
        def cancelled() -> None:
            self._busy(None)
            self.status.setText("Search cancelled: nothing was written.")

        self._task = self.runner.submit("Face search", work, done, self._failed, self._on_progress, cancelled)
        return self._task

    def show_result(self, out: dict[str, Any], thumbs: list[Image.Image | None] | None = None) -> None:
        self.result = out
        hits = out["hits"]
        self.table.setHorizontalHeaderItem(2, QTableWidgetItem("Fused score" if out.get("mode") == "fused"
                                                               else "Distance"))
        self.table.setRowCount(len(hits))
        for r, h in enumerate(hits):
            cand = self.session.candidates.get(h["candidate"])
            first = QTableWidgetItem(f"{h['rank']}. {h['candidate']}")
            if cand is not None:
                first.setIcon(self.images.icon(cand, THUMB))
            first.setData(ID_ROLE, h["candidate"])
            rec = QTableWidgetItem(h["record_id"])
            dist = QTableWidgetItem(f"{h['distance']:.3f}")
            dist.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            photo = QTableWidgetItem(Path(h["photo"]).name + ("" if h["face_found"] else "  (no face found)"))
            photo.setToolTip(h["photo"])
            if thumbs and r < len(thumbs) and thumbs[r] is not None:
                photo.setIcon(QIcon(QPixmap.fromImage(pil_to_qimage(thumbs[r]))))
            for c, it in enumerate((first, rec, dist, photo)):
                self.table.setItem(r, c, it)
        notes = "; ".join(out.get("notes", []))
        self.status.setText(f"{len(hits)} of {out['records_searched']} records, {len(out['candidates'])} candidates, "
                            f"mode {out['mode']}" + (f"; {notes}" if notes else "") + ". Leads only.")

    def _on_select(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        if rows:
            cid = self.table.item(rows[0].row(), 0).data(ID_ROLE)
            if cid in self.session.candidates:
                self.candidate_selected.emit(cid)
