"""Work done before any case exists, kept for crash recovery: candidates, stars, notes, the shortlist and
the exports made, in a recovery folder of the app's data folder (not a case the examiner made).

A recovery folder is written as a case folder is (:class:`core.case.recorder.Case`, detached from the
session's events, examiner :data:`EXAMINER`): the evidence and references copied byte for byte with
their SHA-256, each candidate's recipe and scores in the manifest (a recipe regenerates its candidate
bit-identically, :mod:`core.case.regenerate`), the pixels in content-named safetensors files written
once, the shortlist with its notes; :data:`SIDECAR` beside it holds what a case does not: where the
evidence lies on this machine, the exports made so far, and the process that owns the folder (a folder
whose process is gone is work a crash left behind). :func:`find_unsaved` lists such folders and
:func:`restore_unsaved` puts one back into a session. No Qt.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.case.audit import utc_now
from core.case.reader import read_case
from core.case.recorder import Case
from core.case.schema import MANIFEST, json_text
from core.errors import ImageLoadError
from core.fileio import atomic_write
from core.images import sha256_file
from core.workbench.evidence import load_evidence
from core.workbench.session import Session

SIDECAR = "unsaved.json"
#: The suffix a recovery folder that could not be restored is renamed with (never offered again).
DAMAGED = ".damaged"
EXAMINER = "(work before any case)"


def pid_alive(pid: Any, host: Any, live: set[Path] | None = None, folder: Path | None = None) -> bool:
    """Whether the process that wrote a recovery folder still runs (this process: when ``folder`` is in
    ``live``; another machine's or, off POSIX, another process's: assumed gone only when it is not ours)."""
    if host != socket.gethostname() or not isinstance(pid, int):
        return False
    if pid == os.getpid():
        return live is not None and folder is not None and folder in live
    if os.name != "posix":
        return False
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


class UnsavedWork:
    """Keeps a session's work before any case in ``folder`` (this process's own recovery folder)."""

    def __init__(self, folder: str | Path, session: Session) -> None:
        self.folder = Path(folder)
        self.session = session
        self._case: Case | None = None

    def has_work(self) -> bool:
        s = self.session
        return bool(s.candidates or s.shortlist or s.exports)

    def save(self) -> Path | None:
        """Write the session's work (nothing to keep: the folder is removed); returns the folder or None."""
        if not self.has_work():
            self.discard()
            return None
        if self._case is None or not self.folder.is_dir():
            self.discard()
            self.folder.mkdir(parents=True)
            self._case = Case(self.folder, self.session, EXAMINER)
            self._case.detach()  # it only writes; the session's steps are logged by the case made later
        self._case.save()
        ev = self.session.evidence
        side = {"format": "varsr-unsaved-work", "format_version": 1, "saved_utc": utc_now(), "pid": os.getpid(),
                "host": socket.gethostname(), "evidence_path": str(ev.path) if ev and ev.path else None,
                "evidence_source": ev.source if ev else None, "exports": list(self.session.exports)}
        text = json_text(side)
        atomic_write(self.folder / SIDECAR, lambda p: p.write_text(text, encoding="utf-8"))
        return self.folder

    def discard(self) -> None:
        """Remove the folder (its work is in a case now, or was given up)."""
        self._case = None
        remove_folder(self.folder)


def remove_folder(folder: Path) -> None:
    """Delete a recovery folder (its originals are read-only copies)."""
    if folder.is_dir():
        for p in folder.rglob("*"):
            if p.is_file() and not p.is_symlink():
                os.chmod(p, 0o644)
        shutil.rmtree(folder, ignore_errors=True)


@dataclass
class Recoverable:
    """A recovery folder left by a process that is gone."""

    folder: Path
    saved_utc: str
    candidates: int
    shortlisted: int
    exports: int
    evidence: str

    def summary(self) -> str:
        return (f"{self.candidates} candidate(s), {self.shortlisted} starred, {self.exports} export(s) made from "
                f"{self.evidence}, autosaved {self.saved_utc[:19].replace('T', ' ')} UTC")


def _sidecar(folder: Path) -> dict[str, Any]:
    try:
        data = json.loads((folder / SIDECAR).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def find_unsaved(root: str | Path, live: set[Path] | None = None) -> list[Recoverable]:
    """The recovery folders under ``root`` whose process is gone, newest first (unreadable ones are skipped)."""
    root = Path(root)
    out = []
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        if folder.name.endswith(DAMAGED):
            continue
        side = _sidecar(folder)
        if not side or not (folder / MANIFEST).is_file() or pid_alive(side.get("pid"), side.get("host"), live, folder):
            continue
        try:
            m = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
            ev = next((o.get("name") for o in m.get("originals", []) if isinstance(o, dict)
                       and o.get("sha256") == (m.get("session") or {}).get("evidence_sha256")), None)
            out.append(Recoverable(folder, str(side.get("saved_utc") or ""), len(m.get("candidates") or {}),
                                   len(m.get("shortlist") or []), len(side.get("exports") or []),
                                   str(ev or "no evidence")))
        except (OSError, ValueError, AttributeError, TypeError):
            continue
    return sorted(out, key=lambda r: r.saved_utc, reverse=True)


def restore_unsaved(folder: str | Path, session: Session, before: Callable[[], None] | None = None) -> list[str]:
    """Put a recovery folder's work into ``session`` (everything it held is replaced); returns the warnings.
    The evidence is read from where it was when it still has its SHA-256 there, else from the copy kept;
    :class:`CaseError` (the session untouched) when the folder cannot be read. ``before()`` is called once it
    was read, just before the session is replaced."""
    folder = Path(folder)
    data = read_case(folder)
    side = _sidecar(folder)
    path = side.get("evidence_path")
    if data.evidence is not None and isinstance(path, str) and Path(path).is_file():
        try:
            if sha256_file(Path(path)) == data.evidence.sha256:
                data.evidence = load_evidence(path)
                data.evidence.source = str(side.get("evidence_source") or "file")
        except (OSError, ImageLoadError):
            pass  # the kept copy is used
    if before is not None:
        before()
    case = data.into(session)
    case.detach()
    exports = side.get("exports")
    session.exports = [dict(x) for x in exports if isinstance(x, dict)] if isinstance(exports, list) else []
    return list(case.warnings)
