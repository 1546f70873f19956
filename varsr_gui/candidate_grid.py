"""The grid of candidate thumbnails, each with how well it agrees with the evidence."""

from __future__ import annotations

from PySide6.QtCore import QItemSelectionModel, QSize, Qt, Signal
from PySide6.QtWidgets import QAbstractItemView, QListView, QListWidget, QListWidgetItem, QWidget

from core.workbench.export import MARK
from core.workbench.session import Candidate, CandidateSet
from varsr_gui.qt_images import THUMB, CandidateImages, marked_size
from varsr_gui.wording import agreement, agreement_tip

ID_ROLE = Qt.ItemDataRole.UserRole


class CandidateGrid(QListWidget):
    """Thumbnails in generation order; arrow keys move, Enter/double-click opens the large view."""

    candidate_selected = Signal(str)
    candidate_activated = Signal(str)

    def __init__(self, images: CandidateImages | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.images = images if images is not None else CandidateImages()
        self.setViewMode(QListView.ViewMode.IconMode)
        icon = marked_size(THUMB)
        self.setIconSize(icon)
        self.setGridSize(QSize(THUMB + 40, icon.height() + 44))
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setMovement(QListView.Movement.Static)
        self.setWordWrap(True)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self._items: dict[str, QListWidgetItem] = {}
        self._headers: dict[str, QListWidgetItem] = {}
        self._starred: set[str] = set()
        self.currentItemChanged.connect(self._on_current)
        self.itemActivated.connect(lambda it: self._emit_activated(it))

    def add_set(self, cset: CandidateSet, candidates: dict[str, Candidate], starred: set[str]) -> None:
        self._starred = set(starred)
        header = QListWidgetItem(f"{cset.id}\n{cset.title}")
        header.setFlags(Qt.ItemFlag.NoItemFlags)
        header.setToolTip(cset.title)
        self.addItem(header)
        self._headers[cset.id] = header
        for cid in cset.candidate_ids:
            c = candidates[cid]
            it = QListWidgetItem(self.images.icon(c, THUMB, cid in starred), "")
            it.setData(ID_ROLE, cid)
            self._show_scores(it, cid, c)
            self.addItem(it)
            self._items[cid] = it

    @staticmethod
    def _show_scores(it: QListWidgetItem, cid: str, c: Candidate) -> None:
        it.setText(f"{cid}\nagrees {c.lr_psnr:.1f} dB")
        it.setToolTip(f"{cid}: {MARK} ({c.kind})\n{agreement(c)}\n{agreement_tip(c)}")

    def refresh_scores(self, candidates: dict[str, Candidate]) -> None:
        """Show the scores the candidates have now (they were scored under another consistency operator)."""
        for cid, it in self._items.items():
            if cid in candidates:
                self._show_scores(it, cid, candidates[cid])

    def remove_set(self, cset: CandidateSet) -> None:
        """Take a set's section (its header and thumbnails) out of the grid."""
        for it in [self._headers.pop(cset.id, None), *(self._items.pop(c, None) for c in cset.candidate_ids)]:
            if it is not None:
                self.takeItem(self.row(it))
        self._starred -= set(cset.candidate_ids)

    def remove_all(self) -> None:
        """Remove every set and thumbnail (another case is opened); not ``reset``, which Qt's views call."""
        self.clear()
        self._items.clear()
        self._headers.clear()
        self._starred.clear()

    def candidate_ids(self) -> list[str]:
        return list(self._items)

    def item_for(self, cid: str) -> QListWidgetItem | None:
        return self._items.get(cid)

    def select(self, cid: str) -> None:
        it = self._items.get(cid)
        if it is not None:
            self.setCurrentItem(it, QItemSelectionModel.SelectionFlag.ClearAndSelect)
            self.scrollToItem(it)

    def follow(self, cid: str) -> None:
        """Highlight ``cid`` (the session's current candidate) without announcing a new selection."""
        it = self._items.get(cid)
        if it is None or it is self.currentItem():
            return
        self.blockSignals(True)
        try:
            self.select(cid)
        finally:
            self.blockSignals(False)

    def current_id(self) -> str | None:
        it = self.currentItem()
        return it.data(ID_ROLE) if it is not None else None

    def selected_ids(self) -> list[str]:
        return [it.data(ID_ROLE) for it in self.selectedItems() if it.data(ID_ROLE)]

    def refresh(self, cid: str, candidate: Candidate, starred: bool) -> None:
        it = self._items.get(cid)
        if it is not None:
            it.setIcon(self.images.icon(candidate, THUMB, starred))
        self._starred.discard(cid)
        if starred:
            self._starred.add(cid)

    def set_starred(self, starred: set[str], candidates: dict[str, Candidate]) -> None:
        """Update the star on the thumbnails whose state changed (only those)."""
        for cid in (self._starred ^ starred) & set(self._items):
            self.refresh(cid, candidates[cid], cid in starred)
        self._starred = set(starred)

    def _on_current(self, cur: QListWidgetItem | None, _prev: QListWidgetItem | None) -> None:
        if cur is not None and cur.data(ID_ROLE):
            self.candidate_selected.emit(cur.data(ID_ROLE))

    def _emit_activated(self, it: QListWidgetItem) -> None:
        if it.data(ID_ROLE):
            self.candidate_activated.emit(it.data(ID_ROLE))
