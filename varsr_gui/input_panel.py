"""The input side: domain and model, the crop beside what the model sees, and the generate controls."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from core.workbench.session import N_RANGE
from varsr_gui.consistency_choice import operator_combo
from varsr_gui.qt_images import scaled_nearest

PREVIEW = 132
DOMAINS = (("Face", "face"), ("Licence plate", "plate"), ("Digits", "digit"))


class ImageTile(QWidget):
    """A small image shown with nearest-neighbour blocks, with a caption."""

    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.title = title
        self.caption = QLabel(title)
        self.caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.caption.setWordWrap(True)
        self.image = QLabel()
        self.image.setFixedSize(PREVIEW, PREVIEW)
        self.image.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.image.setStyleSheet("background:#26262a; border:1px solid #555;")
        lay.addWidget(self.caption)
        lay.addWidget(self.image)

    def set_image(self, q: QImage | None, detail: str = "") -> None:
        self.caption.setText(f"{self.title}\n{detail}" if detail else self.title)
        if q is None or q.isNull():
            self.image.setPixmap(QPixmap())
            return
        k = max(1, min(PREVIEW // max(1, q.width()), PREVIEW // max(1, q.height())))
        if k > 1:
            q = scaled_nearest(q, q.width() * k, q.height() * k)
        else:
            q = q.scaled(PREVIEW, PREVIEW, Qt.AspectRatioMode.KeepAspectRatio,
                         Qt.TransformationMode.SmoothTransformation)
        self.image.setPixmap(QPixmap.fromImage(q))


class InputPanel(QWidget):
    """Everything between the evidence and the candidates."""

    domain_changed = Signal(str)
    model_changed = Signal(str)  # "" = automatic
    cells_changed = Signal(int)
    generate_clicked = Signal()
    cancel_clicked = Signal()
    eyes_clicked = Signal()
    detect_clicked = Signal()
    shift_test_clicked = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        outer = QVBoxLayout(self)
        box = QGroupBox("Input")
        form = QFormLayout(box)
        self.domain = QComboBox()
        for label, key in DOMAINS:
            self.domain.addItem(label, key)
        self.model = QComboBox()
        self.model.setToolTip("Chosen by the crop's size; pick one to override")
        self.cells = QSpinBox()
        self.cells.setRange(1, 12)
        self.cells.setToolTip("Number of characters; drag the yellow boundaries in the image")
        self.cells_label = QLabel("Characters")
        form.addRow("Domain", self.domain)
        form.addRow("Model", self.model)
        self.model_reason = QLabel()
        self.model_reason.setObjectName("model_reason")
        self.model_reason.setWordWrap(True)
        self.model_reason.setStyleSheet("color:#9aa4b1; font-size:11px;")
        form.addRow(self.model_reason)
        form.addRow(self.cells_label, self.cells)
        tiles = QHBoxLayout()
        self.crop_tile = ImageTile("Your crop")
        self.lr_tile = ImageTile("What the model sees")
        tiles.addWidget(self.crop_tile)
        tiles.addWidget(self.lr_tile)
        tiles.addLayout(self._framing_column())  # beside the tiles: the panel grows no taller
        form.addRow(tiles)
        self.notes = QLabel()
        self.notes.setWordWrap(True)
        self.notes.setStyleSheet("color:#e67e22;")
        form.addRow(self.notes)
        self.crop_check = QLabel()  # the encoder's out-of-distribution check of the crop
        self.crop_check.setObjectName("crop_check")
        self.crop_check.setWordWrap(True)
        self.crop_check.hide()
        form.addRow(self.crop_check)
        self.framing_result = QLabel()
        self.framing_result.setObjectName("framing_result")
        self.framing_result.setWordWrap(True)
        self.framing_result.setStyleSheet("color:#9aa4b1; font-size:11px;")
        self.framing_result.hide()
        form.addRow(self.framing_result)
        outer.addWidget(box)

        gen = QGroupBox("Candidates")
        grid = QGridLayout(gen)
        self.n = QSpinBox()
        self.n.setRange(*N_RANGE)
        self.n.setValue(16)
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.temperature = QDoubleSpinBox()
        self.temperature.setRange(0.0, 10.0)
        self.temperature.setSingleStep(0.1)
        self.temperature.setValue(1.0)
        self.temperature.setToolTip("Scale on sigma of p(z | I_L): 0 gives the mean, larger is more varied. Set to "
                                    "the model's calibrated value when the model changes (face-16's prior came "
                                    "out narrow in training: it needs about 5 to give different faces)")
        self._temperature_model = ""
        self.generate = QPushButton("Generate")
        self.generate.setToolTip("Generate candidates (Ctrl+Return)")
        self.generate.setDefault(True)
        self.cancel = QPushButton("Cancel")
        self.cancel.setEnabled(False)
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.progress.setValue(0)
        grid.addWidget(QLabel("Count"), 0, 0)
        grid.addWidget(self.n, 0, 1)
        grid.addWidget(QLabel("Seed"), 0, 2)
        grid.addWidget(self.seed, 0, 3)
        grid.addWidget(QLabel("Temperature"), 1, 0)
        grid.addWidget(self.temperature, 1, 1)
        grid.addWidget(self.generate, 1, 2)
        grid.addWidget(self.cancel, 1, 3)
        grid.addWidget(self.progress, 2, 0, 1, 4)
        outer.addWidget(gen)
        outer.addStretch(1)

        self.domain.currentIndexChanged.connect(
            lambda _i: self.domain_changed.emit(self.domain.currentData()))
        self.model.activated.connect(lambda _i: self.model_changed.emit(self.model.currentData() or ""))
        self.cells.valueChanged.connect(self.cells_changed.emit)
        self.generate.clicked.connect(self.generate_clicked.emit)
        self.cancel.clicked.connect(self.cancel_clicked.emit)

    def _framing_column(self) -> QVBoxLayout:
        """Eye clicks and the face detector together, and the eye-shift test of the framing (a column)."""
        col = QVBoxLayout()
        col.addStretch(1)
        self.eyes_button = QPushButton("Click eyes (E)")
        self.eyes_button.setToolTip("Click both eye centres: the crop is aligned to the face model's frame")
        self.detect_button = QPushButton("Detect face (F)")
        self.detect_button.setToolTip("MTCNN proposes faces (about 12 px or more); click one: it is aligned by its "
                                      "detected eyes")
        self.shift_button = QPushButton("Eye-shift test")
        self.shift_button.setToolTip("Draw the candidates again with the eyes moved by \u00b11 px and say how much "
                                     "they change (framing sensitivity)")
        for b, sig in ((self.eyes_button, self.eyes_clicked), (self.detect_button, self.detect_clicked),
                       (self.shift_button, self.shift_test_clicked)):
            b.clicked.connect(sig.emit)
            col.addWidget(b)
        # beside "What the model sees": how the camera is assumed to have blurred it (varsr_gui.consistency_choice)
        self.consistency = operator_combo()
        col.addWidget(QLabel("Assumed blur"))
        col.addWidget(self.consistency)
        return col

    def show_check(self, text: str, warn: bool) -> None:
        """The encoder's verdict on the crop (empty text hides it)."""
        self.crop_check.setText(text)
        self.crop_check.setStyleSheet("color:#e67e22; font-weight:bold;" if warn else "color:#9aa4b1; font-size:11px;")
        self.crop_check.setVisible(bool(text))

    def set_models(self, names: list[str], installed: set[str], suggested: str, override: str | None) -> None:
        """Fill the model list: 'Auto' first, then each model (missing ones marked)."""
        self.model.blockSignals(True)
        self.model.clear()
        mark = "" if suggested in installed else " \u2014 not installed"
        self.model.addItem(f"Auto: {suggested}{mark}", "")
        for n in names:
            self.model.addItem(n + ("" if n in installed else " \u2014 not installed"), n)
        idx = self.model.findData(override) if override else 0
        self.model.setCurrentIndex(max(0, idx))
        self.model.blockSignals(False)

    def set_default_temperature(self, model: str, temperature: float) -> None:
        """When the model in use changes, draw at its calibrated ``sample_temperature`` (the analyst may
        change it afterwards; it stays until the model changes again)."""
        if model != self._temperature_model:
            self._temperature_model = model
            self.temperature.setValue(temperature)

    def set_model_reason(self, text: str) -> None:
        """Why the model in use was chosen (shown under the model list)."""
        self.model_reason.setText(text)
        self.model_reason.setToolTip(text)

    def set_busy(self, busy: bool) -> None:
        self.generate.setEnabled(not busy)
        self.cancel.setEnabled(busy)
        if not busy:  # done, failed or cancelled: an empty bar, not a stale 100 %
            self.progress.reset()

    def set_progress(self, i: int, n: int) -> None:
        self.progress.setRange(0, max(1, n))
        self.progress.setValue(i)
