"""Background work (model loading, sampling, face detection) on a thread pool; the GUI never blocks.

A :class:`Task` runs ``fn(ctx)`` in a worker thread; ``ctx.progress(i, n)`` reports progress and
``ctx.cancelled()`` tells long work to stop. Results come back to the GUI thread through signals.
"""

from __future__ import annotations

import logging
import threading
import traceback
import weakref
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QThreadPool, Signal

from core.errors import VarSRError
from core.workbench.session import GenerationCancelled

log = logging.getLogger(__name__)


class TaskSignals(QObject):
    progress = Signal(int, int)
    finished = Signal(object)
    failed = Signal(str)
    cancelled = Signal()
    done = Signal()


class TaskContext:
    """What a task function sees: progress reporting and the cancel flag."""

    def __init__(self, signals: TaskSignals) -> None:
        self._signals = signals
        self._cancel = threading.Event()

    def progress(self, i: int, n: int) -> None:
        self._signals.progress.emit(int(i), int(n))

    def cancelled(self) -> bool:
        return self._cancel.is_set()


class Task:
    """One unit of background work; connect to :attr:`signals` before submitting.

    A plain object whose :meth:`run` is handed to the pool as a callable: a ``QRunnable`` subclass
    with auto-delete off stays referenced by the pool for ever, and with it everything its work
    function holds (candidates and their tensors: a steady leak over a long session).
    """

    def __init__(self, name: str, fn: Callable[[TaskContext], Any]) -> None:
        self.name = name
        self.fn = fn
        self.signals = TaskSignals()
        self.ctx = TaskContext(self.signals)

    def cancel(self) -> None:
        self.ctx._cancel.set()

    def run(self) -> None:
        try:
            result = self.fn(self.ctx)
        except GenerationCancelled:
            self.signals.cancelled.emit()
        except VarSRError as e:
            self.signals.failed.emit(str(e))
        except Exception as e:  # a bug: show it, keep the app alive
            log.error("task %s failed:\n%s", self.name, traceback.format_exc())
            self.signals.failed.emit(f"{self.name} failed: {e.__class__.__name__}: {e}")
        else:
            if self.ctx.cancelled():
                self.signals.cancelled.emit()
            else:
                self.signals.finished.emit(result)
        finally:
            self.signals.done.emit()


class TaskRunner(QObject):
    """Runs tasks one at a time (torch work on 2 shared cores gains nothing from more)."""

    busy_changed = Signal(bool)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)
        self.active: list[Task] = []

    def submit(self, name: str, fn: Callable[[TaskContext], Any], on_done: Callable[[Any], None],
               on_error: Callable[[str], None] | None = None,
               on_progress: Callable[[int, int], None] | None = None,
               on_cancel: Callable[[], None] | None = None) -> Task:
        task = Task(name, fn)
        task.signals.finished.connect(on_done)
        if on_error:
            task.signals.failed.connect(on_error)
        if on_progress:
            task.signals.progress.connect(on_progress)
        if on_cancel:
            task.signals.cancelled.connect(on_cancel)
        # weakly: a slot holding the task would make a cycle through Qt's connection (invisible to the
        # garbage collector) and keep every finished task, and all its closures hold, alive for ever
        ref = weakref.ref(task)
        task.signals.done.connect(lambda: self._finished(ref()))
        self.active.append(task)
        self.busy_changed.emit(True)
        self.pool.start(task.run)  # a callable: the pool lets go of it once it has run
        return task

    def _finished(self, task: Task | None) -> None:
        if task is not None and task in self.active:
            self.active.remove(task)
        if not self.active:
            self.busy_changed.emit(False)

    @property
    def busy(self) -> bool:
        return bool(self.active)

    def cancel_all(self) -> None:
        for t in list(self.active):
            t.cancel()

    def shutdown(self, timeout_ms: int = 10000) -> bool:
        """Cancel everything and wait for the worker to stop (on close)."""
        self.cancel_all()
        return self.pool.waitForDone(timeout_ms)
