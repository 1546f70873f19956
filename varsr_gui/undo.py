"""Edit > Undo / Redo: the region (box, eyes, a proposed face, W whole image), the slider values (R reset
included) and the shortlist (stars, order and each lead's note) on one :class:`QUndoStack`.

The controller watches the session's events and pushes a command for each change, whichever widget
or shortcut made it; undoing applies the old state back through the session, so the case logs it like
any other step. New evidence, a case opened or the session cleared start a fresh history.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer
from PySide6.QtGui import QUndoCommand, QUndoStack

from core.workbench import session as S

SLIDER_MERGE_ID = 1


class _Applied(QUndoCommand):
    """A change already made when pushed: the first redo does nothing, later ones re-apply it."""

    def __init__(self, text: str, apply: Callable[[bool], None]) -> None:
        super().__init__(text)
        self._apply = apply
        self._done = True

    def redo(self) -> None:
        if self._done:
            self._done = False
            return
        self._apply(True)

    def undo(self) -> None:
        self._apply(False)


class RegionCommand(_Applied):
    def __init__(self, ctl: UndoController, old: S.Region | None, new: S.Region | None) -> None:
        what = "whole image" if new is None else ("eye positions" if new.kind == "eyes" else "region")
        super().__init__(f"Set the {what}", lambda forward: ctl.apply_region(new if forward else old))


class ShortlistCommand(_Applied):
    def __init__(self, ctl: UndoController, old: list[S.ShortlistEntry], new: list[S.ShortlistEntry]) -> None:
        ids_old, ids_new = [e.candidate_id for e in old], [e.candidate_id for e in new]
        text = ("Reorder the shortlist" if sorted(ids_old) == sorted(ids_new) else
                "Star " + ", ".join(sorted(set(ids_new) - set(ids_old))) if len(ids_new) > len(ids_old) else
                "Unstar " + ", ".join(sorted(set(ids_old) - set(ids_new))))
        super().__init__(text, lambda forward: ctl.apply_shortlist(new if forward else old))


class NoteCommand(_Applied):
    """One finished edit of a shortlisted lead's note."""

    def __init__(self, ctl: UndoController, cid: str, old: str, new: str) -> None:
        super().__init__(f"Edit the note of {cid}", lambda forward: ctl.apply_note(cid, new if forward else old))


class SliderCommand(_Applied):
    """Slider values of one candidate; consecutive moves of the same candidate merge into one step."""

    def __init__(self, ctl: UndoController, cid: str, old: dict[str, float], new: dict[str, float]) -> None:
        self.cid, self.old, self.new = cid, old, new
        text = "Reset the sliders" if not any(new.values()) else "Move the sliders"
        super().__init__(text, lambda forward: ctl.apply_sliders(self.cid, self.new if forward else self.old))

    def id(self) -> int:
        return SLIDER_MERGE_ID

    def mergeWith(self, other: QUndoCommand) -> bool:  # noqa: N802 - Qt override
        if not isinstance(other, SliderCommand) or other.cid != self.cid or not any(other.new.values()) \
                or not any(self.new.values()):
            return False  # a reset stays its own step
        self.new = other.new
        return True


class UndoController(QObject):
    """Records region, slider, shortlist and note changes on :attr:`stack`; see the module docstring."""

    def __init__(self, session: S.Session, show_candidate: Callable[[str], None],
                 sliders: object, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.stack = QUndoStack(self)
        self._show_candidate = show_candidate
        self._sliders = sliders  # the SliderDock: values(), set_values(values), reset()
        self._applying = False
        self._region = session.region
        self._shortlist = list(session.shortlist)
        self._slider_values: dict[str, float] = {}
        self._slider_cid: str | None = None
        ev = session.events
        ev.evidence_changed.connect(lambda _ev: self.rebase())
        ev.region_changed.connect(self._on_region)
        ev.shortlist_changed.connect(self._on_shortlist)
        ev.note_changed.connect(self._on_note)
        ev.current_changed.connect(self._on_current)

    def rebase(self) -> None:
        """Forget the history and take the session's state as the new starting point."""
        self.stack.clear()
        self._region = self.session.region
        self._shortlist = list(self.session.shortlist)
        self._on_current(self.session.current)

    def rebase_later(self) -> None:
        """:meth:`rebase` once the current event (a case being opened, the session cleared) is over."""
        self.rebase()
        QTimer.singleShot(0, self.rebase)

    # -- recording ---------------------------------------------------------------------------------
    def _on_region(self, region: S.Region | None) -> None:
        old, self._region = self._region, region
        if not self._applying and old != region:
            self.stack.push(RegionCommand(self, old, region))

    def _on_shortlist(self) -> None:
        old, new = self._shortlist, list(self.session.shortlist)
        self._shortlist = new
        if not self._applying and [e.candidate_id for e in old] != [e.candidate_id for e in new]:
            self.stack.push(ShortlistCommand(self, old, new))

    def _on_note(self, cid: str, note: str, old: str) -> None:
        if not self._applying:
            self.stack.push(NoteCommand(self, cid, old, note))

    def _on_current(self, c: S.Candidate | None) -> None:
        if self._applying:
            return
        self._slider_cid = c.id if c is not None else None
        self._slider_values = {}

    def sliders_changed(self, values: dict[str, float]) -> None:
        """The slider dock's values after a move or a reset (R)."""
        cid = self._slider_cid
        old = self._slider_values or {k: 0.0 for k in values}
        self._slider_values = dict(values)
        if self._applying or cid is None or old == values:
            return
        self.stack.push(SliderCommand(self, cid, old, dict(values)))

    # -- applying ----------------------------------------------------------------------------------
    def apply_region(self, region: S.Region | None) -> None:
        self._applying = True
        try:
            self.session.set_region(region)
        finally:
            self._applying = False

    def apply_shortlist(self, entries: list[S.ShortlistEntry]) -> None:
        self._applying = True
        try:
            s = self.session
            want = [e for e in entries if e.candidate_id in s.candidates]
            ids = [e.candidate_id for e in want]
            for e in list(s.shortlist):
                if e.candidate_id not in ids:
                    s.unstar(e.candidate_id)
            for e in want:
                if not s.is_starred(e.candidate_id):
                    s.star(e.candidate_id)
                    s.set_note(e.candidate_id, e.note)
            s.reorder(ids)
        finally:
            self._applying = False

    def apply_note(self, cid: str, note: str) -> None:
        self._applying = True
        try:
            self.session.set_note(cid, note)
        finally:
            self._applying = False

    def apply_sliders(self, cid: str, values: dict[str, float]) -> None:
        self._applying = True
        try:
            cur = self.session.current
            if cur is None or cur.id != cid:
                self._show_candidate(cid)
            self._slider_cid = cid
            self._slider_values = dict(values)
            self._sliders.set_values(values)  # type: ignore[attr-defined]
        finally:
            self._applying = False
