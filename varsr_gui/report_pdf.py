"""The case report as PDF, printed by Qt (QTextDocument onto a QPdfWriter), atomically."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QMarginsF, QUrl
from PySide6.QtGui import QImage, QPageLayout, QPageSize, QPdfWriter, QTextDocument

from core.case.report import Report
from core.fileio import atomic_write
from core.workbench.export import NOTICE


def report_document(report: Report) -> QTextDocument:
    """The report's HTML with its images registered as the document's resources."""
    doc = QTextDocument()
    for key, data in report.images.items():
        doc.addResource(QTextDocument.ResourceType.ImageResource, QUrl(key), QImage.fromData(data, "PNG"))
    doc.setHtml(report.html(lambda key: key))
    return doc


def write_pdf(report: Report, path: str | Path, dpi: int = 150) -> Path:
    """Print ``report`` to an A4 PDF at ``path`` (replaced atomically); returns the path."""
    path = Path(path)
    doc = report_document(report)

    def write(tmp: Path) -> None:
        writer = QPdfWriter(str(tmp))
        writer.setResolution(dpi)
        writer.setPageSize(QPageSize(QPageSize.PageSizeId.A4))
        writer.setPageMargins(QMarginsF(14, 14, 14, 14), QPageLayout.Unit.Millimeter)
        writer.setTitle(report.title)
        writer.setCreator(f"VarSR Studio \u2014 {NOTICE}")
        doc.print_(writer)
        del writer  # closes the file

    atomic_write(path, write)
    return path
