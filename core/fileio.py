"""Atomic file writes: a temporary file beside the target, fsync, then rename over it.

A crash or a full disk mid-write leaves the previous file (or none) — never a truncated one.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def atomic_write(target: str | Path, write: Callable[[Path], object]) -> None:
    """Call ``write(tmp_path)`` to produce the content, then replace ``target`` with it atomically."""
    target = Path(target)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        write(tmp_path)
        os.chmod(tmp_path, 0o644)  # mkstemp's 0600 would hide shared files from other users
        with open(tmp_path, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)
