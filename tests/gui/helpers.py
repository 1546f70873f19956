"""Helpers shared by the GUI test modules: a real mouse drag, and Generate clicked and waited for."""

from __future__ import annotations

import os

from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

WAIT_MS = int(os.environ.get("VARSR_TEST_WAIT_MS", "15000"))  # raise it on a loaded machine


def drag(view, a: tuple[float, float], b: tuple[float, float]) -> None:
    """A real left-button drag on the view's viewport, in image coordinates."""
    view.set_zoom(8)
    vp = view.viewport()
    pa = QPointF(view.mapFromScene(QPointF(*a)))
    pb = QPointF(view.mapFromScene(QPointF(*b)))
    left, none = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton
    mods = Qt.KeyboardModifier.NoModifier
    for kind, pos, button, buttons in ((QEvent.Type.MouseButtonPress, pa, left, left),
                                       (QEvent.Type.MouseMove, pb, none, left),
                                       (QEvent.Type.MouseButtonRelease, pb, left, none)):
        QApplication.sendEvent(vp, QMouseEvent(kind, pos, vp.mapToGlobal(pos), button, buttons, mods))


def generate(qtbot, w, n: int) -> list[str]:
    before = len(w.grid.candidate_ids())
    w.input_panel.n.setValue(n)
    qtbot.mouseClick(w.input_panel.generate, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(w.grid.candidate_ids()) == before + n and not w.runner.busy, timeout=WAIT_MS)
    return w.grid.candidate_ids()[before:]
