"""What every CLI shares: one clear line on stderr and a non-zero exit for expected failures."""

from __future__ import annotations

import sys
from collections.abc import Callable

from core.errors import VarSRError


def run_cli(fn: Callable[[], int | None], prog: str) -> int:
    """Call ``fn``; a :class:`VarSRError` or a missing file becomes ``prog: error: ...`` and exit 2."""
    try:
        return int(fn() or 0)
    except VarSRError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    except (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError) as e:
        print(f"{prog}: error: {e.strerror or e}: {e.filename}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
