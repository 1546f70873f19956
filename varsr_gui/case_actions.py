"""Case files in the app: File > New / Open / Save / Close case, save as, case details, autosave and
recovery; :class:`CaseActions` is the open case as the window sees it.

Thin over :mod:`core.case`: the session is bound to a :class:`core.case.Case`, which logs every step.
:class:`CaseActions` owns the helpers that do the rest: the copies of large originals (a clip) and of a save
as's case folder in its worker (:mod:`varsr_gui.case_copy_actions`), the originals' check and the watch on
them (:mod:`varsr_gui.case_originals_check`); it mixes in the Case menu's commands and the searches recorded
(:mod:`varsr_gui.case_commands`), removing an original (:mod:`varsr_gui.case_originals`) and the recent cases
(:mod:`varsr_gui.recent_cases`). It knows the window only as a :class:`Shell` (messages, dialogs, a worker
with progress, refresh), so neither module imports the other; its menu items are declared in
:mod:`varsr_gui.actions`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, Protocol

from PySide6.QtCore import QObject, QSettings, QTimer
from PySide6.QtWidgets import QDialog, QLabel, QMessageBox, QWidget

from core import case as K
from core.case.folder_copy import check_target
from core.case.regenerate import RegenResult
from core.errors import VarSRError
from core.workbench import session as S
from varsr_gui.audit_dialog import AuditDialog
from varsr_gui.case_commands import CaseCommands
from varsr_gui.case_copy_actions import CaseCopies, Copying, SavingAs, in_worker
from varsr_gui.case_details_dialog import CaseDetailsDialog
from varsr_gui.case_originals import OriginalsActions
from varsr_gui.case_originals_check import OriginalsCheck
from varsr_gui.qt_images import CandidateImages
from varsr_gui.recent_cases import RecentCases
from varsr_gui.recovery import WorkRecovery
from varsr_gui.workers import Task, TaskContext, TaskRunner

#: How often unsaved work is written to the case's recovery file.
AUTOSAVE_MS = 60_000


class Shell(Protocol):
    """What the case actions need of the window."""

    def status(self, text: str, ms: int = 0) -> None:
        """A status-bar line."""

    def show_message(self, text: str, error: bool = True) -> None:
        """A message in the strip under the banner (and the status bar)."""

    def show_error_dialog(self, title: str, text: str, detail: str = "") -> Any:
        """A window-modal error box."""

    def confirm(self, title: str, text: str, detail: str = "") -> bool:
        """A Yes/No question; True for Yes."""

    def ask_path(self, title: str, start: str, name_filter: str | None = None) -> str:
        """A file to save (``name_filter`` given) or an existing folder (None); "" when cancelled."""

    def ask_text(self, title: str, label: str, text: str = "") -> str | None:
        """A line of text; None when cancelled."""

    def ask_save(self, text: str) -> str:
        """Save, discard or cancel unsaved work: "save", "discard" or "cancel"."""

    def dialog_parent(self) -> QWidget:
        """The widget non-modal dialogs belong to."""

    def submit(self, what: str, work: Callable[[TaskContext], Any], done: Callable[[Any], None]) -> None:
        """Run ``work`` in a worker with progress and Cancel, then ``done(result)`` on the GUI thread."""

    def refresh(self) -> None:
        """Show the session's state again (the input panel, which actions are enabled)."""

    def reset_view(self) -> None:
        """Forget the candidates shown (before the session is cleared or restored)."""


class CaseActions(CaseCommands, OriginalsActions, RecentCases, QObject):
    """The open case: File > New / Open / Save, the Case menu, the autosave timer, the watch on the originals."""

    def __init__(self, session: S.Session, images: CandidateImages, settings: QSettings, shell: Shell,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.session, self.images, self.settings, self.shell = session, images, settings, shell
        self.case: K.Case | None = None
        self.last_verification: list[RegenResult] | None = None
        self.audit_dialog: AuditDialog | None = None
        self.result_box: QMessageBox | None = None
        #: The copies and checks of large originals (its own thread: file I/O, never queued behind torch work).
        self.copier = TaskRunner(self)
        self.copies = CaseCopies(self, self.copier)
        self.timer = QTimer(self)
        self.timer.setInterval(AUTOSAVE_MS)
        self.timer.timeout.connect(self.autosave_now)
        self.checks = OriginalsCheck(self, self.copier)
        self.watcher = self.checks.watcher
        self.case_label = QLabel("No case: File > New case records the work")  # the window's status bar shows it
        session.events.evidence_changed.connect(lambda _ev: self._watch())
        #: Work before any case, autosaved and offered back after a crash.
        self.recovery = WorkRecovery(session, settings, shell, lambda: self.case is not None, self)
        self._update()

    @property
    def copying(self) -> Copying | SavingAs | None:
        """The copy running in the worker (large originals before a save or a new case, a save as), if any."""
        return self.copies.job

    @property
    def check_task(self) -> Task | None:
        """The check of large originals running in the worker, if any."""
        return self.checks.task

    def _update(self) -> None:
        has = self.case is not None
        self.shell.refresh()  # the actions enabled only with a case open
        number = self.case.details.get("case_number") if self.case is not None else None
        self.case_label.setText(f"Case: {self.case.name}" + (f" ({number})" if number else "")
                                + f" \u00b7 examiner {self.case.examiner}" if has else
                                "No case: File > New case records the work")

    # -- new, open, save ---------------------------------------------------------------------------
    def _start_dir(self) -> str:
        return str(self.settings.value("case_dir", self.settings.value("last_dir", "")))

    def new_case_dialog(self, then: Callable[[], object] | None = None) -> None:
        path = self.shell.ask_path("New case: a new folder", self._start_dir(), "Case folder (*)")
        if not path:
            return
        dlg = CaseDetailsDialog(str(self.settings.value("examiner", "")), {}, self.shell.dialog_parent())
        if dlg.exec() == int(QDialog.DialogCode.Accepted.value):
            self.new_case(path, dlg.examiner.text(), dlg.details(), then)

    def new_case(self, folder: str | Path, examiner: str, details: dict[str, str] | None = None,
                 then: Callable[[], object] | None = None) -> K.Case | None:
        """Create a case; the current work is adopted when no case was open, else the new case starts empty.
        ``details``: case number, title, agency.

        When the work adopted holds originals of more than
        :data:`~varsr_gui.case_copy_actions.BACKGROUND_COPY_BYTES` (a clip the candidates were made from, a
        large still), they are hashed and copied into the new case in the worker first (progress, Cancel) and
        this returns None at once: the case is saved and opened when they are in, and ``then()`` follows (as
        for :meth:`save_case`). Cancelled or failed, no case is made (its folder is removed) and the work stays
        open."""
        if self.copying is not None:
            self._busy()
            return None
        if self.case is not None:
            self._close_current()
            self._reset_session()
        try:
            case = K.Case.start(folder, self.session, examiner, details)
        except (VarSRError, OSError) as e:
            self._error("The case was not created", str(e))
            return None
        try:
            pending = case.pending_copies()
        except OSError:
            pending = []  # the save below says what is wrong
        if in_worker(sum(c.size for c in pending)):
            self.copies.copy_then_save(case, pending, then, fresh=True)
            return None
        return self._created(case)

    def _created(self, case: K.Case) -> K.Case | None:
        """Write a new case (:meth:`new_case`) and open it; None (no case made, the work kept) when it fails."""
        try:
            case.save_new()
        except (VarSRError, OSError) as e:
            case.abandon()
            self._error("The case was not created", str(e), "No case was made; your work is still open.")
            return None
        self.settings.setValue("examiner", case.examiner)
        self._add_recent_case(case.folder)
        self._bind(case)
        self.shell.status(f"Case {case.name} created: every step is now logged", 10000)
        return case

    def _busy(self) -> None:
        self.shell.status("The case is being saved or copied: wait for the progress window (its Cancel stops "
                          "it)", 8000)

    def open_case_dialog(self) -> None:
        folder = self.shell.ask_path("Open a case folder", self._start_dir())
        if folder:
            self.open_case(folder)

    def open_case(self, folder: str | Path, recover: bool | None = None) -> K.Case | None:
        """Open a case (asking about unsaved work found beside it unless ``recover`` says); None on failure."""
        bound = self.session.max_candidates  # a huge case's oldest sets stay on disk (kept by every save)
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
        self.shell.reset_view()
        large = self.checks.large(data.originals.values())  # a clip: hashed in the worker, the window shown at once
        case = data.into(self.session, check_originals=not large)
        self._add_recent_case(case.folder)
        self._bind(case)
        if large:
            self.checks.in_background(case, quiet=True)
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
            self.shell.status(f"Opened case {case.name}: {case.audit_check.summary()}{extra}", 15000)
        return case

    def _ask_recover(self, r: K.Recovery) -> bool:
        return self.shell.confirm("Unsaved work found",
                                  f"This case has unsaved work from {r.autosaved_utc[:19].replace('T', ' ')} UTC "
                                  f"({r.pending_entries} logged step(s)), newer than its last save.",
                                  "Recover it? (No opens the case as last saved; the recovery file is kept until "
                                  "the next save.)")

    def save_case(self, then: Callable[[], object] | None = None) -> bool:
        """File > Save case: True when the case was saved before this returns.

        When the originals still to be copied into the case (a clip of gigabytes) come to more than
        :data:`~varsr_gui.case_copy_actions.BACKGROUND_COPY_BYTES`, they are hashed and copied in a worker
        first, with a progress window and Cancel (the window stays usable), and this returns False at once,
        nothing saved yet.
        When they are in, the save runs here on the window's thread as always (fast: it takes the copies the
        worker verified without reading them again) and, if it succeeded, ``then()`` follows. A caller
        that goes on after a save (save as, close, quit) acts on True itself and passes that same step as
        ``then``: exactly one of the two happens, and never in a nested event loop. Cancelled, the case is
        not saved and nothing changed (the copies made are removed); failed, the usual error message.
        """
        if self.copying is not None:
            self._busy()
            return False
        if self.case is None:
            self.new_case_dialog(then)
            return self.case is not None
        try:
            pending = self.case.pending_copies()
        except OSError:
            pending = []  # the save below says what is wrong
        if in_worker(sum(c.size for c in pending)):
            self.copies.copy_then_save(self.case, pending, then)
            return False
        return self._save_now()

    def _save_now(self) -> bool:
        assert self.case is not None
        try:
            self.case.save()
        except (VarSRError, OSError) as e:
            self._error("The case was not saved", str(e), "The case on disk is as it was at its last save; your "
                        "work is still open (and in the recovery file after the next autosave).")
            return False
        self.settings.setValue("case_dir", str(self.case.folder.parent))
        self.shell.status(f"Saved case {self.case.name} ({len(self.case.log)} logged steps)", 8000)
        self.check_originals()
        self.shell.refresh()  # the title's unsaved mark
        return True

    def save_case_as_dialog(self) -> None:
        if not self._need_case():
            return
        path = self.shell.ask_path("Save the case as: a new folder", self._start_dir(), "Case folder (*)")
        if path:
            self.save_case_as(path)

    def save_case_as(self, folder: str | Path) -> None:
        """Save the open case, copy its folder (originals, candidates, audit log) to ``folder`` (new or empty)
        and continue there; the copy's log records where it came from.

        The copy runs in the worker (progress in bytes, Cancel; a clip may be gigabytes) and this returns None
        at once: the case goes on in ``folder`` when it is done. Cancelled or failed, nothing is left at
        ``folder`` and the case stays open where it was. None at once, with the reason, when ``folder``
        cannot take the copy (it holds something, it lies inside the case)."""
        case = self.case
        if case is None:
            self._need_case()  # says why
            return
        try:
            check_target(case.folder, folder)
        except (VarSRError, OSError) as e:
            self._error("The case was not saved as a copy", str(e), f"The case {case.name} is open as it was.")
            return
        if self.save_case(then=partial(self.copies.save_as, folder)):
            self.copies.save_as(folder)  # else not saved, or saved later (large originals copied in first): then

    def edit_details(self) -> K.Case | None:
        """Case > Case details: the case number, title and agency (logged)."""
        if not self._need_case():
            return None
        dlg = CaseDetailsDialog(self.case.examiner, self.case.details, self.shell.dialog_parent(),
                                edit_examiner=False)
        if dlg.exec() == int(QDialog.DialogCode.Accepted.value):
            self.case.set_details(dlg.details())
            self._update()
        return self.case

    def close_case(self) -> bool:
        """File > Close case: asks to save unsaved work (No keeps it in the recovery file), then starts
        without a case; False when cancelled or nothing is open, or while large originals are copied in
        before the save (:meth:`save_case`): the case closes once it is saved."""
        if self.case is None:
            return False
        if self.case.has_unsaved_changes():
            answer = self.shell.ask_save(f"The case {self.case.name} has unsaved steps.")
            if answer == "cancel" or (answer == "save" and not self.save_case(then=self.close_case)):
                return False
        name = self.case.name
        self._close_current()
        self._reset_session()
        self._update()
        self.shell.status(f"Closed case {name}", 8000)
        return True

    def autosave_now(self) -> Path | None:
        """Write unsaved work to the recovery file (silent; a failure is a status message). Large originals
        not yet in the case (a clip) are left to the next save, which copies them in the worker; none while
        that copy runs."""
        if self.case is None or self.copying is not None or not self.case.needs_autosave():
            return None
        try:
            pending = self.case.pending_copies()
            ev = self.session.evidence  # the evidence itself is always copied: a case is opened from it
            defer = {c.sha256 for c in pending if ev is None or c.sha256 != ev.sha256} \
                if in_worker(sum(c.size for c in pending)) else set()
            return self.case.autosave(defer)
        except (VarSRError, OSError) as e:
            self.shell.status(f"Autosave failed: {e}", 15000)
            return None

    def shutdown(self) -> None:
        """On close: keep unsaved work in the recovery file (offered the next time the case is opened)."""
        self.timer.stop()
        self.copies.stop()
        self.autosave_now()
        self.recovery.shutdown()

    def _bind(self, case: K.Case) -> None:
        self.case = case
        self.last_verification = None
        self.checks.warned.clear()
        self.timer.start()
        self.recovery.autosave_now()  # the case holds the work now: the recovery folder goes
        self._watch()
        self._update()

    def _close_current(self) -> None:
        self.copies.stop()  # a save of the case being closed does not happen
        if self.case is not None:
            self.autosave_now()
            self.case.detach()
            self.case = None
            self.timer.stop()
        if self.audit_dialog is not None:
            self.audit_dialog.close()
            self.audit_dialog = None

    def _reset_session(self) -> None:
        self.shell.reset_view()
        self.session.clear()

    # -- the originals (helper: :class:`~varsr_gui.case_originals_check.OriginalsCheck`) ----------------------
    def check_originals(self, quiet: bool = True) -> list[str]:
        """Warn (once per finding) when an original on disk no longer matches its hash; returns the findings.

        When the case's originals (without a case, the evidence file) come to more than
        :data:`~varsr_gui.case_copy_actions.BACKGROUND_COPY_BYTES` (a clip, a large still), they are hashed in
        the worker and the findings are shown when it is done: this returns [] at once (when a case with a clip
        is opened, after each save, on a change the watch sees, and for Case > Check the originals alike)."""
        return self.checks.check(quiet)

    def _watch(self) -> None:
        self.checks.watch()

    # -- messages ----------------------------------------------------------------------------------
    def _need_case(self) -> bool:
        if self.case is None:
            self.shell.show_message("Open or create a case first (File > New case).", error=False)
        return self.case is not None

    def _error(self, title: str, text: str, detail: str = "") -> None:
        self.shell.show_message(f"{title}: {text}")
        self.shell.show_error_dialog(title, text, detail)
