"""File > Export shortlist: the folder, and whether to also write unmarked copies (off by default)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from core.workbench.export import MARK


class ExportDialog(QDialog):
    """Where to export, and the explicit (recorded) request for unmarked copies."""

    def __init__(self, start_dir: str, n_leads: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export the shortlist")
        self.start_dir = start_dir
        lay = QVBoxLayout(self)
        info = QLabel(f"{n_leads} lead(s) are exported into a new or empty folder: each as a PNG with "
                      f"\u201c{MARK}\u201d burned into the image, its input as the model saw it, "
                      "manifest.json (each lead's recipe) and contact_sheet.png.")
        info.setWordWrap(True)
        lay.addWidget(info)
        row = QHBoxLayout()
        self.folder = QLineEdit()
        self.folder.setPlaceholderText("a new or empty folder")
        self.browse = QPushButton("Browse\u2026")
        row.addWidget(self.folder, 1)
        row.addWidget(self.browse)
        lay.addLayout(row)
        self.unmarked = QCheckBox("Also write an unmarked copy of each lead (recorded in the manifest)")
        self.unmarked.setChecked(False)
        self.unmarked.setToolTip("Off by default. Only on the examiner's explicit request: each unmarked copy "
                                 "is listed in manifest.json with the time of the request (UTC).")
        lay.addWidget(self.unmarked)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Export")
        lay.addWidget(self.buttons)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.browse.clicked.connect(self._browse)
        self.folder.textChanged.connect(self._update)
        self._update()

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export the shortlist into a new or empty folder",
                                                  self.folder.text() or self.start_dir)
        if folder:
            self.folder.setText(folder)

    def _update(self) -> None:
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(bool(self.folder.text().strip()))

    def chosen_folder(self) -> Path:
        return Path(self.folder.text().strip()).expanduser()

    def unmarked_copies(self) -> bool:
        return self.unmarked.isChecked()
