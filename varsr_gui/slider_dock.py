"""Attribute sliders: z_k = z + k * s * Z_att for each direction in the bundle (paper, Fig. 4a)."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDockWidget,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSlider,
    QVBoxLayout,
    QWidget,
)

K_MIN, K_MAX, STEPS = -2.0, 2.0, 100  # slider ticks per unit of k
DEBOUNCE_MS = 150
NO_CANDIDATE = "Select a candidate to see its model's attribute directions."
NO_DIRECTIONS = "This model has no attribute directions."


def attribute_label(key: str) -> str:
    """'diff/Male' -> 'Male (difference of means)'; 'mean/Smiling' -> 'Smiling (mean, as in the paper)'."""
    kind, _, name = key.partition("/")
    if not name:
        return key
    what = {"diff": "difference of means", "mean": "mean, as in the paper"}.get(kind, kind)
    return f"{name.replace('_', ' ')} ({what})"


class SliderDock(QDockWidget):
    """One slider per attribute direction, k in [-2, 2]; changes are reported after a short pause.

    The slider the analyst moved last is the active one (its name in bold): it is scrolled back into
    view whenever the sliders are rebuilt or re-filtered (another candidate, Advanced, a reset).
    """

    values_changed = Signal(dict)
    keep_clicked = Signal()
    apply_all_clicked = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Attributes", parent)
        self.setObjectName("attributes_dock")
        body = QWidget()
        self.layout_ = QVBoxLayout(body)
        self.target = QLabel("No candidate selected.")
        self.target.setWordWrap(True)
        self.layout_.addWidget(self.target)
        # the sliders scroll: a face bundle has 20 directions, taller than most screens
        holder = QWidget()
        self.grid = QGridLayout(holder)
        self.grid.setContentsMargins(0, 0, 4, 0)
        self.grid.setVerticalSpacing(2)
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.scroll.setWidget(holder)
        self.layout_.addWidget(self.scroll, 1)
        self.empty = QLabel(NO_CANDIDATE)
        self.empty.setWordWrap(True)
        self.layout_.addWidget(self.empty)
        row = QHBoxLayout()
        self.reset_button = QPushButton("Reset")
        self.reset_button.setToolTip("All sliders back to 0 (R)")
        self.keep_button = QPushButton("Keep")
        self.keep_button.setToolTip("Add the steered candidate to the grid")
        self.all_button = QPushButton("Apply to all")
        self.all_button.setToolTip("Apply these values to every candidate of the selected one's set")
        for b in (self.reset_button, self.keep_button, self.all_button):
            row.addWidget(b)
        self.layout_.addLayout(row)
        self.warning = QLabel()
        self.warning.setObjectName("steer_warning")
        self.warning.setWordWrap(True)
        self.warning.setStyleSheet("color:#ff9b9b; font-weight:bold;")
        self.warning.hide()
        self.layout_.addWidget(self.warning)
        switches = QHBoxLayout()
        self.live = QCheckBox("Live")
        self.live.setChecked(True)
        self.live.setToolTip("Regenerate the selected candidate as the sliders move")
        self.advanced = QCheckBox("Advanced")
        self.advanced.setObjectName("advanced_sliders")
        self.advanced.setToolTip("Also show the paper's mean directions: measured to fail often and to turn faces "
                                 "into noise at larger k; use with care")
        self.advanced.toggled.connect(self._show_rows)
        switches.addWidget(self.live)
        switches.addWidget(self.advanced)
        switches.addStretch(1)
        self.layout_.addLayout(switches)
        self.layout_.addStretch(0)  # takes the room only while the sliders are hidden
        self.setWidget(body)
        self.sliders: dict[str, QSlider] = {}
        self.value_labels: dict[str, QLabel] = {}
        self.names: dict[str, QLabel] = {}
        #: The key of the slider moved last (kept while other models' sliders are shown).
        self.active: str | None = None
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(DEBOUNCE_MS)
        self._timer.timeout.connect(lambda: self.values_changed.emit(self.values()))
        self.reset_button.clicked.connect(lambda: self.reset())
        self.keep_button.clicked.connect(self.keep_clicked.emit)
        self.all_button.clicked.connect(self.apply_all_clicked.emit)
        self.set_attributes([], NO_CANDIDATE)

    def set_attributes(self, keys: list[str], empty_text: str = NO_DIRECTIONS,
                       notes: dict[str, str] | None = None) -> None:
        """One slider per key (in the given order); ``notes``: measured effect per key, shown as its tooltip;
        ``empty_text`` says why there are none."""
        notes = notes or {}
        self.empty.setText(empty_text)
        self.empty.setVisible(not keys)
        self.scroll.setVisible(bool(keys))
        if list(self.sliders) == list(keys):
            self.keep_active_in_view()
            return
        while self.grid.count():
            w = self.grid.takeAt(0).widget()
            if w is not None:
                w.deleteLater()
        self.sliders.clear()
        self.value_labels.clear()
        self.names.clear()
        for row, key in enumerate(keys):
            s = QSlider(Qt.Orientation.Horizontal)
            s.setRange(int(K_MIN * STEPS), int(K_MAX * STEPS))
            s.setSingleStep(10)
            s.setPageStep(50)
            s.setTickInterval(STEPS)
            s.setTickPosition(QSlider.TickPosition.TicksBelow)
            tip = f"{key}: k from -2 to 2 (z + k\u00b7s\u00b7Z_att)"
            s.setToolTip(f"{tip}\n{notes[key]}" if key in notes else f"{tip}\nnot measured for this model")
            val = QLabel("+0.00")
            val.setMinimumWidth(40)
            s.valueChanged.connect(lambda v, lab=val, k=key: self._moved(lab, v, k))
            name = QLabel(attribute_label(key))
            name.setWordWrap(True)
            name.setToolTip(s.toolTip())
            self.grid.addWidget(name, 2 * row, 0, 1, 2)
            self.grid.addWidget(s, 2 * row + 1, 0)
            self.grid.addWidget(val, 2 * row + 1, 1)
            self.sliders[key] = s
            self.value_labels[key] = val
            self.names[key] = name
        self._mark_active()
        self._show_rows()
        self.empty.setVisible(not keys)
        for b in (self.reset_button, self.keep_button, self.all_button):
            b.setEnabled(bool(keys))

    def is_advanced(self, key: str) -> bool:
        """The paper's mean directions: shown only with Advanced on."""
        return key.startswith("mean/")

    def visible_keys(self) -> list[str]:
        return [k for k in self.sliders if self.advanced.isChecked() or not self.is_advanced(k)]

    def _show_rows(self) -> None:
        """Hide the advanced rows unless Advanced is on (a hidden slider goes back to 0)."""
        changed = False
        for key, s in self.sliders.items():
            show = self.advanced.isChecked() or not self.is_advanced(key)
            for w in (s, self.value_labels[key], self.names[key]):
                w.setVisible(show)
            if not show and s.value():
                s.setValue(0)
                changed = True
        if changed:
            self.flush()
        self.keep_active_in_view()

    def show_warning(self, text: str) -> None:
        """A flag on the steered candidate (empty: none)."""
        self.warning.setText(text)
        self.warning.setVisible(bool(text))

    def _moved(self, label: QLabel, v: int, key: str) -> None:
        label.setText(f"{v / STEPS:+.2f}")
        if key != self.active and not self.sliders[key].isHidden():  # not one Advanced off puts back to 0
            self.active = key
            self._mark_active()
        if self.live.isChecked():
            self._timer.start()

    def values(self) -> dict[str, float]:
        return {k: s.value() / STEPS for k, s in self.sliders.items()}

    def set_value(self, key: str, k: float) -> None:
        self.sliders[key].setValue(round(k * STEPS))

    def set_values(self, values: dict[str, float]) -> None:
        """Put every slider at ``values`` (missing keys at 0) and report them at once (undo, redo)."""
        for key, s in self.sliders.items():
            s.blockSignals(True)
            s.setValue(round(values.get(key, 0.0) * STEPS))
            s.blockSignals(False)
            self.value_labels[key].setText(f"{s.value() / STEPS:+.2f}")
        self._timer.stop()
        self.values_changed.emit(self.values())
        self.keep_active_in_view()

    def reset(self, emit: bool = True) -> None:
        """All sliders to 0; ``emit=False`` when the target candidate changes."""
        changed = any(s.value() for s in self.sliders.values())
        for s in self.sliders.values():
            s.blockSignals(True)
            s.setValue(0)
            s.blockSignals(False)
        for lab in self.value_labels.values():
            lab.setText("+0.00")
        self._timer.stop()
        if changed and emit:
            self._timer.start()
        self.keep_active_in_view()

    def _mark_active(self) -> None:
        for key, name in self.names.items():
            font = name.font()
            font.setBold(key == self.active)
            name.setFont(font)

    def keep_active_in_view(self) -> None:
        """Scroll the active slider into view once the rows are laid out (after this event)."""
        QTimer.singleShot(0, self, self._scroll_to_active)

    def _scroll_to_active(self) -> None:
        s = self.sliders.get(self.active or "")
        if s is None or s.isHidden():
            return
        self.grid.activate()  # the rows' places, before the scroll area measures them
        self.scroll.ensureWidgetVisible(self.names[self.active or ""], 0, 4)
        self.scroll.ensureWidgetVisible(s, 0, 4)

    def flush(self) -> None:
        """Emit now instead of after the pause (tests, keyboard)."""
        if self._timer.isActive():
            self._timer.stop()
            self.values_changed.emit(self.values())
