"""`make typecheck`: mypy over ``core`` (configured in pyproject.toml), held to a baseline of known errors.

Every error not in ``tools/mypy_baseline.txt`` fails, and so does every baseline entry that no longer
occurs (delete it: the list only shrinks). Entries are ``path: message  [code]``, without line numbers, so
unrelated edits do not churn them. ``--update`` rewrites the baseline (review the diff: it should only
lose lines).

    python tools/typecheck.py [--update]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BASELINE = REPO / "tools" / "mypy_baseline.txt"
ERROR = re.compile(r"^(?P<path>[^:\s]+\.py):\d+(?::\d+)?: error: (?P<msg>.*)$")


def current_errors() -> tuple[Counter[str], str]:
    """mypy's errors as baseline entries, and its whole output."""
    out = subprocess.run([sys.executable, "-m", "mypy"], cwd=REPO, capture_output=True, text=True)
    if out.returncode not in (0, 1):  # 2: mypy itself failed (bad config, crash)
        sys.exit(out.stdout + out.stderr)
    found: Counter[str] = Counter()
    for line in out.stdout.splitlines():
        m = ERROR.match(line)
        if m:
            found[f"{m['path']}: {m['msg']}"] += 1
    return found, out.stdout


def read_baseline() -> Counter[str]:
    if not BASELINE.is_file():
        return Counter()
    return Counter(s for s in BASELINE.read_text().splitlines() if s.strip() and not s.startswith("#"))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--update", action="store_true", help="rewrite the baseline with today's errors")
    args = p.parse_args(argv)
    found, output = current_errors()
    if args.update:
        head = "# Known mypy errors in core (tools/typecheck.py): fix one, delete its line; never add lines by hand.\n"
        BASELINE.write_text(head + "".join(f"{e}\n" for e in sorted(found.elements())))
        print(f"{sum(found.values())} known error(s) written to {BASELINE.relative_to(REPO)}")
        return 0
    known = read_baseline()
    new, gone = found - known, known - found
    for e in sorted(new.elements()):
        print(f"new: {e}")
    for e in sorted(gone.elements()):
        print(f"fixed, delete from {BASELINE.name}: {e}")
    if new:
        print(output, end="")
    print(f"mypy on core: {sum(found.values())} error(s), {sum(known.values())} in the baseline, "
          f"{sum(new.values())} new, {sum(gone.values())} fixed")
    return 1 if new or gone else 0


if __name__ == "__main__":
    sys.exit(main())
