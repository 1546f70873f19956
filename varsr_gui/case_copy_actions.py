"""The case's copies in the worker: a case's large originals (a clip) hashed and copied in before a save or
into a new case, and the case folder copied for a save as, each with a progress window and Cancel.

:class:`CaseCopies` is owned by :class:`~varsr_gui.case_actions.CaseActions`, which provides ``case``,
``shell``, ``checks`` (its :class:`~varsr_gui.case_originals_check.OriginalsCheck`), ``save_case``,
``_save_now``, ``_created``, ``_add_recent_case``, ``_update``, ``_watch`` and ``_error``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QProgressDialog

from core import case as K
from core.case.copying import CopyCancelled, CopyResult, PendingCopy, run_copies, undo_copies
from core.case.folder_copy import copy_case_folder, remove_tree
from core.errors import CaseError
from varsr_gui.workers import Task, TaskContext, TaskRunner

#: Originals still to be copied into a case (a clip of gigabytes) of more bytes than this in all are hashed
#: and copied in a worker, with progress and Cancel, before the save; fewer are copied by the save itself.
#: A case's originals of more bytes than this are also checked in the worker (:mod:`varsr_gui.case_originals_check`).
BACKGROUND_COPY_BYTES = 64 << 20


def in_worker(nbytes: int) -> bool:
    """More bytes than :data:`BACKGROUND_COPY_BYTES`: hashed and copied (or checked) in the worker."""
    return nbytes > BACKGROUND_COPY_BYTES


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


def _megabytes(n: int) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e9 else f"{n / 1e6:.0f} MB"


class CaseCopies:
    """The copy running in ``runner`` (the case actions' file-I/O worker, shared with the originals' check)."""

    def __init__(self, actions: Any, runner: TaskRunner) -> None:
        self.actions, self.runner = actions, runner  # actions: the CaseActions that owns this
        self.job: Copying | SavingAs | None = None

    def _progress_dialog(self, title: str, what: str) -> QProgressDialog:
        """A copy's progress window (thousandths, Cancel), non-modal: setValue never spins a nested event loop."""
        dlg = QProgressDialog(what, "Cancel", 0, 1000, self.actions.shell.dialog_parent())
        dlg.setWindowTitle(title)
        dlg.setAutoClose(False)
        dlg.setAutoReset(False)
        dlg.setMinimumDuration(0)
        self.actions.checks.drop()  # a check would hold the copy up: the save checks again after it
        return dlg

    def _start(self, job: Copying | SavingAs, name: str, work: Callable[[TaskContext], Any],
               done: Callable[[Any], None], what: str) -> None:
        """Run a copy ``job`` in the worker, its progress window showing and cancelling it."""
        self.job = job
        job.task = self.runner.submit(name, work, done, partial(self._failed, job),
                                      lambda i, _n: job.dialog.setValue(i) if self.job is job else None,
                                      partial(self._cancelled, job))
        job.dialog.canceled.connect(job.task.cancel)  # its Cancel button, Esc or closing it
        job.dialog.show()
        self.actions.shell.status(what, 0)

    def copy_then_save(self, case: K.Case, pending: list[PendingCopy], then: Callable[[], object] | None,
                       fresh: bool = False) -> None:
        """Copy the originals in the worker (progress, Cancel), then save (``CaseActions.save_case``) or,
        ``fresh``, create the case (``CaseActions.new_case``)."""
        total = sum(c.size for c in pending)
        what = (f"{'Creating' if fresh else 'Saving'} case {case.name}: copying {len(pending)} original(s) "
                f"({_megabytes(total)}) into the case and checking their SHA-256\u2026")
        dlg = self._progress_dialog("Creating the case" if fresh else "Saving the case", what)
        job = Copying(case, pending, then, dlg, fresh=fresh)
        self._start(job, "Copying the originals", partial(_copy_work, job), partial(self._copied, job), what)

    def save_as(self, folder: str | Path) -> None:
        """Copy the saved case's folder to ``folder`` in the worker (``CaseActions.save_case_as``)."""
        case = self.actions.case
        assert case is not None
        dst = Path(folder)
        what = f"Saving case {case.name} as {dst.name}: copying the case folder\u2026"
        job = SavingAs(case, dst, self._progress_dialog("Saving the case as a copy", what))
        self._start(job, "Copying the case", partial(_save_as_work, job), partial(self._copied_as, job), what)

    def _end(self, job: Copying | SavingAs) -> bool:
        """The copy ``job`` ended: its progress window goes; False when it is not the current one (stopped)."""
        if self.job is not job:
            return False
        self.job = None
        job.dialog.close()
        job.dialog.deleteLater()
        return True

    def stop(self) -> None:
        """Cancel the copy (and a check of the originals) and wait for the worker to stop (a cancelled copy
        removes what it made; one that had just ended is undone here, and a new case waiting for its copies is
        not made): before the case it copies is closed, so nothing writes into or beside a case no longer open.
        No event loop runs meanwhile; the worker's late signals are then ignored."""
        job = self.job
        if job is None and self.actions.checks.task is None:
            return
        self.runner.cancel_all()
        self.runner.pool.waitForDone()
        self.actions.checks.task = None
        if job is not None:
            self._end(job)
            job.undo()

    def _copied(self, job: Copying, result: CopyResult) -> None:
        if not self._end(job):
            return
        a = self.actions
        if job.fresh:  # File > New case: the case is written and opened now
            job.case.take_copies(result)
            if a._created(job.case) is not None and job.then is not None:
                job.then()
            return
        if job.case is not a.case:  # closed meanwhile without saving (cannot happen: stop)
            undo_copies(job.case.folder, result)
            return
        job.case.take_copies(result)
        if a.save_case(job.then) and job.then is not None:
            job.then()

    def _copied_as(self, job: SavingAs, target: Path) -> None:
        """The copy is complete: the open case goes on in it (steps taken meanwhile included), saved there."""
        if not self._end(job):
            return
        a = self.actions
        if job.case is not a.case:  # closed meanwhile (cannot happen: stop)
            job.undo()
            return
        job.case.continue_in(target)
        a._add_recent_case(target)
        a._watch()
        a._update()
        a._save_now()

    def _failed(self, job: Copying | SavingAs, text: str) -> None:
        if not self._end(job):
            return
        job.undo()
        if isinstance(job, SavingAs):
            self.actions._error("The case was not saved as a copy", text, f"Nothing was left at {job.target}; the "
                                f"case {job.case.name} is open as it was.")
        elif job.fresh:
            self.actions._error("The case was not created", text, "No case was made; your work is still open.")
        elif job.case is self.actions.case:
            self.actions._error("The case was not saved", text, "The case on disk is as it was at its last save; "
                                "your work is still open (and in the recovery file after the next autosave).")

    def _cancelled(self, job: Copying | SavingAs) -> None:
        if not self._end(job):
            return
        job.undo()  # a cancel that came as the copy ended: what it made goes all the same
        if isinstance(job, SavingAs):
            text = (f"The case {job.case.name} was not saved as a copy: the copy was cancelled. Nothing was left "
                    f"at {job.target}; the case is open as it was.")
        elif job.fresh:
            text = (f"The case {job.case.name} was not created: the copy of its originals was cancelled. No case "
                    "was made; your work is still open.")
        elif job.case is self.actions.case:
            text = (f"The case {job.case.name} was not saved: the copy of its originals was cancelled. Nothing "
                    "was changed: the case on disk is as it was at its last save, and your work is still open.")
        else:
            return
        self.actions.shell.show_message(text, error=False)
