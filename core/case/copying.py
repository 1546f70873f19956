"""Copying originals into a case: the heavy, pure-I/O part of a save, fit to run in a worker thread.

A case keeps a byte-identical copy of every original it was made from (``originals/``). The copy of a
clip may be gigabytes, so its hashing and copying must not run on the window's thread. This module holds
that part alone, touching no :class:`core.case.recorder.Case` state:

* :class:`PendingCopy`: one original still to be brought into the case (what
  :meth:`core.case.recorder.Case.pending_copies` lists, without reading any file);
* :func:`copy_verified`: one streamed copy, hashed as it is written, atomic (a temporary file renamed
  over the target), cancellable; a mismatch or a cancel leaves no file behind;
* :func:`run_copies`: every pending copy in turn, with progress in bytes; it returns what it verified
  (:class:`Verified`, keyed by hash, file, size and mtime) and what it could not copy, for the case to
  take in on its own thread (:meth:`core.case.recorder.Case.take_copies`), so the save that follows
  neither hashes nor copies those files again. Cancelled or failed part-way, it removes the copies it
  made, so the case folder is as it was;
* :func:`check_files`: every copy in a case hashed against its record (the check after each save and on
  Case > Check the originals), fit for a worker too: it reads the originals' records as given.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from core.case.schema import Original, safe_path
from core.errors import CaseError, ImageLoadError
from core.fileio import atomic_write
from core.images import load_image

#: Bytes read and written at a time (and between two looks at the cancel flag).
CHUNK = 1 << 20

Progress = Callable[[int, int], None]
Cancelled = Callable[[], bool]


class CopyCancelled(CaseError):
    """A copy of originals was cancelled: every file it had begun or made was removed."""


@dataclass(frozen=True)
class PendingCopy:
    """An original to bring into the case from a file: its recorded SHA-256, the file it is read from,
    its place in the case folder (``originals/...``, relative) and its size in bytes (when listed)."""

    sha256: str
    source: Path
    target: str
    size: int


@dataclass(frozen=True)
class Verified:
    """A copy in the case folder whose bytes were hashed and match: valid while the file keeps its size
    and modification time (``mtime_ns``); ``image_size``: what :func:`core.images.load_image` reads
    (None for a clip or anything else that is not an image)."""

    sha256: str
    target: str
    size: int
    mtime_ns: int
    image_size: list[int] | None = None

    @property
    def key(self) -> tuple[str, str, int, int]:
        return self.sha256, self.target, self.size, self.mtime_ns


@dataclass
class CopyResult:
    """What :func:`run_copies` did: the copies verified, and per SHA-256 the source file (its path,
    size and mtime when read) with why it was not copied (it no longer matches its recorded hash);
    ``made``: the copies it wrote where there was no file (what :func:`undo_copies` removes)."""

    verified: list[Verified] = field(default_factory=list)
    failed: dict[str, tuple[tuple[str, int, int], str]] = field(default_factory=dict)
    made: list[str] = field(default_factory=list)
    copied_bytes: int = 0


def undo_copies(folder: str | Path, result: CopyResult) -> None:
    """Remove the copies a run made (a save that will not happen): the folder holds no new file."""
    for rel in result.made:
        p = Path(folder) / rel
        try:
            os.chmod(p, 0o644)
            p.unlink()
        except OSError:
            pass


def file_key(path: Path) -> tuple[str, int, int]:
    """A file as it stands: its path, size and modification time (ns)."""
    st = path.stat()
    return str(path), st.st_size, st.st_mtime_ns


def changed_text(name: str) -> str:
    """Why an original's copy was refused: the file no longer has the hash recorded when it was loaded."""
    return (f"{name} on disk no longer matches the SHA-256 recorded when it was loaded: it was changed; its copy "
            "was not taken")


def _stream(path: Path, out: Callable[[bytes], object] | None, progress: Callable[[int], None] | None,
            cancelled: Cancelled | None, chunk: int | None) -> str:
    """Read ``path`` in chunks (each to ``out`` if given), checking ``cancelled`` before each; its SHA-256."""
    chunk = chunk or CHUNK
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            if cancelled is not None and cancelled():
                raise CopyCancelled("the copy of the originals was cancelled")
            block = f.read(chunk)
            if not block:
                return h.hexdigest()
            h.update(block)
            if out is not None:
                out(block)
            if progress is not None:
                progress(len(block))


def hash_file(path: Path, *, progress: Callable[[int], None] | None = None, cancelled: Cancelled | None = None,
              chunk: int | None = None) -> str:
    """The SHA-256 of a file, streamed, cancellable (:class:`CopyCancelled`); ``progress(n)`` per chunk."""
    return _stream(path, None, progress, cancelled, chunk)


def copy_verified(source: str | Path, target: str | Path, sha256: str, *,
                  progress: Callable[[int], None] | None = None, cancelled: Cancelled | None = None,
                  chunk: int | None = None) -> None:
    """Copy ``source`` to ``target`` in one streamed pass, hashing the bytes as they are written.

    The copy is written beside the target and renamed over it only when the bytes hash to ``sha256``
    (then made read-only): a source that was changed (:class:`CaseError`, the same words as a refused
    copy on the save's own thread), a cancel (:class:`CopyCancelled`, checked before each chunk) or an
    I/O error leaves no partial file and the target as it was. ``progress(n)``: after each chunk of n bytes.
    """
    source, target = Path(source), Path(target)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as dst:
            got = _stream(source, dst.write, progress, cancelled, chunk)
        if got != sha256:
            raise CaseError(changed_text(source.name))

    atomic_write(target, write)
    os.chmod(target, 0o444)


def image_size_of(path: Path) -> list[int] | None:
    """An original's pixel size as the case records it (None when it is not an image: a clip)."""
    try:
        return list(load_image(path).size)
    except ImageLoadError:
        return None


def run_copies(folder: str | Path, copies: list[PendingCopy], *, progress: Progress | None = None,
               cancelled: Cancelled | None = None, chunk: int | None = None) -> CopyResult:
    """Bring each pending original into the case folder: the work of a worker thread (no case state).

    A target already in the folder with the right bytes is kept (hashed only); otherwise the source is
    copied by :func:`copy_verified`. A source that no longer matches its hash is skipped and reported
    in :attr:`CopyResult.failed` (the save then warns, as it always did). ``progress(done, total)`` in
    bytes over all the copies. Cancelled (:class:`CopyCancelled`) or stopped by an I/O error, it first
    removes every copy it made where there was none, so the folder holds no new file.
    """
    folder = Path(folder)
    total = sum(max(0, c.size) for c in copies) or 1
    done = 0
    out = CopyResult()

    def step(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(min(done, total), total)

    try:
        for c in copies:
            target = folder / c.target
            target.parent.mkdir(parents=True, exist_ok=True)
            start = done
            if target.is_file() and hash_file(target, progress=step, cancelled=cancelled, chunk=chunk) == c.sha256:
                pass
            elif not c.source.is_file():  # gone since it was listed: the save says so, as for any missing file
                done = start + max(0, c.size)
                continue
            else:
                done = start
                existed = target.exists()
                key = file_key(c.source)
                try:
                    copy_verified(c.source, target, c.sha256, progress=step, cancelled=cancelled, chunk=chunk)
                except CopyCancelled:
                    raise
                except CaseError as e:  # the source was changed: the save warns about it, the rest goes on
                    out.failed[c.sha256] = (key, str(e))
                    done = start + max(0, c.size)
                    continue
                if not existed:
                    out.made.append(c.target)
                out.copied_bytes += target.stat().st_size
            st = target.stat()
            out.verified.append(Verified(c.sha256, c.target, st.st_size, st.st_mtime_ns, image_size_of(target)))
            done = start + max(0, c.size)
    except BaseException:
        undo_copies(folder, out)  # nothing of a cancelled or failed run stays behind
        raise
    if progress is not None:
        progress(total, total)
    return out


def check_files(folder: str | Path, originals: list[Original], evidence: tuple[Path, str] | None = None,
                cancelled: Cancelled | None = None) -> list[str]:
    """One line per original whose copy in ``folder`` is missing or no longer matches its SHA-256, and one
    when the ``evidence`` file (path, recorded SHA-256) on disk no longer matches; cancellable
    (:class:`CopyCancelled`) between chunks."""
    out = []
    for o in originals:
        try:
            p = safe_path(Path(folder), o.file)
        except CaseError as e:
            out.append(str(e))
            continue
        if not p.is_file():
            out.append(f"the original {o.name} ({o.file}) is missing from the case")
        elif hash_file(p, cancelled=cancelled) != o.sha256:
            out.append(f"the original {o.name} ({o.file}) no longer matches its SHA-256 {o.sha256[:16]}\u2026: "
                       "it was changed on disk")
    if evidence is not None and evidence[0].is_file() and hash_file(evidence[0], cancelled=cancelled) != evidence[1]:
        line = f"the evidence file {evidence[0].name} no longer matches the SHA-256 recorded when it was loaded"
        if line not in out:
            out.append(line)
    return out
