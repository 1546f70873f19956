"""Plate search dock: ranked plate strings, each position's alternatives and registry records.

It reads the selected plate row's per-cell candidates (given by ``cells()``), and loads the
registry, reads and searches in the worker (:mod:`core.search.plates`); the GUI thread only shows.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDockWidget,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from core.images import sha256_file
from core.search.plate_registry import PlateRegistry, load_registry
from core.search.plates import (
    STRING_NOTICE,
    PlateReading,
    PlateSearchResult,
    describe_reading,
    load_plate_classifier,
    plate_classifier_path,
    read_candidates,
    search_plate,
)
from varsr_gui.workers import TaskContext, TaskRunner

NO_CELLS = ("Select a plate row first: choose the Plate domain, set the number of characters, generate, "
            "then select a row in the grid.")
CSV_FILTER = "CSV files (*.csv *.tsv *.txt);;All files (*)"
CellsProvider = Callable[[], Sequence[Sequence[Any]] | None]


def _item(text: str) -> QTableWidgetItem:
    it = QTableWidgetItem(text)
    it.setToolTip(text)
    return it


def _table(headers: list[str]) -> QTableWidget:
    t = QTableWidget(0, len(headers))
    t.setHorizontalHeaderLabels(headers)
    t.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    t.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    t.verticalHeader().setVisible(False)
    t.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    t.horizontalHeader().setStretchLastSection(True)
    return t


class PlateSearchDock(QDockWidget):
    """Read the selected plate row's cells, rank strings, and match them against a registry CSV."""

    #: the JSON-ready result of each search with ``top``, ``classifier`` and ``candidates`` (for the case
    #: file: :func:`core.case.search.plate_entry`)
    hits_found = Signal(object)

    def __init__(self, runner: TaskRunner, cells: CellsProvider, parent: QWidget | None = None) -> None:
        super().__init__("Plate search", parent)
        self.setObjectName("plate_search_dock")
        self.runner = runner
        self.cells = cells
        #: Which candidates ``cells()`` holds (e.g. ``{"row": "C12", "rows": [...]}``), when the owner knows.
        self.describe_cells: Callable[[], dict[str, Any]] | None = None
        #: A reading made elsewhere for the selected candidate (frames of a clip combined: the video dock),
        #: with what it was read from; searched instead of reading ``cells()``.
        self.combined_reading: Callable[[], tuple[PlateReading, dict[str, Any]] | None] | None = None
        self._classifier_id: dict[str, str] | None = None
        self.registry: PlateRegistry | None = None
        self.result: PlateSearchResult | None = None
        self._classifier: Any = None
        body = QWidget()
        lay = QVBoxLayout(body)
        notice = QLabel(STRING_NOTICE)
        notice.setWordWrap(True)
        notice.setStyleSheet("color:#b06060;")
        lay.addWidget(notice)
        row = QHBoxLayout()
        self.load_button = QPushButton("Load registry\u2026")
        self.load_button.setToolTip("A CSV with a plate column (plate, registration, ...) and any other columns")
        self.registry_label = QLabel("No registry loaded: strings only.")
        self.registry_label.setWordWrap(True)
        row.addWidget(self.load_button)
        row.addWidget(self.registry_label, 1)
        lay.addLayout(row)
        row = QHBoxLayout()
        self.pattern = QLineEdit()
        self.pattern.setPlaceholderText("Pattern (optional): ? any, [8B] one of, e.g. AB?1[8B]23")
        self.top = QSpinBox()
        self.top.setRange(1, 1000)
        self.top.setValue(10)
        self.top.setPrefix("top ")
        self.search_button = QPushButton("Read && search")
        self.search_button.setToolTip("Classify each cell's candidates, rank plate strings, match the registry")
        row.addWidget(self.pattern, 1)
        row.addWidget(self.top)
        row.addWidget(self.search_button)
        lay.addLayout(row)
        self.positions_label = QLabel("")
        self.positions_label.setWordWrap(True)
        self.positions_label.setTextFormat(Qt.TextFormat.PlainText)
        lay.addWidget(self.positions_label)
        #: per position: the top classes with their probabilities, the entropy, and a plain verdict
        self.positions_table = _table(["Pos", "1st", "2nd", "3rd", "Entropy", "Reading"])
        self.positions_table.setToolTip(
            "Each position's most likely characters with the probability the reader gives them over the cell's "
            "candidates. 'Unreliable': the distribution is spread (entropy above ln 2) or the best character "
            "has less than 60 %: do not trust that character; search with the pattern or the registry ranking.")
        lay.addWidget(self.positions_table, 1)
        self.strings_table = _table(["Rank", "Plate", "log P", "P"])
        lay.addWidget(self.strings_table, 1)
        self.matches_table = _table(["Match", "Plate", "log P", "Rank", "Record"])
        lay.addWidget(self.matches_table, 1)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        lay.addWidget(self.status)
        self.setWidget(body)
        self.load_button.clicked.connect(self.choose_registry)
        self.search_button.clicked.connect(self.search)
        self.pattern.returnPressed.connect(self.search)

    # -- registry ------------------------------------------------------------------------------------
    def choose_registry(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a plate registry", "", CSV_FILTER)
        if path:
            self.load_registry_file(path)

    def load_registry_file(self, path: str | Path, column: str | None = None) -> None:
        """Read the CSV in the worker; the label says what was loaded or why not."""
        self.registry_label.setText(f"Loading {Path(path).name}\u2026")
        self.runner.submit("Loading registry", lambda ctx: load_registry(path, column), self._registry_loaded,
                           self._registry_failed)

    def _registry_loaded(self, reg: PlateRegistry) -> None:
        self.registry = reg
        name = reg.path.name if reg.path else "registry"
        skipped = f", {reg.skipped} rows without a plate skipped" if reg.skipped else ""
        self.registry_label.setText(f"{name}: {len(reg)} records, plate column '{reg.column}'{skipped}")

    def _registry_failed(self, text: str) -> None:
        self.registry_label.setText(f"Registry not loaded: {text}")

    # -- search --------------------------------------------------------------------------------------
    def search(self) -> None:
        combined = self.combined_reading() if self.combined_reading is not None else None
        cells = self.cells() if combined is None else []
        if combined is None and not cells:
            self.status.setText(NO_CELLS)
            return
        registry, pattern, top = self.registry, self.pattern.text().strip() or None, self.top.value()
        used = dict(combined[1]) if combined is not None else {
            **(self.describe_cells() if self.describe_cells is not None else {}), "cells": len(cells),
            "k": [len(c) for c in cells]}
        self.search_button.setEnabled(False)
        self.status.setText("Reading the cells\u2026")

        def work(ctx: TaskContext) -> tuple[PlateSearchResult, dict[str, str]]:
            if self._classifier is None:
                path = plate_classifier_path()
                self._classifier = load_plate_classifier(path)
                self._classifier_id = {"name": path.name, "sha256": sha256_file(path)}
            reading = combined[0] if combined is not None else read_candidates(
                self._classifier, cells)
            return search_plate(reading, registry, top=top, pattern=pattern), dict(self._classifier_id or {})

        def done(res: tuple[PlateSearchResult, dict[str, str]]) -> None:
            result, classifier = res
            self.show_result(result)
            self.hits_found.emit({**result.to_dict(), "top": top, "classifier": classifier, "candidates": used})

        def failed(text: str) -> None:
            self.search_button.setEnabled(True)
            self.status.setText(f"Plate search failed: {text}")

        self.runner.submit("Plate search", work, done, failed)

    def show_result(self, result: PlateSearchResult) -> None:
        """Fill the tables from a search result."""
        self.search_button.setEnabled(True)
        self.result = result
        shaky = [p.index + 1 for p in result.positions if p.unreliable]
        verdict = (f"UNRELIABLE READING: position{'s' if len(shaky) > 1 else ''} "
                   f"{', '.join(map(str, shaky))} of {len(result.positions)} uncertain; treat every string as a "
                   "weak lead." if shaky else "Every position is read with a clear best character (still a lead).")
        self.positions_label.setText("Positions: " + "   ".join(
            f"{p.index + 1}: {p.label} ({'/'.join(f'{q:.2f}' for _, q in p.alternatives)})"
            for p in result.positions) + f"\nPlausible pattern: {result.pattern} ({result.pattern_source})\n"
            + verdict + f"\nProbabilities: {describe_reading(result.reading)}.")
        self.positions_label.setStyleSheet("color:#b00000; font-weight:bold;" if shaky else "")
        pt = self.positions_table
        pt.setRowCount(len(result.positions))
        for r, pos in enumerate(result.positions):
            alts = [f"{c} {q:.0%}" for c, q in pos.alternatives[:3]] + ["", "", ""]
            cells = (str(pos.index + 1), *alts[:3], f"{pos.entropy:.2f}", "unreliable" if pos.unreliable else "clear")
            for c, v in enumerate(cells):
                item = _item(v)
                if pos.unreliable:
                    item.setBackground(Qt.GlobalColor.yellow)
                pt.setItem(r, c, item)
        st = self.strings_table
        st.setRowCount(len(result.strings))
        for r, (text, score) in enumerate(result.strings):
            for c, v in enumerate((str(r + 1), text, f"{score:.3f}", f"{math.exp(score):.3g}")):
                st.setItem(r, c, _item(v))
        hits = result.exact + result.wildcard + result.ranked
        mt = self.matches_table
        mt.setRowCount(len(hits))
        for r, h in enumerate(hits):
            record = "; ".join(f"{k}={v}" for k, v in h.record.items())
            for c, v in enumerate((h.kind, h.plate, f"{h.score:.3f}", str(h.rank), record)):
                mt.setItem(r, c, _item(v))
        if result.registry is None:
            self.status.setText(f"{len(result.strings)} strings; load a registry to match records.")
        else:
            self.status.setText(f"{len(result.exact)} exact, {result.n_wildcard} wildcard ({result.pattern}); "
                                f"{result.n_scored} records of this length ranked, {result.n_other} of other "
                                "lengths or characters not scored.")
