"""What every CLI shares: one clear line on stderr and a non-zero exit for expected failures."""

from __future__ import annotations

import errno
import sys
import warnings
from collections.abc import Callable
from typing import Any

from core.errors import VarSRError

_OS_WORDS = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is exceeded",
             errno.EROFS: "the file system is read-only", errno.EACCES: "permission denied",
             errno.EPERM: "operation not permitted"}


def run_cli(fn: Callable[[], int | None], prog: str) -> int:
    """Call ``fn``; a :class:`VarSRError` or an ``OSError`` (missing file, disk full, read-only
    folder...) becomes one ``prog: error: ...`` line on stderr and exit 2; Ctrl-C exits 130.
    Warnings are printed as one ``prog: warning: ...`` line each."""
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _warning_printer(prog)
            return int(fn() or 0)
    except VarSRError as e:
        print(f"{prog}: error: {_one_line(str(e))}", file=sys.stderr)
        return 2
    except OSError as e:
        what = _OS_WORDS.get(e.errno or 0) or e.strerror or e.__class__.__name__
        where = f": {e.filename}" if e.filename else ""
        print(f"{prog}: error: {what}{where}", file=sys.stderr)
        return 2
    except MemoryError:
        print(f"{prog}: error: out of memory", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _warning_printer(prog: str) -> Callable[..., None]:
    """``warnings.showwarning`` replacement: each warning is one ``prog: warning: ...`` line on stderr."""

    def show(message: Warning | str, *_args: Any, **_kw: Any) -> None:
        print(f"{prog}: warning: {_one_line(str(message))}", file=sys.stderr)

    return show
