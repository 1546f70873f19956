"""Workers: results and progress arrive on the GUI thread; cancel stops long work."""

from __future__ import annotations

import threading
import time

from core.workbench.session import GenerationCancelled
from varsr_gui.workers import TaskRunner


def test_results_on_gui_thread_and_cancel(qtbot):
    runner = TaskRunner()
    seen: list[tuple[str, str]] = []
    runner.submit("ok", lambda ctx: (ctx.progress(1, 1), 42)[1],
                  lambda r: seen.append(("done", threading.current_thread().name)),
                  on_progress=lambda i, n: seen.append(("progress", threading.current_thread().name)))
    qtbot.waitUntil(lambda: not runner.busy, timeout=5000)
    assert seen == [("progress", "MainThread"), ("done", "MainThread")]

    def long(ctx):
        while not ctx.cancelled():
            time.sleep(0.005)
        raise GenerationCancelled("stop")

    events: list[str] = []
    runner.submit("long", long, lambda r: events.append("done"), events.append,
                  on_cancel=lambda: events.append("cancelled"))
    assert runner.busy
    runner.cancel_all()
    qtbot.waitUntil(lambda: not runner.busy, timeout=5000)
    assert events == ["cancelled"]

    runner.submit("bug", lambda ctx: 1 / 0, lambda r: events.append("done"), events.append)
    qtbot.waitUntil(lambda: not runner.busy, timeout=5000)
    assert "ZeroDivisionError" in events[-1]
    assert runner.shutdown()
