"""Case files in the app: File > New / Open / Save case, autosave and recovery, the Case menu
(audit log, verify regeneration, enforce consistency, export report, check the originals), and the
face and plate searches, whose queries and hits go into the open case.

Thin over :mod:`core.case`: the window's session is bound to a :class:`core.case.Case`, which logs
every step; torch work (regeneration, the consistency projection) runs in the window's workers.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QFileSystemWatcher, QObject, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QFileDialog, QInputDialog, QLabel, QMenu, QMessageBox, QToolBar

from core import case as K
from core import session as S
from core.case.regenerate import RegenResult, summary, verify_case
from core.case.report import build_report
from core.case.search import face_entry, plate_entry
from core.enforce import enforce_consistency
from core.errors import VarSRError
from core.fileio import atomic_write
from core.images import sha256_file
from varsr_gui.audit_dialog import AuditDialog
from varsr_gui.report_pdf import write_pdf
from varsr_gui.workers import TaskContext

if TYPE_CHECKING:
    from varsr_gui.main_window import MainWindow

#: How often unsaved work is written to the case's recovery file.
AUTOSAVE_MS = 60_000


def file_menu(window: MainWindow) -> QMenu:
    """The window's File menu (made when missing)."""
    for a in window.menuBar().actions():
        if a.menu() is not None and a.text().replace("&", "") == "File":
            return a.menu()
    return window.menuBar().addMenu("&File")


class CaseActions(QObject):
    """The window's case: its menu actions, autosave timer and the watch on the originals."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.w = window
        self.case: K.Case | None = None
        self.last_verification: list[RegenResult] | None = None
        self.audit_dialog: AuditDialog | None = None
        self.result_box: QMessageBox | None = None
        self._warned: set[str] = set()
        self.timer = QTimer(self)
        self.timer.setInterval(AUTOSAVE_MS)
        self.timer.timeout.connect(self.autosave_now)
        self.watcher = QFileSystemWatcher(self)
        self.watcher.fileChanged.connect(lambda _p: self.check_originals())
        self.case_label = QLabel("No case: File > New case records the work")
        window.statusBar().addPermanentWidget(self.case_label)
        self._build_actions()
        window.session.events.evidence_changed.connect(lambda _ev: self._watch())
        self._connect_searches()

    # -- menus -----------------------------------------------------------------------------------
    def _action(self, text: str, slot: Any, key: str | None = None, tip: str = "") -> QAction:
        a = QAction(text, self.w)
        if key:
            a.setShortcut(QKeySequence(key))
        a.setStatusTip(tip or text)
        a.triggered.connect(lambda _c=False: slot())
        self.w.addAction(a)
        return a

    def _build_actions(self) -> None:
        f = file_menu(self.w)
        first = f.actions()[0] if f.actions() else None
        self.a_new = self._action("New &case\u2026", self.new_case_dialog, "Ctrl+Shift+N",
                                  "Start a case folder: the evidence is copied and hashed, every step is logged")
        self.a_open = self._action("Open c&ase\u2026", self.open_case_dialog, "Ctrl+Shift+O")
        self.a_save = self._action("&Save case", self.save_case, "Ctrl+S")
        f.insertActions(first, [self.a_new, self.a_open, self.a_save])
        f.insertSeparator(first)
        help_action = next((a for a in self.w.menuBar().actions() if a.text().replace("&", "") == "Help"), None)
        self.menu = QMenu("Ca&se", self.w)
        if help_action is not None:
            self.w.menuBar().insertMenu(help_action, self.menu)
        else:
            self.w.menuBar().addMenu(self.menu)
        self.a_audit = self._action("Audit &log\u2026", self.show_audit_log, "Ctrl+L")
        self.a_verify = self._action("&Verify regeneration", self.verify_regeneration, "Ctrl+Shift+V",
                                     "Rebuild every shortlisted candidate from the originals; compare pixel by pixel")
        self.a_enforce = self._action("Enforce &consistency on the selected candidate", self.enforce_consistency,
                                      "Ctrl+K", "A new candidate, changed as little as possible so that "
                                      "degrade(candidate) equals the input (recorded in the case)")
        self.a_report = self._action("Export &report\u2026", self.export_report_dialog, "Ctrl+Shift+R",
                                     "HTML and PDF: originals and hashes, steps, models, shortlist, the statement")
        self.a_check = self._action("Check the &originals", lambda: self.check_originals(quiet=False))
        for a in (self.a_audit, self.a_verify, self.a_enforce, self.a_report, self.a_check):
            self.menu.addAction(a)
        bar = self.w.findChild(QToolBar, "main_toolbar")
        if bar is not None:
            bar.addSeparator()
            bar.addAction(self.a_save)
            bar.addAction(self.a_verify)
        self._update()

    def _update(self) -> None:
        has = self.case is not None
        for a in (self.a_audit, self.a_verify, self.a_report):
            a.setEnabled(has)
        self.case_label.setText(f"Case: {self.case.name} \u00b7 examiner {self.case.examiner}" if has else
                                "No case: File > New case records the work")

    # -- new, open, save ---------------------------------------------------------------------------
    def _start_dir(self) -> str:
        return str(self.w.settings.value("case_dir", self.w.settings.value("last_dir", "")))

    def new_case_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self.w, "New case: a new folder", self._start_dir(), "Case folder (*)")
        if not path:
            return
        examiner, ok = QInputDialog.getText(self.w, "Examiner", "Examiner's name (recorded with every step):",
                                            text=str(self.w.settings.value("examiner", "")))
        if ok:
            self.new_case(path, examiner)

    def new_case(self, folder: str | Path, examiner: str) -> K.Case | None:
        """Create a case; the current work is adopted when no case was open, else the new case starts empty."""
        if self.case is not None:
            self._close_current()
            self._reset_session()
        try:
            case = K.Case.create(folder, self.w.session, examiner)
        except (VarSRError, OSError) as e:
            self._error("The case was not created", str(e))
            return None
        self.w.settings.setValue("examiner", case.examiner)
        self._bind(case)
        self.w.statusBar().showMessage(f"Case {case.name} created: every step is now logged", 10000)
        return case

    def open_case_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self.w, "Open a case folder", self._start_dir())
        if folder:
            self.open_case(folder)

    def open_case(self, folder: str | Path, recover: bool | None = None) -> K.Case | None:
        """Open a case (asking about unsaved work found beside it unless ``recover`` says); None on failure."""
        bound = self.w.session.max_candidates  # a huge case's oldest sets stay on disk (kept by every save)
        try:
            data = K.read_case(folder, max_candidates=bound)
            if data.recovery is not None and data.recovery.usable:
                if recover is None:
                    recover = self._ask_recover(data.recovery)
                if recover:
                    data = K.read_case(folder, recover=True, max_candidates=bound)
        except (VarSRError, OSError) as e:
            self._error("The case could not be opened", str(e), "Nothing was changed.")
            return None
        self._close_current()
        self._reset_gui()
        case = data.into(self.w.session)
        self._sync_panel()
        self._bind(case)
        problems = ([case.audit_check.summary()] if case.audit_check and not case.audit_check.ok else []) + \
            case.warnings
        if problems:
            self._error("Case integrity: problems found", f"Case {case.name}: " + problems[0],
                        "\n".join(problems) + "\n\nThese findings are recorded in the audit log.")
        else:
            extra = " (unsaved work recovered: save to keep it)" if case.recovered else ""
            if case.archived_sets:
                n = sum(len(e["candidates"]) for e in case.archived_sets)
                extra += (f"; its {len(case.archived_sets)} oldest set(s) ({n} candidates) were left on disk to "
                          f"keep memory bounded (at most {bound} are loaded; shortlisted ones always): they stay in "
                          "the case")
            self.w.statusBar().showMessage(f"Opened case {case.name}: {case.audit_check.summary()}{extra}", 15000)
        return case

    def _ask_recover(self, r: K.Recovery) -> bool:
        box = QMessageBox(QMessageBox.Icon.Question, "Unsaved work found",
                          f"This case has unsaved work from {r.autosaved_utc[:19].replace('T', ' ')} UTC "
                          f"({r.pending_entries} logged step(s)), newer than its last save.",
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, self.w)
        box.setInformativeText("Recover it? (No opens the case as last saved; the recovery file is kept until "
                               "the next save.)")
        return box.exec() == QMessageBox.StandardButton.Yes

    def save_case(self) -> bool:
        if self.case is None:
            self.new_case_dialog()
            return self.case is not None
        try:
            self.case.save()
        except (VarSRError, OSError) as e:
            self._error("The case was not saved", str(e), "The case on disk is as it was at its last save; your "
                        "work is still open (and in the recovery file after the next autosave).")
            return False
        self.w.settings.setValue("case_dir", str(self.case.folder.parent))
        self.w.statusBar().showMessage(f"Saved case {self.case.name} ({len(self.case.log)} logged steps)", 8000)
        self.check_originals()
        return True

    def autosave_now(self) -> Path | None:
        """Write unsaved work to the recovery file (silent; a failure is a status message)."""
        if self.case is None or not self.case.needs_autosave():
            return None
        try:
            return self.case.autosave()
        except (VarSRError, OSError) as e:
            self.w.statusBar().showMessage(f"Autosave failed: {e}", 15000)
            return None

    def shutdown(self) -> None:
        """On close: keep unsaved work in the recovery file (offered the next time the case is opened)."""
        self.timer.stop()
        self.autosave_now()

    def _bind(self, case: K.Case) -> None:
        self.case = case
        self.last_verification = None
        self._warned.clear()
        self.timer.start()
        self._watch()
        self._update()

    def _close_current(self) -> None:
        if self.case is not None:
            self.autosave_now()
            self.case.detach()
            self.case = None
            self.timer.stop()
        if self.audit_dialog is not None:
            self.audit_dialog.close()
            self.audit_dialog = None

    def _reset_gui(self) -> None:
        w = self.w
        w.grid.remove_all()
        w.row_cells.clear()
        w.current = None
        w.preview = None
        w.compare.set_panels([])

    def _sync_panel(self) -> None:
        """Show the opened case's domain in the input panel (without re-applying it to the session)."""
        combo = self.w.input_panel.domain
        idx = combo.findData(self.w.session.domain)
        if idx >= 0:
            combo.blockSignals(True)
            combo.setCurrentIndex(idx)
            combo.blockSignals(False)
        self.w._on_input_changed()

    def _reset_session(self) -> None:
        self._reset_gui()
        self.w.session.clear()

    # -- searches ----------------------------------------------------------------------------------
    def _connect_searches(self) -> None:
        """Every face or plate search the window's docks run goes into the open case."""
        face = getattr(self.w, "face_search_dock", None)
        if face is not None:
            face.hits_found.connect(lambda out: self.record_search(face_entry(out)))
        plate = getattr(self.w, "plate_dock", None)
        if plate is not None:
            plate.describe_cells = self.plate_rows
            plate.hits_found.connect(lambda out: self.record_search(plate_entry(out)))

    def plate_rows(self) -> dict[str, Any]:
        """The selected plate row and every row drawn from the same cells (what the plate search reads)."""
        cur = self.w.current
        if cur is None:
            return {}
        cells = self.w.row_cells.get(cur.id)
        rows = [cid for cid, c in self.w.row_cells.items() if cells is not None and c is cells]
        sets = [cs.id for cs in self.w.session.sets if cur.id in cs.candidate_ids]
        return {"row": cur.id, "set": sets[0] if sets else None, "rows": rows or [cur.id]}

    def record_search(self, entry: dict[str, Any]) -> dict[str, Any] | None:
        """Keep a search's query and ranked hits in the open case (manifest and audit log)."""
        if self.case is None:
            self.w.statusBar().showMessage("The search was not recorded: no case is open (File > New case records "
                                           "every search)", 10000)
            return None
        try:
            rec = self.case.record_search(entry)
        except (TypeError, ValueError) as e:  # not JSON (a NaN score, say): the search stays on screen only
            self._error("The search was not recorded in the case", str(e))
            return None
        self.w.statusBar().showMessage(f"{rec['id']} recorded in case {self.case.name}: the query and "
                                       f"{len(rec.get('hits') or [])} hit(s), leads only", 10000)
        return rec

    # -- the case menu -----------------------------------------------------------------------------
    def record(self, action: str, **details: Any) -> None:
        """Log a step in the open case (nothing without one)."""
        if self.case is not None:
            self.case.record(action, **details)

    def _need_case(self) -> bool:
        if self.case is None:
            self.w.show_message("Open or create a case first (File > New case).", error=False)
        return self.case is not None

    def show_audit_log(self) -> AuditDialog | None:
        if not self._need_case():
            return None
        if self.audit_dialog is not None:
            self.audit_dialog.close()
        self.audit_dialog = AuditDialog(self.case, self.w)
        self.audit_dialog.show()
        return self.audit_dialog

    def verify_regeneration(self) -> None:
        """Rebuild the shortlist in a worker and compare it with the case's pixels."""
        if not self._need_case():
            return
        case = self.case
        ids = [e.candidate_id for e in case.session.shortlist]
        if not ids:
            self.w.show_message("The shortlist is empty: star candidates (S) to verify them.", error=False)
            return

        def work(ctx: TaskContext) -> list[RegenResult]:
            return verify_case(case, ids, progress=ctx.progress, cancelled=ctx.cancelled)

        def done(results: list[RegenResult]) -> None:
            self.last_verification = results
            case.record("regeneration_verified", summary=summary(results), software=K.software(),
                        results=[r.to_dict() for r in results])
            ok = all(r.identical for r in results)
            text = summary(results)
            if ok:
                self.w.statusBar().showMessage(f"Regeneration: {text}", 15000)
            else:
                self.w.show_message(f"Regeneration: {text}")
            self._result_box("Regeneration verified" if ok else "Regeneration differs", text,
                             "\n".join(f"{r.candidate} ({r.kind}, {r.model}): {r.line()}" for r in results), ok)

        self.w._submit("Verifying regeneration", work, done)

    def enforce_consistency(self) -> None:
        """A consistency-enforced copy of the selected candidate, as a new (recorded) set."""
        c = self.w.current
        if c is None:
            self.w.show_message("Select a candidate first.", error=False)
            return

        def work(ctx: TaskContext) -> S.Candidate:
            e = enforce_consistency(c)
            self.w.images.render([e])
            return e

        def done(e: S.Candidate) -> None:
            self.w.session.add_set(f"{c.id} with consistency enforced", [e])
            self.w.statusBar().showMessage(f"{e.id}: {c.id} with consistency enforced (LR-PSNR {c.lr_psnr:.1f} "
                                           f"\u2192 {e.lr_psnr:.1f} dB)", 10000)

        self.w._submit("Enforcing consistency", work, done)

    def export_report_dialog(self) -> None:
        if not self._need_case():
            return
        start = str(Path(self._start_dir()) / f"{self.case.name}_report.html")
        path, _ = QFileDialog.getSaveFileName(self.w, "Export the case report (HTML, and PDF beside it)", start,
                                              "HTML (*.html)")
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
        self.w.statusBar().showMessage(f"Report written: {html_path} and {pdf_path.name}", 10000)
        return html_path, pdf_path

    # -- the originals -----------------------------------------------------------------------------
    def _watch(self) -> None:
        paths = set(self.watcher.files())
        want = set()
        if self.case is not None:
            want |= {str(self.case.folder / o.file) for o in self.case.originals.values()}
        ev = self.w.session.evidence
        if ev is not None and ev.path is not None:
            want.add(str(ev.path))
        if paths - want:
            self.watcher.removePaths(list(paths - want))
        add = [p for p in want - paths if Path(p).is_file()]
        if add:
            self.watcher.addPaths(add)

    def check_originals(self, quiet: bool = True) -> list[str]:
        """Warn (once per finding) when an original on disk no longer matches its hash; returns the findings."""
        if self.case is not None:
            found = self.case.check_originals()
        else:
            ev = self.w.session.evidence
            found = ([f"the evidence file {ev.path.name} no longer matches the SHA-256 recorded when it was loaded"]
                     if ev is not None and ev.path is not None and ev.path.is_file()
                     and sha256_file(ev.path) != ev.sha256 else [])
        new = [f for f in found if f not in self._warned]
        if new:
            self._warned.update(new)
            self.record("original_mismatch", findings=new)
            self._error("An original no longer matches its hash", new[0][0].upper() + new[0][1:] + ".",
                        "\n".join(found) + "\n\nThe candidates were made from the image as it was when loaded; "
                        "keep the case's copy and find out what changed the file.")
        elif not found and not quiet:
            self.w.statusBar().showMessage("Every original matches its recorded SHA-256", 8000)
        self._watch()
        return found

    # -- messages ----------------------------------------------------------------------------------
    def _error(self, title: str, text: str, detail: str = "") -> None:
        self.w.show_message(f"{title}: {text}")
        self.w.show_error_dialog(title, text, detail)

    def _result_box(self, title: str, text: str, detail: str, ok: bool) -> QMessageBox:
        if self.result_box is not None:
            self.result_box.close()
        icon = QMessageBox.Icon.Information if ok else QMessageBox.Icon.Warning
        box = QMessageBox(icon, title, text, QMessageBox.StandardButton.Ok, self.w)
        box.setDetailedText(detail)
        box.open()
        self.result_box = box
        return box
