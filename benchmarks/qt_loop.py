"""Drive the real Qt event loop from a benchmark (not processEvents): shared by the GUI benchmarks."""

from __future__ import annotations

import time
from collections.abc import Callable


def run_until(cond: Callable[[], bool], timeout_s: float = 600.0, what: str = "the window") -> None:
    """Run a QEventLoop until ``cond()`` holds; TimeoutError after ``timeout_s`` seconds."""
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    end = time.perf_counter() + timeout_s

    def check() -> None:
        if cond() or time.perf_counter() > end:
            loop.quit()

    poll = QTimer()
    poll.setInterval(1)
    poll.timeout.connect(check)
    poll.start()
    loop.exec()
    poll.stop()
    if not cond():
        raise TimeoutError(f"{what} did not finish in time")
