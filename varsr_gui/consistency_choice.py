"""Which degradation consistency is scored and enforced under (issue 12, section 1): the input panel's
*Assumed blur* box, kept in step with :attr:`core.workbench.session.Session.consistency_operator`.

Picking another operator scores every candidate held again (the grid, the shortlist and the large view
show the new scores, each saying which operator it is under), is one step of Edit > Undo, and is logged
by the case as a settings change (its manifest records it).
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QComboBox

from core.workbench.candidates import Candidate
from core.workbench.operators import CHOICES, title
from varsr_gui.undo import _Applied
from varsr_gui.wording import under

TIP = ("How the camera is assumed to have blurred the evidence. Each candidate is degraded this way before it is "
       "compared with the evidence (its consistency scores, L1 and LR-PSNR), and Enforce consistency changes a "
       "candidate until it agrees under it. The box filter is an ideal sensor (the models' own degradation); pick "
       "a blur when the footage is soft. Noise and compression are not modelled: they cannot be undone. Whatever "
       "is picked, agreeing with the evidence says nothing about the truth.")


def operator_combo() -> QComboBox:
    """The *Assumed blur* choice: each operator the app offers (its data: the operator's name)."""
    combo = QComboBox()
    combo.setObjectName("consistency_operator")
    for name in CHOICES:
        combo.addItem(title(name), name)
    combo.setToolTip(TIP)
    combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    combo.setMinimumContentsLength(14)  # narrow beside the tiles; the list shows each in full
    return combo


class ConsistencyChoice(QObject):
    """Connects the window's operator box to its session; see the module docstring."""

    def __init__(self, window: Any) -> None:
        super().__init__(window)
        self.window = window
        self.session = window.session
        self.combo: QComboBox = window.input_panel.consistency
        self.combo.activated.connect(self._picked)
        self.session.events.settings_changed.connect(self.sync)  # a case opened, an undo
        self.session.events.scores_changed.connect(self._rescored)
        self.sync()

    def sync(self) -> None:
        """Show the session's operator (without applying it again)."""
        i = self.combo.findData(self.session.consistency_operator)
        if i < 0:  # an operator the app does not list (read from a case): listed while it is in use
            self.combo.addItem(self.session.consistency_operator, self.session.consistency_operator)
            i = self.combo.count() - 1
        if i != self.combo.currentIndex():
            self.combo.blockSignals(True)
            self.combo.setCurrentIndex(i)
            self.combo.blockSignals(False)

    def pick(self, name: str) -> None:
        """Score under ``name`` from now on, as one undoable step."""
        old = self.session.consistency_operator
        if name == old:
            return
        self.session.set_consistency_operator(name)

        def apply(forward: bool) -> None:
            self.session.set_consistency_operator(name if forward else old)

        self.window.undo.stack.push(_Applied(f"Score consistency under {under(name)}", apply))

    def _picked(self, index: int) -> None:
        self.pick(str(self.combo.itemData(index)))

    def _rescored(self, changed: list[Candidate]) -> None:
        w = self.window
        w.grid.refresh_scores(self.session.candidates)
        w.shortlist_dock.refresh()
        w._show_compare()
        w.status(f"Consistency is now scored under {under(self.session.consistency_operator)}: "
                 f"{len(changed)} candidate(s) scored again", 8000)
