"""The case's details: the examiner, and the case number, title and agency recorded beside them."""

from __future__ import annotations

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QFormLayout, QLineEdit, QWidget

#: (field, label) shown in the dialog; the fields are :data:`core.case.schema.CASE_FIELDS`.
FIELDS = (("case_number", "Case number"), ("title", "Title"), ("agency", "Agency"))


class CaseDetailsDialog(QDialog):
    """Examiner (required), case number, title and agency (optional)."""

    def __init__(self, examiner: str, details: dict[str, str], parent: QWidget | None = None,
                 edit_examiner: bool = True) -> None:
        super().__init__(parent)
        self.setObjectName("case_details_dialog")
        self.setWindowTitle("Case details")
        form = QFormLayout(self)
        self.examiner = QLineEdit(examiner)
        self.examiner.setPlaceholderText("recorded with every step")
        self.examiner.setEnabled(edit_examiner)
        form.addRow("Examiner", self.examiner)
        self.fields: dict[str, QLineEdit] = {}
        for key, label in FIELDS:
            self.fields[key] = QLineEdit(details.get(key, ""))
            form.addRow(label, self.fields[key])
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def details(self) -> dict[str, str]:
        """The non-empty optional fields."""
        return {k: e.text().strip() for k, e in self.fields.items() if e.text().strip()}
