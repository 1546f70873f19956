"""A guard against a PySide6 bug that would crash a long session: ``Fatal Python error: none_dealloc``
(or ``bool_dealloc``).

PySide6 6.12.0 on Python 3.11 drops one reference to ``None`` on every call of a Qt method that
returns nothing (``QIcon.addPixmap``, ``QLabel.setText``, ``QListWidgetItem.setData``, a Qt signal
reaching a Python slot, ...) and one reference to ``True`` on every ``signal.emit()`` from Python.
Python 3.12 made these objects immortal, so there it is harmless; on 3.11 their counts (about
60,000 and 5,000 after start-up) reach zero after that many calls and the interpreter aborts: in
the soak benchmark, after about 50 generate / slider / star cycles of 16 candidates.

:func:`install` probes for the bug once; only where it is present, a timer keeps the counts of
``None``, ``True`` and ``False`` far from zero by holding extra references in a list (8 bytes each,
about 2 MB per top-up). That list is never freed (not even at exit, where freeing it would bring
the same crash), and at exit it is topped up by as many references as each object then has. The
real cure is a PySide6 without the bug (6.11.x, pinned for Python < 3.12 in pyproject.toml) or
Python 3.12+.
"""

from __future__ import annotations

import atexit
import ctypes
import logging
import sys

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QImage

log = logging.getLogger(__name__)

#: The objects PySide6 6.12 loses references to (immortal from Python 3.12 on).
GUARDED = (None, True, False)
#: Top up when one of their reference counts falls below this ...
LOW_WATER = 200_000
#: ... by this many references.
TOP_UP = 262_144
CHECK_MS = 1000

_reserve: list[bool | None] = []
ctypes.pythonapi.Py_IncRef(ctypes.py_object(_reserve))  # never freed: its references outlive all others
_timer: QTimer | None = None
_state: dict[str, bool] = {}


class _Probe(QObject):
    fired = Signal()


def leaks_none(calls: int = 256) -> bool:
    """Whether this PySide6 loses references to ``None`` (void Qt calls) or ``True`` (``emit``);
    always False on Python 3.12+."""
    if sys.version_info >= (3, 12):
        return False
    img = QImage(1, 1, QImage.Format.Format_RGB888)
    probe = _Probe()
    probe.fired.connect(lambda: None)
    n0, t0 = sys.getrefcount(None), sys.getrefcount(True)
    for _ in range(calls):
        img.fill(0)
        probe.fired.emit()
    return sys.getrefcount(None) < n0 - calls // 2 or sys.getrefcount(True) < t0 - calls // 2


def top_up() -> int:
    """Hold more references to each guarded object whose count is low; returns the references held."""
    for obj in GUARDED:
        if sys.getrefcount(obj) < LOW_WATER:
            _reserve.extend([obj] * TOP_UP)
    return len(_reserve)


def install(parent: QObject) -> bool:
    """Probe once per process; when the bug is present, top up now and every second. Returns whether
    the guard is active."""
    global _timer
    if "leaks" not in _state:
        _state["leaks"] = leaks_none()
        if _state["leaks"]:
            import PySide6

            log.warning("PySide6 %s on Python %d.%d loses references to None and True on Qt calls: guarding "
                        "against the crash it would cause (install PySide6 6.11, or use Python 3.12+)",
                        PySide6.__version__, *sys.version_info[:2])
    if not _state["leaks"]:
        return False
    top_up()
    if not _state.get("atexit"):
        atexit.register(_before_exit)
        _state["atexit"] = True
    if _timer is None:
        _timer = QTimer(parent)
        _timer.setInterval(CHECK_MS)
        _timer.timeout.connect(top_up)
        _timer.start()
        parent.destroyed.connect(_forget_timer)
    return True


def _before_exit() -> None:
    """Enough references for every object still holding a guarded object to let go of it at shutdown."""
    for obj in GUARDED:
        _reserve.extend([obj] * (sys.getrefcount(obj) + TOP_UP))


def _forget_timer(*_args: object) -> None:
    global _timer
    _timer = None
