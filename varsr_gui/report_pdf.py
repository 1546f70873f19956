"""The case report as PDF, printed by Qt (QTextDocument onto a QPdfWriter), atomically.

The document is laid out on the PDF's pages here, not by Qt's printing, so that no table row is split
by a page break (:func:`paginate`): Qt moves a row to the next page only when none of its cells has
begun, and otherwise breaks its lines across the two pages. Where a break would split a row, the table
is ended before it and carries on on the next page (its header row repeated); rows joined by a cell
spanning them (a lead's picture beside its six lines) move as one.
"""

from __future__ import annotations

import re
from pathlib import Path

from PySide6.QtCore import QMarginsF, QSizeF, QUrl
from PySide6.QtGui import (
    QImage,
    QPageLayout,
    QPageSize,
    QPaintDevice,
    QPdfWriter,
    QTextDocument,
    QTextFrame,
    QTextTable,
)

from core.case.report import Report
from core.fileio import atomic_write
from core.workbench.export import NOTICE

#: At most this many rows are moved (a guard: each move lays the document out again).
MAX_MOVES = 500


def report_document(report: Report, html: str | None = None) -> QTextDocument:
    """The report's HTML (or ``html``, the same with page breaks) with its images as the document's resources."""
    doc = QTextDocument()
    for key, data in report.images.items():
        doc.addResource(QTextDocument.ResourceType.ImageResource, QUrl(key), QImage.fromData(data, "PNG"))
    doc.setHtml(report.html(lambda key: key) if html is None else html)
    return doc


def tables(doc: QTextDocument) -> list[QTextTable]:
    """Every table of the document, in order (nested ones after their parent)."""
    out: list[QTextTable] = []

    def walk(frame: QTextFrame) -> None:
        for child in frame.childFrames():
            if isinstance(child, QTextTable):
                out.append(child)
            walk(child)

    walk(doc.rootFrame())
    return out


def _extent(doc: QTextDocument, table: QTextTable, row: int) -> tuple[float, float] | None:
    """The top and bottom of a row's lines (its cells' text and pictures), in document coordinates."""
    lay = doc.documentLayout()
    tops, bottoms = [], []
    for c in range(table.columns()):
        cell = table.cellAt(row, c)
        if cell.row() != row or cell.column() != c:
            continue
        block = doc.findBlock(cell.firstPosition())
        while block.isValid() and block.position() <= cell.lastPosition():
            top = lay.blockBoundingRect(block).top()
            bl = block.layout()
            for i in range(bl.lineCount()):
                line = bl.lineAt(i)
                tops.append(top + line.y())
                bottoms.append(top + line.y() + line.height())
            block = block.next()
    return (min(tops), max(bottoms)) if tops else None


def row_groups(table: QTextTable) -> list[tuple[int, int]]:
    """The table's rows as groups that must stay together: a row alone, or the rows a cell spans."""
    last = list(range(table.rows()))  # the last row each row's group reaches
    for r in range(table.rows()):
        for c in range(table.columns()):
            cell = table.cellAt(r, c)
            last[r] = max(last[r], cell.row() + cell.rowSpan() - 1)
    groups, start, reach = [], 0, 0
    for r in range(table.rows()):
        reach = max(reach, last[r])
        if r == reach:
            groups.append((start, r))
            start, reach = r + 1, r + 1
    return groups


def headed_tables(html: str) -> set[int]:
    """The tables (by order) whose first row is a header row (``<th>`` cells)."""
    out = set()
    for t, m in enumerate(re.finditer(r"<table\b[^>]*>\s*(<tr\b.*?</tr>)", html, re.S)):
        if "<th" in m.group(1):
            out.add(t)
    return out


def split_rows(doc: QTextDocument, headed: set[int] | None = None) -> list[tuple[int, int, int, float, float]]:
    """Each group of rows whose lines fall on two pages or more: (table, first row, last row, top, bottom).
    In the tables ``headed`` the header row and the first row after it are one group (never a header alone
    at a page's foot)."""
    page = doc.pageSize().height()
    out = []
    for t, table in enumerate(tables(doc)):
        groups = row_groups(table)
        if t in (headed or set()) and len(groups) > 1:
            groups = [(groups[0][0], groups[1][1]), *groups[2:]]
        for first, last in groups:
            spans = [e for r in range(first, last + 1) if (e := _extent(doc, table, r)) is not None]
            if not spans:
                continue
            top, bottom = min(s[0] for s in spans), max(s[1] for s in spans)
            if int(top // page) != int((bottom - 0.01) // page):
                out.append((t, first, last, top, bottom))
    return out


def cut_before_row(html: str, table: int, row: int) -> str:
    """``html`` with the ``table``-th table made to start a new page at its ``row``-th row: the table ends
    there and a copy of its opening tag (and of its header row, if it has one) carries on on the next page."""
    starts = [m.start() for m in re.finditer(r"<table\b", html)]
    s = starts[table]
    head_end = html.index(">", s) + 1
    tag = html[s:head_end]
    if re.search(r"\bstyle=\"", tag):
        broken = re.sub(r'\bstyle="', 'style="page-break-before: always; ', tag, count=1)
    else:
        broken = tag[:-1] + ' style="page-break-before: always">'
    if row == 0:
        return html[:s] + broken + html[head_end:]
    body = html[head_end:html.index("</table>", head_end)]
    rows = [m.start() for m in re.finditer(r"<tr\b", body)]
    first = body[rows[0]:rows[1]] if len(rows) > 1 else ""
    header = first if "<th" in first else ""
    at = head_end + rows[row]
    return html[:at] + "</table>" + broken + header + html[at:]


def paginate(report: Report, page: QSizeF, device: QPaintDevice | None = None) -> tuple[QTextDocument, int]:
    """The report laid out on pages of ``page`` size (measured on ``device``) with no table row split by a
    page break: each row (or group of spanned rows) that a break would split starts the next page instead;
    one taller than a page is left to break. Returns the document and the number of rows moved."""
    html = report.html(lambda key: key)
    moved, skip = 0, set()
    for _ in range(MAX_MOVES):
        doc = report_document(report, html)
        if device is not None:
            doc.documentLayout().setPaintDevice(device)
        doc.setPageSize(page)
        todo = [x for x in split_rows(doc, headed_tables(html)) if (x[0], x[1]) not in skip]
        if not todo:
            return doc, moved
        t, first, _last, top, bottom = todo[0]
        skip.add((t, first))  # a group cut once and still split (taller than a page) is left as it is
        if bottom - top > 0.9 * page.height():
            continue
        html = cut_before_row(html, t, first)
        moved += 1
    return doc, moved


def write_pdf(report: Report, path: str | Path, dpi: int = 150) -> Path:
    """Print ``report`` to an A4 PDF at ``path`` (replaced atomically), no table row split; returns the path."""
    path = Path(path)

    def write(tmp: Path) -> None:
        writer = QPdfWriter(str(tmp))
        writer.setResolution(dpi)
        writer.setPageSize(QPageSize(QPageSize.PageSizeId.A4))
        writer.setPageMargins(QMarginsF(14, 14, 14, 14), QPageLayout.Unit.Millimeter)
        writer.setTitle(report.title)
        writer.setCreator(f"VarSR Studio \u2014 {NOTICE}")
        doc, _ = paginate(report, QSizeF(writer.pageLayout().paintRectPixels(dpi).size()), writer)
        doc.print_(writer)
        del doc
        del writer  # closes the file

    atomic_write(path, write)
    return path
