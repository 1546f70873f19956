"""Work before any case, never lost: while no case is open, the session's candidates, stars, notes,
shortlist and exports are autosaved (a few seconds after each change, and every minute for notes) to
this window's recovery folder (:mod:`core.case.unsaved`); a crash or kill leaves it behind, and the next
start offers it back. A clean close, or a case taking the work over, removes it.

Thin over :mod:`core.case.unsaved`; owned by :class:`~varsr_gui.case_actions.CaseActions`.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QSettings, QStandardPaths, QTimer
from PySide6.QtWidgets import QMessageBox

from core.case.unsaved import DAMAGED, Recoverable, UnsavedWork, find_unsaved, remove_folder, restore_unsaved
from core.errors import VarSRError
from core.workbench.session import Session

#: After a change, the work is written this much later (changes in between wait for one write).
AUTOSAVE_DELAY_MS = 3000
#: And at least this often (notes change without an event).
AUTOSAVE_EVERY_MS = 60_000
#: Recovery folders of the windows alive in this process (never offered to another window).
LIVE: set[Path] = set()


def recovery_root(settings: QSettings) -> Path:
    """Where recovery folders live: the setting ``recovery_dir``, else beside an INI settings file, else the
    app's data folder."""
    chosen = settings.value("recovery_dir")
    if chosen:
        return Path(str(chosen))
    if settings.format() == QSettings.Format.IniFormat:
        return Path(settings.fileName()).parent / "recovery"
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    return Path(base or Path.home() / ".varsr-studio") / "recovery"


class WorkRecovery(QObject):
    """This window's recovery folder: autosave while no case is open, and the offer at start."""

    def __init__(self, session: Session, settings: QSettings, shell: Any, has_case: Callable[[], bool],
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.session, self.shell, self.has_case = session, shell, has_case
        self.root = recovery_root(settings)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
        self.folder = self.root / f"{stamp}-{os.getpid()}-{id(self) & 0xFFFFFF:06x}"
        LIVE.add(self.folder)
        self.work = UnsavedWork(self.folder, session)
        self.offer_box: QMessageBox | None = None
        self.soon = QTimer(self, singleShot=True, interval=AUTOSAVE_DELAY_MS)
        self.soon.timeout.connect(self.autosave_now)
        self.timer = QTimer(self, interval=AUTOSAVE_EVERY_MS)
        self.timer.timeout.connect(self.autosave_now)
        self.timer.start()
        ev = session.events
        for event in (ev.evidence_changed, ev.region_changed, ev.settings_changed, ev.candidates_added,
                      ev.shortlist_changed, ev.sets_dropped, ev.note_changed):
            event.connect(lambda *_a: self.soon.start())
        QTimer.singleShot(0, self.offer)

    def autosave_now(self) -> Path | None:
        """Write the work before any case (with a case open: the case keeps it, the folder goes)."""
        self.soon.stop()
        if self.has_case():
            self.work.discard()
            return None
        try:
            return self.work.save()
        except (VarSRError, OSError) as e:
            self.shell.status(f"Autosave of the work before any case failed: {e}", 15000)
            return None

    def pending(self) -> list[Recoverable]:
        """Work left behind by windows that are gone, newest first."""
        return find_unsaved(self.root, LIVE)

    def offer(self) -> QMessageBox | None:
        """Ask (without blocking) whether to restore the newest work left behind; the next is offered after."""
        if self.offer_box is not None:
            return self.offer_box
        found = self.pending()
        if not found:
            return None
        r = found[0]
        box = QMessageBox(QMessageBox.Icon.Question, "Recover unsaved work?",
                          f"VarSR Studio ended without saving work done before any case: {r.summary()}.",
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, self.shell.dialog_parent())
        more = f" ({len(found) - 1} older one(s) will be offered next.)" if len(found) > 1 else ""
        box.setInformativeText("Yes restores the candidates, stars, notes and shortlist (File > New case then keeps "
                               f"them in a case); No discards it.{more}")
        box.finished.connect(lambda _r: self._answered(box, r))
        box.open()
        self.offer_box = box
        return box

    def _answered(self, box: QMessageBox, r: Recoverable) -> None:
        self.offer_box = None
        if box.standardButton(box.clickedButton()) == QMessageBox.StandardButton.Yes:
            if not self.recover(r.folder) and r.folder.is_dir():
                return  # kept (a case is open, or the work on screen was kept): offered again at the next start
        else:
            remove_folder(r.folder)
        QTimer.singleShot(0, self.offer)

    def recover(self, folder: Path) -> bool:
        """Restore a recovery folder into the session (asking first when work is on screen)."""
        if self.has_case():
            self.shell.show_message("Close the case first: the recovered work replaces what the window holds.")
            return False
        if self.session.candidates and not self.shell.confirm(
                "Replace the work on screen?", "The recovered work replaces the candidates on screen."):
            return False
        try:
            warnings = restore_unsaved(folder, self.session, before=self.shell.reset_view)
        except (VarSRError, OSError) as e:
            kept = folder.with_name(folder.name + DAMAGED)
            try:
                folder.rename(kept)  # not offered again; kept for a closer look
            except OSError:
                kept = folder
            self.shell.show_message(f"The unsaved work could not be recovered: {e} (its folder is kept as {kept})")
            return False
        if self.autosave_now() is not None or not self.work.has_work():
            remove_folder(folder)  # it is in this window's own folder now
        self.shell.refresh()
        self.shell.status(f"Recovered {len(self.session.candidates)} candidate(s) and {len(self.session.shortlist)} "
                          "starred: File > New case keeps them" + (f" ({'; '.join(warnings)})" if warnings else ""),
                          15000)
        return True

    def shutdown(self) -> None:
        """A clean close: the work was saved into a case or given up; the folder goes."""
        self.timer.stop()
        self.soon.stop()
        self.work.discard()
        LIVE.discard(self.folder)
