"""Case > Remove an original: the case's originals listed with what derives from each, and the removal of
one that nothing derives from (asked, logged in the audit log by :func:`core.case.originals.remove_original`).

A mixin of :class:`~varsr_gui.case_actions.CaseActions`, which provides ``case``, ``shell``, ``_need_case``,
``_error`` and ``_watch``.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from core.case.originals import remove_original, why_kept
from core.errors import VarSRError


class RemoveOriginalDialog(QDialog):
    """The originals, each with why it must stay (or that it may go), a reason field and Remove."""

    def __init__(self, case: Any, remove: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Remove an original from the case")
        self.case, self.remove = case, remove
        lay = QVBoxLayout(self)
        lay.addWidget(QLabel("Only an original that no candidate or search derives from, and that is not the "
                             "evidence on screen, can be removed. The removal is recorded in the audit log "
                             "(examiner, time, SHA-256); its copy leaves the case folder at the next save."))
        self.list = QListWidget(objectName="originals_list")
        lay.addWidget(self.list)
        self.why = QLineEdit(objectName="removal_reason", placeholderText="Why (recorded), e.g. opened by mistake")
        lay.addWidget(self.why)
        self.reason = QLabel(objectName="kept_reason", wordWrap=True)
        lay.addWidget(self.reason)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.remove_button = QPushButton("Remove from the case", objectName="remove_original")
        buttons.addButton(self.remove_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)
        self.remove_button.clicked.connect(self._remove)
        self.list.currentItemChanged.connect(lambda *_a: self._show_reason())
        self.fill()

    def fill(self) -> None:
        self.list.clear()
        for o in self.case.originals.values():
            kept = why_kept(self.case, o.sha256)
            item = QListWidgetItem(f"{o.name} ({o.role}) \u00b7 SHA-256 {o.sha256[:16]}\u2026 \u00b7 "
                                   + ("kept: work derives from it" if kept else "nothing derives from it"))
            item.setData(Qt.ItemDataRole.UserRole, o.sha256)
            item.setToolTip(kept or "Can be removed")
            self.list.addItem(item)
        if self.list.count():
            self.list.setCurrentRow(0)
        self._show_reason()

    def selected(self) -> str | None:
        item = self.list.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item is not None else None

    def _show_reason(self) -> None:
        sha = self.selected()
        kept = why_kept(self.case, sha) if sha else "The case has no originals."
        self.reason.setText(kept[0].upper() + kept[1:] + "." if kept else "Nothing derives from this original.")
        self.remove_button.setEnabled(not kept)

    def _remove(self) -> None:
        sha = self.selected()
        if sha and self.remove(sha, self.why.text()):
            self.why.clear()
            self.fill()


class OriginalsActions:
    """Removing an original from the open case."""

    case: Any
    shell: Any
    originals_dialog: RemoveOriginalDialog | None = None

    def remove_original_dialog(self) -> RemoveOriginalDialog | None:
        """Case > Remove an original (non-modal)."""
        if not self._need_case():
            return None
        if self.originals_dialog is not None:
            self.originals_dialog.close()
        self.originals_dialog = RemoveOriginalDialog(self.case, self.remove_original, self.shell.dialog_parent())
        self.originals_dialog.open()
        return self.originals_dialog

    def remove_original(self, sha: str, why: str = "", ask: bool = True) -> bool:
        """Remove one original after asking; a clear message (nothing changed) when work derives from it."""
        if not self._need_case():
            return False
        o = self.case.originals.get(sha)
        kept = why_kept(self.case, sha)
        if o is None or kept:
            self._error("The original was not removed", (kept or "it is not in the case") + ".",
                        "Nothing was changed.")
            return False
        if ask and not self.shell.confirm("Remove the original?", f"Remove {o.name} (SHA-256 {sha[:16]}\u2026) from "
                                          f"the case {self.case.name}?", "The removal is recorded in the audit log; "
                                          "the copy leaves the case folder when the case is next saved."):
            return False
        try:
            remove_original(self.case, sha, why)
        except VarSRError as e:
            self._error("The original was not removed", str(e))
            return False
        self._watch()
        self.shell.refresh()
        self.shell.status(f"Removed {o.name} from the case (recorded in the audit log; saved with the case)", 10000)
        return True

    # provided by CaseActions
    def _need_case(self) -> bool:
        raise NotImplementedError

    def _error(self, title: str, text: str, detail: str = "") -> None:
        raise NotImplementedError

    def _watch(self) -> None:
        raise NotImplementedError
