"""Save as: a whole case folder copied to a new one, the heavy part fit for a worker thread (no case state).

:func:`copy_case_folder` copies every file of a case folder (its originals, a clip among them, the candidate
files, the audit log and the manifest) in chunks, with progress in bytes and a look at the cancel flag before
each chunk (:class:`core.case.copying.CopyCancelled`). It writes into a hidden temporary folder beside the
target and renames that to the target only once every file is in: a cancel or an I/O error removes the
temporary folder (and any parent folder it made), so no half-written case is ever left at the target.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.case import copying
from core.case.copying import Cancelled, CopyCancelled, Progress
from core.errors import CaseError


def check_target(source: str | Path, target: str | Path) -> None:
    """:class:`CaseError` when ``target`` cannot take a copy of the case in ``source``: it exists and is not an
    empty folder (another case, a file), or it lies inside the case's own folder."""
    source, target = Path(source), Path(target)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise CaseError(f"{target} already exists and is not empty: choose a new folder")
    if target.resolve().is_relative_to(source.resolve()):
        raise CaseError("the new folder is inside the case's folder: choose another")


def case_files(source: Path) -> tuple[list[str], list[tuple[str, int]]]:
    """The folders and the files (with their sizes) of a case folder, relative, in a stable order."""
    dirs: list[str] = []
    files: list[tuple[str, int]] = []
    for root, dirnames, filenames in os.walk(source):
        dirnames.sort()
        rel = Path(root).relative_to(source)
        dirs += [str(rel / d) for d in dirnames]
        files += [(str(rel / f), (Path(root) / f).stat().st_size) for f in sorted(filenames)]
    return dirs, files


def copy_file(source: Path, target: Path, step: Callable[[int], None], cancelled: Cancelled | None,
              chunk: int) -> None:
    """One file copied in chunks (``step(n)`` after each), cancellable; its mode and times kept (read-only
    originals stay read-only)."""
    with open(source, "rb") as src, open(target, "wb") as dst:
        while True:
            if cancelled is not None and cancelled():
                raise CopyCancelled("the copy of the case was cancelled")
            block = src.read(chunk)
            if not block:
                break
            dst.write(block)
            step(len(block))
    shutil.copystat(source, target)


def _writable_then_retry(func: Callable[..., Any], path: str, _exc: object) -> None:
    """rmtree's error handler: a read-only entry is made writable and removed again."""
    try:
        os.chmod(path, stat.S_IWUSR | stat.S_IRUSR | stat.S_IXUSR)
        func(path)
    except OSError:
        pass


def remove_tree(folder: Path) -> None:
    """Remove a folder this module made, read-only copies and all (never raises)."""
    if folder.exists():
        shutil.rmtree(folder, onerror=_writable_then_retry)


def _make_parents(folder: Path) -> list[Path]:
    """Make ``folder`` and its missing parents; the folders made, innermost first (to remove on failure)."""
    made = []
    p = folder
    while not p.exists():
        made.append(p)
        p = p.parent
    folder.mkdir(parents=True, exist_ok=True)
    return made


def _into_place(tmp: Path, target: Path) -> None:
    """Rename the finished copy to the target (an empty folder there is replaced)."""
    if target.is_dir() and not any(target.iterdir()):
        target.rmdir()
    elif target.exists():
        raise CaseError(f"{target} was filled by something else during the copy: the copy was not kept")
    os.rename(tmp, target)


def copy_case_folder(source: str | Path, target: str | Path, *, progress: Progress | None = None,
                     cancelled: Cancelled | None = None, chunk: int | None = None) -> int:
    """Copy the case folder ``source`` to ``target`` (new or an empty folder); the bytes copied.

    ``progress(done, total)`` in bytes over every file; ``cancelled()`` is looked at before each chunk
    (:class:`CopyCancelled`). The files go into a temporary folder beside ``target``, renamed to it at the
    end: cancelled or failed (:class:`CaseError`, ``OSError``), nothing is left at the target and the
    source is never written to.
    """
    source, target = Path(source), Path(target)
    check_target(source, target)
    dirs, files = case_files(source)
    total = sum(size for _rel, size in files) or 1
    done = 0

    def step(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(min(done, total), total)

    made = _make_parents(target.parent)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial"))
    try:
        for rel in dirs:
            (tmp / rel).mkdir(parents=True, exist_ok=True)
        for rel, _size in files:
            copy_file(source / rel, tmp / rel, step, cancelled, chunk or copying.CHUNK)
        _into_place(tmp, target)
    except BaseException:
        remove_tree(tmp)
        for p in made:  # innermost first: only the empty folders it made
            try:
                p.rmdir()
            except OSError:
                break
        raise
    if progress is not None:
        progress(total, total)
    return done
