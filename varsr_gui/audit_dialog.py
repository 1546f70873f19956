"""Case > Audit log: a read-only view of the case's hash-chained log and whether it is intact."""

from __future__ import annotations

import json

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from core.case import Case
from core.case.report import describe

OK_STYLE = "background:#1f4d1f; color:white; padding:4px;"
BAD_STYLE = "background:#7a1f1f; color:white; font-weight:bold; padding:4px;"


class AuditDialog(QDialog):
    """Every entry of the log, oldest first; nothing here can be edited."""

    def __init__(self, case: Case, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.case = case
        self.setWindowTitle(f"Audit log \u2014 {case.name}")
        self.resize(900, 520)
        lay = QVBoxLayout(self)
        self.status = QLabel()
        self.status.setWordWrap(True)
        lay.addWidget(self.status)
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["#", "time (UTC)", "examiner", "step"])
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        self.table.setWordWrap(True)
        lay.addWidget(self.table, 1)
        note = QLabel("Each entry carries the SHA-256 of the one before it; the case records the last entry's hash "
                      "at every save, so an edited or deleted entry is found when the case is opened. Hover over an "
                      "entry for its full record. Entries after the last save are written by the next save.")
        note.setWordWrap(True)
        note.setStyleSheet("color:#666;")
        lay.addWidget(note)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        lay.addWidget(buttons)
        self.refresh()

    def refresh(self) -> None:
        check = self.case.log_check()
        self.status.setText(("\u2714 " if check.ok else "\u26a0 ") + check.summary())
        self.status.setStyleSheet(OK_STYLE if check.ok else BAD_STYLE)
        entries = self.case.log.entries()
        self.table.setRowCount(len(entries))
        saved = self.case.log.persisted
        for row, e in enumerate(entries):
            cells = [str(e.get("seq")), str(e.get("utc", ""))[:23].replace("T", " "), str(e.get("actor", "")),
                     describe(e) + ("" if row < saved else "  (not saved yet)")]
            for col, text in enumerate(cells):
                it = QTableWidgetItem(text)
                it.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
                it.setToolTip(json.dumps(e, indent=1, ensure_ascii=False)[:4000])
                self.table.setItem(row, col, it)
        self.table.resizeColumnsToContents()
        self.table.horizontalHeader().setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        self.table.scrollToBottom()
