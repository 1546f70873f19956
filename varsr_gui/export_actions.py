"""File > Export shortlist: the options dialog, the export in a worker with progress and Cancel, and
the wording of a failed export."""

from __future__ import annotations

import errno
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEventLoop, Qt

from core.workbench import session as S
from varsr_gui.export_dialog import ExportDialog
from varsr_gui.workers import Task, TaskContext


def export_error_text(folder: Path, e: OSError) -> tuple[str, str]:
    """What to tell the analyst when writing an export fails: the cause in words, then what to do."""
    where = str(folder)
    after = ("Nothing was exported: the partly written files were removed, so no incomplete export "
             "is left behind.")
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return (f"The disk is full: the shortlist could not be exported to {where}.",
                f"{after} Free some space or choose a folder on another disk, then export again.")
    if e.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return (f"The folder {where} is read-only (or you may not write there): the shortlist could not "
                "be exported.", f"{after} Choose a folder you can write to, then export again.")
    reason = e.strerror or e.__class__.__name__
    return (f"The shortlist could not be exported to {where}: {reason}.",
            f"{after} Check the folder and the disk, then export again.")


class ExportActions:
    """Exporting the shortlist (a mixin of :class:`~varsr_gui.main_window.MainWindow`)."""

    def export_dialog(self) -> ExportDialog | None:
        """Ask for the folder and whether to add unmarked copies (off by default); non-modal-blocking."""
        if not self.session.shortlist:
            self.show_message("The shortlist is empty: star candidates (S) first.", error=False)
            return None
        start = str(self.settings.value("export_dir", self.settings.value("last_dir", "")))
        if self.export_options is not None:
            self.export_options.close()
        dlg = ExportDialog(start, len(self.session.shortlist), self)
        dlg.setWindowModality(Qt.WindowModality.WindowModal)
        dlg.accepted.connect(lambda: self.start_export(dlg.chosen_folder(), unmarked_copies=dlg.unmarked_copies()))
        dlg.open()
        self.export_options = dlg
        return dlg

    def start_export(self, folder: str | Path, unmarked_copies: bool = False,
                     on_over: Callable[[Path | None], None] | None = None) -> Task | None:
        """Export the shortlist in the worker, with progress and Cancel (Esc); any failure or a cancel gives
        a message (never a traceback) and leaves nothing. ``on_over(folder or None)`` is called at the end.

        ``unmarked_copies``: the examiner's explicit request for unmarked copies (recorded in the manifest).
        """
        if not self.session.shortlist:
            self.show_message("The shortlist is empty: star candidates (S) first.", error=False)
            return None
        leads = [(self.session.candidates[e.candidate_id], e.note) for e in self.session.shortlist]
        ids, folder = [c.id for c, _ in leads], Path(folder)
        complete: list[Path] = []  # a Cancel that comes after the export's last step cannot undo it

        def work(ctx: TaskContext) -> Any:
            try:
                out = S.export_shortlist(leads, folder, unmarked_copies=unmarked_copies, progress=ctx.progress,
                                         cancelled=ctx.cancelled)
            except S.ExportCancelled:
                return None  # the task reports it as cancelled
            except OSError as e:
                return e  # worded on the GUI thread
            complete.append(out)
            return out

        def finished(result: Any) -> None:
            if isinstance(result, OSError):
                text, detail = export_error_text(folder, result)
                self.show_message(f"Export failed: {text}")
                self.show_error_dialog("Export failed", text, detail)
                result = None
            else:
                self._exported(result, ids, unmarked_copies)
            if on_over is not None:
                on_over(result)

        def failed(text: str) -> None:
            self.show_message(f"Export failed: {text}")
            self.show_error_dialog("Export failed", f"The shortlist was not exported: {text}")
            if on_over is not None:
                on_over(None)

        def cancelled() -> None:
            if complete:
                finished(complete[0])
                return
            self.statusBar().showMessage("Export cancelled: nothing was exported (the partly written files were "
                                         "removed)", 10000)
            if on_over is not None:
                on_over(None)

        self.statusBar().showMessage(f"Exporting {len(leads)} lead(s) to {folder}\u2026 (Esc cancels)")
        self.input_panel.set_progress(0, len(leads) + 1)
        return self.runner.submit("Exporting the shortlist", work, finished, failed, self.input_panel.set_progress,
                                  cancelled)

    def _exported(self, out: Path, ids: list[str], unmarked_copies: bool) -> None:
        self.settings.setValue("export_dir", str(Path(out).parent))
        self.case_actions.record_export(folder=Path(out).name, unmarked_copies=unmarked_copies, leads=ids)
        extra = " plus unmarked copies, on your request (recorded in the manifest)" if unmarked_copies else ""
        self.statusBar().showMessage(f"Exported {len(ids)} lead(s) and a contact sheet to {out} "
                                     f"(each marked: {S.MARK}){extra}", 10000)

    def export_to(self, folder: str | Path, unmarked_copies: bool = False) -> Path | None:
        """:meth:`start_export` and wait for it to end (scripts and tests): the exported folder, or None."""
        result: list[Path | None] = []
        loop = QEventLoop()

        def over(out: Path | None) -> None:
            result.append(out)
            loop.quit()

        if self.start_export(folder, unmarked_copies, on_over=over) is None:
            return None
        if not result:
            loop.exec()
        return result[0]
