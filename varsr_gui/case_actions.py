"""Case files in the app: File > New / Open / Save case, autosave and recovery, the Case menu
(audit log, verify regeneration, enforce consistency, export report, check the originals), and the
face and plate searches, whose queries and hits go into the open case.

Thin over :mod:`core.case`: the session is bound to a :class:`core.case.Case`, which logs every step;
torch work (regeneration, the consistency projection) runs in the workers, and so do the hashing and copying
of large originals (a clip) into the case before a save (:meth:`CaseActions.save_case`) or into a new case
(:meth:`CaseActions.new_case`), the copy of the case folder of a save as (:meth:`CaseActions.save_case_as`)
and the check of large originals when a case is opened (:meth:`CaseActions.open_case`). It knows the window only as
a :class:`Shell` (messages, dialogs, a worker with progress, refresh), so neither module imports the
other; its menu items are declared in :mod:`varsr_gui.actions`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Protocol

from PySide6.QtCore import QFileSystemWatcher, QObject, QSettings, QTimer
from PySide6.QtWidgets import QDialog, QLabel, QMessageBox, QProgressDialog, QWidget

from core import case as K
from core.case.copying import CopyCancelled, CopyResult, PendingCopy, check_files, run_copies, undo_copies
from core.case.folder_copy import check_target, copy_case_folder, remove_tree
from core.case.regenerate import RegenResult, summary, verify_case
from core.case.report import build_report
from core.case.search import face_entry, plate_entry
from core.errors import CaseError, VarSRError
from core.fileio import atomic_write
from core.images import sha256_file
from core.workbench import session as S
from core.workbench.enforce import enforce_consistency
from varsr_gui.audit_dialog import AuditDialog
from varsr_gui.case_details_dialog import CaseDetailsDialog
from varsr_gui.case_originals import OriginalsActions
from varsr_gui.qt_images import CandidateImages
from varsr_gui.recent_cases import RecentCases
from varsr_gui.recovery import WorkRecovery
from varsr_gui.report_pdf import write_pdf
from varsr_gui.wording import enforce_shortfall
from varsr_gui.workers import Task, TaskContext, TaskRunner

#: How often unsaved work is written to the case's recovery file.
AUTOSAVE_MS = 60_000
#: Originals still to be copied into a case (a clip of gigabytes) of more bytes than this in all are hashed
#: and copied in a worker, with progress and Cancel, before the save; fewer are copied by the save itself.
BACKGROUND_COPY_BYTES = 64 << 20


@dataclass
class Copying:
    """The originals' copy before a save of ``case``, in the worker; ``then`` after the save. ``fresh``: a case
    :meth:`core.case.Case.start` made (File > New case adopting a clip), saved and bound once its copies are in."""

    case: K.Case
    pending: list[PendingCopy]
    then: Callable[[], object] | None
    dialog: QProgressDialog
    task: Task | None = None
    #: What the worker did, set when its copy ended (also when a cancel came too late to stop it).
    result: CopyResult | None = None
    fresh: bool = False

    def undo(self) -> None:
        """The save (or the new case) will not happen: the copies made go (and the new case's folder)."""
        if self.result is not None:
            undo_copies(self.case.folder, self.result)
        if self.fresh:
            self.case.abandon()


@dataclass
class SavingAs:
    """Save as: the case folder of ``case`` copied to ``target`` in the worker; the case goes on there after."""

    case: K.Case
    target: Path
    dialog: QProgressDialog
    task: Task | None = None
    #: Set when the worker's copy is complete at ``target`` (also when a cancel came too late to stop it).
    copied: bool = False

    def undo(self) -> None:
        """The save as will not happen: a copy completed at the target (made by this job) goes."""
        if self.copied:
            remove_tree(self.target)


def _thousandths(ctx: TaskContext) -> Callable[[int, int], None]:
    """Progress in bytes reported as thousandths (a clip's bytes overflow Qt's int), each step once."""
    shown = -1

    def progress(done: int, total: int) -> None:
        nonlocal shown
        k = done * 1000 // max(1, total)
        if k != shown:
            shown = k
            ctx.progress(k, 1000)

    return progress


def _copy_work(job: Copying, ctx: TaskContext) -> CopyResult | None:
    """The originals' copies, in the worker."""
    try:
        job.result = run_copies(job.case.folder, job.pending, progress=_thousandths(ctx), cancelled=ctx.cancelled)
        return job.result
    except CopyCancelled:
        return None  # the cancel flag is set: the task reports a cancel
    except OSError as e:  # a full disk, a folder made read-only: the copies made were removed
        raise CaseError(f"the originals could not be copied into the case: {e}") from e


def _save_as_work(job: SavingAs, ctx: TaskContext) -> Path | None:
    """The case folder copied to the save as's target, in the worker; None when cancelled (nothing left there)."""
    try:
        copy_case_folder(job.case.folder, job.target, progress=_thousandths(ctx), cancelled=ctx.cancelled)
    except CopyCancelled:
        return None
    except OSError as e:  # a full disk, a folder not writable: the partial copy was removed
        raise CaseError(f"the case could not be copied to {job.target}: {e}") from e
    job.copied = True
    return job.target


def _check_work(folder: Path, originals: list[K.Original], evidence: tuple[Path, str] | None,
                ctx: TaskContext) -> list[str] | None:
    """The originals' hashes checked in the worker (a clip's copy is gigabytes); None when cancelled."""
    try:
        return check_files(folder, originals, evidence, ctx.cancelled)
    except CopyCancelled:
        return None
    except OSError as e:
        raise CaseError(f"the originals could not be read: {e}") from e


def _megabytes(n: int) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e9 else f"{n / 1e6:.0f} MB"


def _verify_work(case: K.Case, ids: list[str], ctx: TaskContext) -> list[RegenResult]:
    return verify_case(case, ids, progress=ctx.progress, cancelled=ctx.cancelled)


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


class CaseActions(OriginalsActions, RecentCases, QObject):
    """The open case: File > New / Open / Save, the Case menu, the autosave timer, the watch on the originals."""

    def __init__(self, session: S.Session, images: CandidateImages, settings: QSettings, shell: Shell,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.session, self.images, self.settings, self.shell = session, images, settings, shell
        self.case: K.Case | None = None
        self.last_verification: list[RegenResult] | None = None
        self.audit_dialog: AuditDialog | None = None
        self.result_box: QMessageBox | None = None
        self._warned: set[str] = set()
        #: The originals' copy before a save (its own thread: file I/O, never queued behind torch work).
        self.copier = TaskRunner(self)
        self.copying: Copying | SavingAs | None = None
        self.check_task: Task | None = None  # the originals' hashes checked in the worker (large ones)
        self._checks = 0
        self.timer = QTimer(self)
        self.timer.setInterval(AUTOSAVE_MS)
        self.timer.timeout.connect(self.autosave_now)
        self.watcher = QFileSystemWatcher(self)
        self.watcher.fileChanged.connect(lambda _p: self.check_originals())
        self.case_label = QLabel("No case: File > New case records the work")  # the window's status bar shows it
        session.events.evidence_changed.connect(lambda _ev: self._watch())
        #: Work before any case, autosaved and offered back after a crash.
        self.recovery = WorkRecovery(session, settings, shell, lambda: self.case is not None, self)
        self._update()

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

        When the work adopted holds originals of more than :data:`BACKGROUND_COPY_BYTES` (a clip the
        candidates were made from, a large still), they are hashed and copied into the new case in the worker
        first (progress, Cancel) and this returns None at once: the case is saved and opened when they are in,
        and ``then()`` follows (as for :meth:`save_case`). Cancelled or failed, no case is made (its folder is
        removed) and the work stays open."""
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
        if sum(c.size for c in pending) > BACKGROUND_COPY_BYTES:
            self._copy_then_save(case, pending, then, fresh=True)
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
        large = self._large(data.originals.values())  # a clip: hashed in the worker, the window shown at once
        case = data.into(self.session, check_originals=not large)
        self._add_recent_case(case.folder)
        self._bind(case)
        if large:
            self._check_in_worker(case, quiet=True)
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
        :data:`BACKGROUND_COPY_BYTES`, they are hashed and copied in a worker first, with a progress
        window and Cancel (the window stays usable), and this returns False at once, nothing saved yet.
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
        if sum(c.size for c in pending) > BACKGROUND_COPY_BYTES:
            self._copy_then_save(self.case, pending, then)
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

    def _progress_dialog(self, title: str, what: str) -> QProgressDialog:
        """A copy's progress window (thousandths, Cancel), non-modal: setValue never spins a nested event loop."""
        dlg = QProgressDialog(what, "Cancel", 0, 1000, self.shell.dialog_parent())
        dlg.setWindowTitle(title)
        dlg.setAutoClose(False)
        dlg.setAutoReset(False)
        dlg.setMinimumDuration(0)
        if self.check_task is not None:  # a check would hold the copy up: the save checks again after it
            self.check_task.cancel()
            self.check_task, self._checks = None, self._checks + 1
        return dlg

    def _start(self, job: Copying | SavingAs, name: str, work: Callable[[TaskContext], Any],
               done: Callable[[Any], None], what: str) -> None:
        """Run a copy ``job`` in the copier's worker, its progress window showing and cancelling it."""
        self.copying = job
        job.task = self.copier.submit(name, work, done, partial(self._copy_failed, job),
                                      lambda i, _n: job.dialog.setValue(i) if self.copying is job else None,
                                      partial(self._copy_cancelled, job))
        job.dialog.canceled.connect(job.task.cancel)  # its Cancel button, Esc or closing it
        job.dialog.show()
        self.shell.status(what, 0)

    def _copy_then_save(self, case: K.Case, pending: list[PendingCopy], then: Callable[[], object] | None,
                        fresh: bool = False) -> None:
        """Copy the originals in the worker (progress, Cancel), then save (:meth:`save_case`) or, ``fresh``,
        create the case (:meth:`new_case`)."""
        total = sum(c.size for c in pending)
        what = (f"{'Creating' if fresh else 'Saving'} case {case.name}: copying {len(pending)} original(s) "
                f"({_megabytes(total)}) into the case and checking their SHA-256\u2026")
        dlg = self._progress_dialog("Creating the case" if fresh else "Saving the case", what)
        job = Copying(case, pending, then, dlg, fresh=fresh)
        self._start(job, "Copying the originals", partial(_copy_work, job), partial(self._copied, job), what)

    def _end_copy(self, job: Copying | SavingAs) -> bool:
        """The copy ``job`` ended: its progress window goes; False when it is not the current one (stopped)."""
        if self.copying is not job:
            return False
        self.copying = None
        job.dialog.close()
        job.dialog.deleteLater()
        return True

    def _stop_copy(self) -> None:
        """Cancel the copy (and a check of the originals) and wait for the worker to stop (a cancelled copy
        removes what it made; one that had just ended is undone here, and a new case waiting for its copies is
        not made): before the case it copies is closed, so nothing writes into or beside a case no longer open.
        No event loop runs meanwhile; the worker's late signals are then ignored."""
        job = self.copying
        if job is None and self.check_task is None:
            return
        self.copier.cancel_all()
        self.copier.pool.waitForDone()
        self.check_task = None
        if job is not None:
            self._end_copy(job)
            job.undo()

    def _copied(self, job: Copying, result: CopyResult) -> None:
        if not self._end_copy(job):
            return
        if job.fresh:  # File > New case: the case is written and opened now
            job.case.take_copies(result)
            if self._created(job.case) is not None and job.then is not None:
                job.then()
            return
        if job.case is not self.case:  # closed meanwhile without saving (cannot happen: _stop_copy)
            undo_copies(job.case.folder, result)
            return
        job.case.take_copies(result)
        if self.save_case(job.then) and job.then is not None:
            job.then()

    def _copy_failed(self, job: Copying | SavingAs, text: str) -> None:
        if not self._end_copy(job):
            return
        job.undo()
        if isinstance(job, SavingAs):
            self._error("The case was not saved as a copy", text, f"Nothing was left at {job.target}; the case "
                        f"{job.case.name} is open as it was.")
        elif job.fresh:
            self._error("The case was not created", text, "No case was made; your work is still open.")
        elif job.case is self.case:
            self._error("The case was not saved", text, "The case on disk is as it was at its last save; your "
                        "work is still open (and in the recovery file after the next autosave).")

    def _copy_cancelled(self, job: Copying | SavingAs) -> None:
        if not self._end_copy(job):
            return
        job.undo()  # a cancel that came as the copy ended: what it made goes all the same
        if isinstance(job, SavingAs):
            text = (f"The case {job.case.name} was not saved as a copy: the copy was cancelled. Nothing was left "
                    f"at {job.target}; the case is open as it was.")
        elif job.fresh:
            text = (f"The case {job.case.name} was not created: the copy of its originals was cancelled. No case "
                    "was made; your work is still open.")
        elif job.case is self.case:
            text = (f"The case {job.case.name} was not saved: the copy of its originals was cancelled. Nothing "
                    "was changed: the case on disk is as it was at its last save, and your work is still open.")
        else:
            return
        self.shell.show_message(text, error=False)

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
        if self.save_case(then=partial(self._save_copy_as, folder)):
            self._save_copy_as(folder)  # else not saved, or saved later (large originals copied in first): then

    def _save_copy_as(self, folder: str | Path) -> None:
        """Copy the saved case's folder to ``folder`` in the worker (:meth:`save_case_as`)."""
        assert self.case is not None
        case, dst = self.case, Path(folder)
        what = f"Saving case {case.name} as {dst.name}: copying the case folder\u2026"
        job = SavingAs(case, dst, self._progress_dialog("Saving the case as a copy", what))
        self._start(job, "Copying the case", partial(_save_as_work, job), partial(self._copied_as, job), what)

    def _copied_as(self, job: SavingAs, target: Path) -> None:
        """The copy is complete: the open case goes on in it (steps taken meanwhile included), saved there."""
        if not self._end_copy(job):
            return
        if job.case is not self.case:  # closed meanwhile (cannot happen: _stop_copy)
            job.undo()
            return
        job.case.continue_in(target)
        self._add_recent_case(target)
        self._watch()
        self._update()
        self._save_now()

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
                if sum(c.size for c in pending) > BACKGROUND_COPY_BYTES else set()
            return self.case.autosave(defer)
        except (VarSRError, OSError) as e:
            self.shell.status(f"Autosave failed: {e}", 15000)
            return None

    def shutdown(self) -> None:
        """On close: keep unsaved work in the recovery file (offered the next time the case is opened)."""
        self.timer.stop()
        self._stop_copy()
        self.autosave_now()
        self.recovery.shutdown()

    def _bind(self, case: K.Case) -> None:
        self.case = case
        self.last_verification = None
        self._warned.clear()
        self.timer.start()
        self.recovery.autosave_now()  # the case holds the work now: the recovery folder goes
        self._watch()
        self._update()

    def _close_current(self) -> None:
        self._stop_copy()  # a save of the case being closed does not happen
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

    def _need_case(self) -> bool:
        if self.case is None:
            self.shell.show_message("Open or create a case first (File > New case).", error=False)
        return self.case is not None

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

    # -- the originals -----------------------------------------------------------------------------
    def _watch(self) -> None:
        paths = set(self.watcher.files())
        want = set()
        if self.case is not None:
            want |= {str(self.case.folder / o.file) for o in self.case.originals.values()}
        ev = self.session.evidence
        if ev is not None and ev.path is not None:
            want.add(str(ev.path))
        if paths - want:
            self.watcher.removePaths(list(paths - want))
        add = [p for p in want - paths if Path(p).is_file()]
        if add:
            self.watcher.addPaths(add)

    @staticmethod
    def _large(originals: Any) -> bool:
        """More bytes than :data:`BACKGROUND_COPY_BYTES` in these originals: hashed in the worker (a clip)."""
        return sum(o.size_bytes for o in originals) > BACKGROUND_COPY_BYTES

    def check_originals(self, quiet: bool = True) -> list[str]:
        """Warn (once per finding) when an original on disk no longer matches its hash; returns the findings.

        When the case's originals (without a case, the evidence file) come to more than
        :data:`BACKGROUND_COPY_BYTES` (a clip, a large still), they are hashed in the worker and the findings
        are shown when it is done: this returns [] at once (when a case with a clip is opened, after each save,
        on a change the watch sees, and for Case > Check the originals alike)."""
        ev = self.session.evidence
        path = ev.path if ev is not None and ev.path is not None and ev.path.is_file() else None
        if (self.case is not None and self._large(self.case.originals.values())) or \
                (self.case is None and path is not None and path.stat().st_size > BACKGROUND_COPY_BYTES):
            self._check_in_worker(self.case, quiet)
            self._watch()
            return []
        if self.case is not None:
            found = self.case.check_originals()
        else:
            found = ([f"the evidence file {path.name} no longer matches the SHA-256 recorded when it was loaded"]
                     if ev is not None and path is not None and sha256_file(path) != ev.sha256 else [])
        return self._findings(found, quiet)

    def _check_in_worker(self, case: K.Case | None, quiet: bool) -> None:
        """Hash the originals of ``case`` (None: the evidence file alone) in the worker; the findings come later."""
        if self.check_task is not None:
            self.check_task.cancel()  # this newer check replaces it
        ev = self.session.evidence
        evidence = (ev.path, ev.sha256) if ev is not None and ev.path is not None else None
        folder, originals = (case.folder, list(case.originals.values())) if case is not None else (Path(), [])
        self._checks += 1
        n = self._checks
        self.check_task = self.copier.submit(
            "Checking the originals", partial(_check_work, folder, originals, evidence),
            partial(self._checked, n, case, quiet), partial(self._check_failed, n))
        if not quiet:
            self.shell.status("Checking the originals' SHA-256 in the background\u2026", 0)

    def _checked(self, n: int, case: K.Case | None, quiet: bool, found: list[str]) -> None:
        if n == self._checks and case is self.case:
            self.check_task = None
            self._findings(found, quiet)

    def _check_failed(self, n: int, text: str) -> None:
        if n == self._checks:
            self.check_task = None
            self.shell.status(f"The originals could not be checked: {text}", 15000)

    def _findings(self, found: list[str], quiet: bool) -> list[str]:
        new = [f for f in found if f not in self._warned]
        if new:
            self._warned.update(new)
            self.record("original_mismatch", findings=new)
            self._error("An original no longer matches its hash", new[0][0].upper() + new[0][1:] + ".",
                        "\n".join(found) + "\n\nThe candidates were made from the image as it was when loaded; "
                        "keep the case's copy and find out what changed the file.")
        elif not found and not quiet:
            self.shell.status("Every original matches its recorded SHA-256", 8000)
        self._watch()
        return found

    # -- messages ----------------------------------------------------------------------------------
    def _error(self, title: str, text: str, detail: str = "") -> None:
        self.shell.show_message(f"{title}: {text}")
        self.shell.show_error_dialog(title, text, detail)

    def _result_box(self, title: str, text: str, detail: str, ok: bool) -> QMessageBox:
        if self.result_box is not None:
            self.result_box.close()
        icon = QMessageBox.Icon.Information if ok else QMessageBox.Icon.Warning
        box = QMessageBox(icon, title, text, QMessageBox.StandardButton.Ok, self.shell.dialog_parent())
        box.setDetailedText(detail)
        box.open()
        self.result_box = box
        return box
