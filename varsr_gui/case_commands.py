"""The Case menu's commands on the open case (audit log, verify regeneration, enforce consistency, export
report) and what the docks record in it (face and plate searches, shortlist exports).

A mixin of :class:`~varsr_gui.case_actions.CaseActions`, which provides ``case``, ``session``, ``images``,
``shell``, ``last_verification``, ``audit_dialog``, ``result_box``, ``_need_case`` and ``_error``. Torch work
(regeneration, the consistency projection) runs in the window's worker (``shell.submit``).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QMessageBox

from core import case as K
from core.case.regenerate import RegenResult, summary, verify_case
from core.case.report import build_report
from core.case.search import face_entry, plate_entry
from core.errors import VarSRError
from core.fileio import atomic_write
from core.images import sha256_file
from core.workbench import session as S
from core.workbench.enforce import enforce_consistency
from varsr_gui.audit_dialog import AuditDialog
from varsr_gui.qt_images import CandidateImages
from varsr_gui.report_pdf import write_pdf
from varsr_gui.wording import enforce_shortfall
from varsr_gui.workers import TaskContext


def _verify_work(case: K.Case, ids: list[str], ctx: TaskContext) -> list[RegenResult]:
    return verify_case(case, ids, progress=ctx.progress, cancelled=ctx.cancelled)


class CaseCommands:
    """Searches and exports recorded in the open case, and the Case menu's commands on it."""

    case: K.Case | None
    session: S.Session
    images: CandidateImages
    shell: Any
    last_verification: list[RegenResult] | None
    audit_dialog: AuditDialog | None
    result_box: QMessageBox | None

    # -- searches ----------------------------------------------------------------------------------
    def record_face_search(self, out: Any) -> dict[str, Any] | None:
        """A face search the dock ran, into the open case."""
        return self.record_search(face_entry(out))

    def record_plate_search(self, out: Any) -> dict[str, Any] | None:
        """A plate search the dock ran, into the open case."""
        return self.record_search(plate_entry(out))

    def plate_rows(self) -> dict[str, Any]:
        """The selected plate row and every row drawn from the same cells (what the plate search reads)."""
        cur = self.session.current
        if cur is None:
            return {}
        cells = self.session.cells_of(cur.id)
        rows = [cid for cid, c in self.session.row_cells.items() if cells is not None and c is cells]
        sets = [cs.id for cs in self.session.sets if cur.id in cs.candidate_ids]
        return {"row": cur.id, "set": sets[0] if sets else None, "rows": rows or [cur.id]}

    def record_search(self, entry: dict[str, Any]) -> dict[str, Any] | None:
        """Keep a search's query and ranked hits in the open case (manifest and audit log)."""
        if self.case is None:
            self.shell.status("The search was not recorded: no case is open (File > New case records "
                                           "every search)", 10000)
            return None
        try:
            rec = self.case.record_search(entry)
        except (TypeError, ValueError) as e:  # not JSON (a NaN score, say): the search stays on screen only
            self._error("The search was not recorded in the case", str(e))
            return None
        self.shell.status(f"{rec['id']} recorded in case {self.case.name}: the query and "
                                       f"{len(rec.get('hits') or [])} hit(s), leads only", 10000)
        return rec

    # -- the case menu -----------------------------------------------------------------------------
    def record(self, action: str, **details: Any) -> None:
        """Log a step in the open case (nothing without one)."""
        if self.case is not None:
            self.case.record(action, **details)

    def record_export(self, **details: Any) -> None:
        """A shortlist export: logged in the open case, else kept for the next case created."""
        if self.case is not None:
            self.case.record("shortlist_exported", **details)
        else:
            self.session.record_export(**details)

    def show_audit_log(self) -> AuditDialog | None:
        if not self._need_case():
            return None
        if self.audit_dialog is not None:
            self.audit_dialog.close()
        self.audit_dialog = AuditDialog(self.case, self.shell.dialog_parent())
        self.audit_dialog.show()
        return self.audit_dialog

    def verify_regeneration(self) -> None:
        """Rebuild the shortlist in a worker and compare it with the case's pixels."""
        if not self._need_case():
            return
        case = self.case
        ids = [e.candidate_id for e in case.session.shortlist]
        if not ids:
            self.shell.show_message("The shortlist is empty: star candidates (S) to verify them.", error=False)
            return
        self.shell.submit("Verifying regeneration", partial(_verify_work, case, ids), partial(self._verified, case))

    def _verified(self, case: K.Case, results: list[RegenResult]) -> None:
        self.last_verification = results
        case.record("regeneration_verified", summary=summary(results), software=K.software(),
                    results=[r.to_dict() for r in results])
        ok = all(r.identical for r in results)
        text = summary(results)
        if ok:
            self.shell.status(f"Regeneration: {text}", 15000)
        else:
            self.shell.show_message(f"Regeneration: {text}")
        self._result_box("Regeneration verified" if ok else "Regeneration differs", text,
                         "\n".join(f"{r.candidate} ({r.kind}, {r.model}): {r.line()}" for r in results), ok)

    def enforce_consistency(self) -> None:
        """A consistency-enforced copy of the selected candidate, as a new (recorded) set."""
        c = self.session.current
        if c is None:
            self.shell.show_message("Select a candidate first.", error=False)
            return
        op = self.session.consistency_operator  # the degradation the analyst assumes (Assumed blur)
        self.shell.submit("Enforcing consistency", partial(self._enforce_work, c, op), partial(self._enforced, c))

    def _enforce_work(self, c: S.Candidate, op: str, ctx: TaskContext) -> S.Candidate:
        e = enforce_consistency(c, op)
        self.images.render([e])
        return e

    def _enforced(self, c: S.Candidate, e: S.Candidate) -> None:
        under = "" if e.scored_under == "ideal" else f" under {e.scored_under}"
        title = f"{c.id} with consistency enforced{under}"
        before = e.recipe.get("parent_scores", {}).get("lr_psnr_db", c.lr_psnr)
        self.session.add_set(title, [e])
        self.shell.status(f"{e.id}: {title} (LR-PSNR {before:.1f} \u2192 {e.lr_psnr:.1f} dB)", 10000)
        shortfall = enforce_shortfall(e)
        if shortfall:
            self.shell.show_message(shortfall, error=False)

    def export_report_dialog(self) -> None:
        if not self._need_case():
            return
        # the report belongs with the case it describes (not the evidence's folder)
        start = str(Path(self.case.folder) / "reports" / f"{self.case.name}_report.html")
        path = self.shell.ask_path("Export the case report (HTML, and PDF beside it)", start, "HTML (*.html)")
        if path:
            self.export_report(path)

    def export_report(self, path: str | Path) -> tuple[Path, Path] | None:
        """Write the report as HTML at ``path`` and as PDF beside it (same name, .pdf); both logged."""
        if not self._need_case():
            return None
        html_path = Path(path).with_suffix(".html")
        pdf_path = html_path.with_suffix(".pdf")
        try:
            rep = build_report(self.case, self.last_verification)
            text = rep.html()
            html_path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(html_path, lambda p: p.write_text(text, encoding="utf-8"))
            write_pdf(rep, pdf_path)
        except (VarSRError, OSError) as e:
            self._error("The report was not written", str(e))
            return None
        self.record("report_exported", html=html_path.name, html_sha256=sha256_file(html_path), pdf=pdf_path.name,
                    pdf_sha256=sha256_file(pdf_path), regeneration=summary(self.last_verification)
                    if self.last_verification else "not verified")
        self.shell.status(f"Report written: {html_path} and {pdf_path.name}", 10000)
        return html_path, pdf_path

    def _result_box(self, title: str, text: str, detail: str, ok: bool) -> QMessageBox:
        if self.result_box is not None:
            self.result_box.close()
        icon = QMessageBox.Icon.Information if ok else QMessageBox.Icon.Warning
        box = QMessageBox(icon, title, text, QMessageBox.StandardButton.Ok, self.shell.dialog_parent())
        box.setDetailedText(detail)
        box.open()
        self.result_box = box
        return box

    # provided by CaseActions
    def _need_case(self) -> bool:
        raise NotImplementedError

    def _error(self, title: str, text: str, detail: str = "") -> None:
        raise NotImplementedError
