"""The shortlist: starred candidates in the analyst's order, a note on each, compare, export."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QFocusEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QDockWidget,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from core.workbench.export import MARK
from core.workbench.session import Session
from varsr_gui.qt_images import CandidateImages, marked_size

ID_ROLE = Qt.ItemDataRole.UserRole
THUMB = 56


class NoteEdit(QPlainTextEdit):
    """A note editor that says when the analyst has finished an edit: focus leaves it, a click lands
    elsewhere (a toolbar button takes no focus) or a window shortcut (Ctrl+S...) is about to run."""

    editing_finished = Signal()

    def focusInEvent(self, e: QFocusEvent) -> None:  # noqa: N802 - Qt override
        super().focusInEvent(e)
        QApplication.instance().installEventFilter(self)

    def focusOutEvent(self, e: QFocusEvent) -> None:  # noqa: N802 - Qt override
        QApplication.instance().removeEventFilter(self)
        super().focusOutEvent(e)
        self.editing_finished.emit()

    def event(self, e: QEvent) -> bool:
        done = super().event(e)
        if e.type() == QEvent.Type.ShortcutOverride and not e.isAccepted():  # not the editor's own key
            self.editing_finished.emit()
        return done

    def eventFilter(self, obj: QObject, e: QEvent) -> bool:  # noqa: N802 - Qt override
        if e.type() == QEvent.Type.MouseButtonPress and isinstance(obj, QWidget) \
                and obj is not self and not self.isAncestorOf(obj):
            self.editing_finished.emit()
        return False


class ShortlistDock(QDockWidget):
    """Drag (or Up/Down) to reorder; the note edits the selected lead, committed to the session (one
    undoable step) when the analyst finishes editing it, or at once when set from code."""

    candidate_selected = Signal(str)
    compare_clicked = Signal(str, str)
    export_clicked = Signal()

    def __init__(self, session: Session, parent: QWidget | None = None,
                 images: CandidateImages | None = None) -> None:
        super().__init__("Shortlist", parent)
        self.images = images if images is not None else CandidateImages()
        self.setObjectName("shortlist_dock")
        self.session = session
        body = QWidget()
        lay = QVBoxLayout(body)
        self.list = QListWidget()
        self.list.setIconSize(marked_size(THUMB))
        self.list.setDragDropMode(QAbstractItemView.DragDropMode.InternalMove)
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        lay.addWidget(self.list, 1)
        row = QHBoxLayout()
        self.up = QPushButton("Up")
        self.down = QPushButton("Down")
        self.remove = QPushButton("Remove")
        self.compare = QPushButton("Compare two")
        self.compare.setToolTip("Select two leads to see them side by side")
        for b in (self.up, self.down, self.remove, self.compare):
            row.addWidget(b)
        lay.addLayout(row)
        lay.addWidget(QLabel("Note on the selected lead"))
        self.note = NoteEdit()
        self._note_cid: str | None = None  # the lead whose note the editor holds
        self.note.setPlaceholderText("Why this lead? (exported with it)")
        self.note.setMaximumHeight(70)
        lay.addWidget(self.note)
        self.export = QPushButton("Export shortlist\u2026")
        self.export.setToolTip("PNGs + manifest.json with each lead's recipe and the notice (Ctrl+E)")
        lay.addWidget(self.export)
        self.setWidget(body)

        self.list.currentItemChanged.connect(self._on_current)
        self.list.model().rowsMoved.connect(lambda *_: self._sync_order())
        self.note.textChanged.connect(self._on_note)
        self.note.editing_finished.connect(self.commit_note)
        self.up.clicked.connect(lambda: self._step(-1))
        self.down.clicked.connect(lambda: self._step(1))
        self.remove.clicked.connect(self._remove)
        self.compare.clicked.connect(self._compare)
        self.export.clicked.connect(self.export_clicked.emit)
        session.events.shortlist_changed.connect(self.refresh)
        session.events.note_changed.connect(self._on_note_changed)
        self.refresh()

    def ids(self) -> list[str]:
        return [self.list.item(i).data(ID_ROLE) for i in range(self.list.count())]

    def refresh(self) -> None:
        self.commit_note()  # an edit in progress is kept, not overwritten
        current = self.current_id()
        self.list.blockSignals(True)
        self.list.clear()
        for rank, e in enumerate(self.session.shortlist, start=1):
            c = self.session.candidates[e.candidate_id]
            it = QListWidgetItem(self.images.icon(c, THUMB, True), f"{rank}. {c.id}  agrees {c.lr_psnr:.1f} dB\n{MARK}")
            it.setToolTip(f"{c.id}: {MARK}")
            it.setData(ID_ROLE, c.id)
            self.list.addItem(it)
            if c.id == current:
                self.list.setCurrentItem(it)
        self.list.blockSignals(False)
        self._load_note()
        n = len(self.session.shortlist)
        for b in (self.up, self.down, self.remove):
            b.setEnabled(n > 0)
        self.compare.setEnabled(n >= 2)
        self.export.setEnabled(n > 0)

    def current_id(self) -> str | None:
        it = self.list.currentItem()
        return it.data(ID_ROLE) if it is not None else None

    def _on_current(self, cur: QListWidgetItem | None, _prev: QListWidgetItem | None) -> None:
        self.commit_note()  # the previous lead's
        self._load_note()
        if cur is not None:
            self.candidate_selected.emit(cur.data(ID_ROLE))

    def _load_note(self) -> None:
        cid = self._note_cid = self.current_id()
        self.note.blockSignals(True)
        self.note.setPlainText(self.session.note(cid) if cid else "")
        self.note.setEnabled(cid is not None)
        self.note.blockSignals(False)

    def _on_note(self) -> None:
        if not self.note.hasFocus():  # set from code (not typed): at once
            self.commit_note()

    def commit_note(self) -> None:
        """Give the session the editor's note (announced, so undoable; nothing when unchanged)."""
        cid = self._note_cid
        if cid and self.session.is_starred(cid):
            self.session.set_note(cid, self.note.toPlainText())

    def _on_note_changed(self, cid: str, note: str, _old: str) -> None:
        if cid == self._note_cid and note != self.note.toPlainText():  # undo, redo
            self._load_note()

    def _sync_order(self) -> None:
        self.session.reorder(self.ids())

    def _step(self, d: int) -> None:
        cid = self.current_id()
        if cid:
            self.session.move(cid, self.ids().index(cid) + d)

    def _remove(self) -> None:
        items = self.list.selectedItems() or ([self.list.currentItem()] if self.list.currentItem() else [])
        for cid in [it.data(ID_ROLE) for it in items]:
            self.session.unstar(cid)

    def _compare(self) -> None:
        sel = [it.data(ID_ROLE) for it in self.list.selectedItems()]
        if len(sel) < 2:
            sel = self.ids()[:2]
        if len(sel) >= 2:
            self.compare_clicked.emit(sel[0], sel[1])
