"""The originals checked against their recorded SHA-256 (Case > Check the originals, after each save, when a
case is opened, on a change the file watch sees): on the window's thread, or in the worker when large (a clip).

:class:`OriginalsCheck` is owned by :class:`~varsr_gui.case_actions.CaseActions`, which provides ``case``,
``session``, ``shell``, ``record`` and ``_error``.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from PySide6.QtCore import QFileSystemWatcher

from core import case as K
from core.case.copying import CopyCancelled, check_files
from core.errors import CaseError
from core.images import sha256_file
from varsr_gui.case_copy_actions import in_worker
from varsr_gui.workers import Task, TaskContext, TaskRunner


def _check_work(folder: Path, originals: list[K.Original], evidence: tuple[Path, str] | None,
                ctx: TaskContext) -> list[str] | None:
    """The originals' hashes checked in the worker (a clip's copy is gigabytes); None when cancelled."""
    try:
        return check_files(folder, originals, evidence, ctx.cancelled)
    except CopyCancelled:
        return None
    except OSError as e:
        raise CaseError(f"the originals could not be read: {e}") from e


class OriginalsCheck:
    """The watch on the originals' files, the check running in ``runner`` (if any), the findings warned about."""

    def __init__(self, actions: Any, runner: TaskRunner) -> None:
        self.actions, self.runner = actions, runner  # actions: the CaseActions that owns this
        self.task: Task | None = None  # the originals' hashes checked in the worker (large ones)
        self._started = 0  # checks started in the worker: only the latest one's findings count
        self.warned: set[str] = set()
        self.watcher = QFileSystemWatcher(actions)
        self.watcher.fileChanged.connect(lambda _p: self.check())

    def watch(self) -> None:
        """Watch the open case's originals and the evidence file (a change is checked at once)."""
        paths = set(self.watcher.files())
        want = set()
        case = self.actions.case
        if case is not None:
            want |= {str(case.folder / o.file) for o in case.originals.values()}
        ev = self.actions.session.evidence
        if ev is not None and ev.path is not None:
            want.add(str(ev.path))
        if paths - want:
            self.watcher.removePaths(list(paths - want))
        add = [p for p in want - paths if Path(p).is_file()]
        if add:
            self.watcher.addPaths(add)

    @staticmethod
    def large(originals: Any) -> bool:
        """More bytes than :data:`~varsr_gui.case_copy_actions.BACKGROUND_COPY_BYTES` in these originals:
        hashed in the worker (a clip)."""
        return in_worker(sum(o.size_bytes for o in originals))

    def check(self, quiet: bool = True) -> list[str]:
        """``CaseActions.check_originals``: the findings now, or [] when they come from the worker later."""
        case, ev = self.actions.case, self.actions.session.evidence
        path = ev.path if ev is not None and ev.path is not None and ev.path.is_file() else None
        if (case is not None and self.large(case.originals.values())) or \
                (case is None and path is not None and in_worker(path.stat().st_size)):
            self.in_background(case, quiet)
            self.watch()
            return []
        if case is not None:
            found = case.check_originals()
        else:
            found = ([f"the evidence file {path.name} no longer matches the SHA-256 recorded when it was loaded"]
                     if ev is not None and path is not None and sha256_file(path) != ev.sha256 else [])
        return self._findings(found, quiet)

    def in_background(self, case: K.Case | None, quiet: bool) -> None:
        """Hash the originals of ``case`` (None: the evidence file alone) in the worker; the findings come later."""
        if self.task is not None:
            self.task.cancel()  # this newer check replaces it
        ev = self.actions.session.evidence
        evidence = (ev.path, ev.sha256) if ev is not None and ev.path is not None else None
        folder, originals = (case.folder, list(case.originals.values())) if case is not None else (Path(), [])
        self._started += 1
        n = self._started
        self.task = self.runner.submit(
            "Checking the originals", partial(_check_work, folder, originals, evidence),
            partial(self._checked, n, case, quiet), partial(self._failed, n))
        if not quiet:
            self.actions.shell.status("Checking the originals' SHA-256 in the background\u2026", 0)

    def drop(self) -> None:
        """Cancel a check in the worker (a copy would wait behind it); its findings are ignored."""
        if self.task is not None:
            self.task.cancel()
            self.task, self._started = None, self._started + 1

    def _checked(self, n: int, case: K.Case | None, quiet: bool, found: list[str]) -> None:
        if n == self._started and case is self.actions.case:
            self.task = None
            self._findings(found, quiet)

    def _failed(self, n: int, text: str) -> None:
        if n == self._started:
            self.task = None
            self.actions.shell.status(f"The originals could not be checked: {text}", 15000)

    def _findings(self, found: list[str], quiet: bool) -> list[str]:
        new = [f for f in found if f not in self.warned]
        if new:
            self.warned.update(new)
            self.actions.record("original_mismatch", findings=new)
            self.actions._error("An original no longer matches its hash", new[0][0].upper() + new[0][1:] + ".",
                                "\n".join(found) + "\n\nThe candidates were made from the image as it was when "
                                "loaded; keep the case's copy and find out what changed the file.")
        elif not found and not quiet:
            self.actions.shell.status("Every original matches its recorded SHA-256", 8000)
        self.watch()
        return found
