"""A case's audit log: append-only JSON lines, each entry carrying the SHA-256 of the one before.

Every entry is one line of canonical JSON (sorted keys, ASCII) with ``seq`` (0, 1, ...), ``utc``,
``actor`` (the examiner), ``action``, ``details`` and ``prev_sha256``: the SHA-256 of the previous
line's bytes (64 zeros for the first). Editing or deleting a line breaks the chain at the next
line; editing or deleting the last lines is caught by the entry count and head hash that the case
manifest records at each save (:func:`verify_lines`). The log is rewritten with
:func:`core.fileio.atomic_write`, so a crash leaves the previous log, never a torn line.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import CaseError
from core.fileio import atomic_write

GENESIS = "0" * 64
KEYS = ("action", "actor", "details", "prev_sha256", "seq", "utc")


def utc_now() -> str:
    """The current time in UTC, ISO 8601 with milliseconds (sorts as text)."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def line_hash(line: str) -> str:
    """SHA-256 of one log line (without its newline)."""
    return hashlib.sha256(line.encode("utf-8")).hexdigest()


def canonical(entry: dict[str, Any]) -> str:
    """The one JSON text of an entry: sorted keys, no spaces, ASCII only."""
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


@dataclass
class AuditCheck:
    """The outcome of :func:`verify_lines`: the parsed entries and every problem found."""

    entries: list[dict[str, Any]]
    problems: list[str] = field(default_factory=list)
    #: Entries after the last completed save (left by an interrupted save: kept, not a tampering sign).
    unsaved_tail: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        if self.problems:
            return f"audit log NOT intact ({len(self.problems)} problem(s)): " + "; ".join(self.problems)
        tail = (f"; {self.unsaved_tail} entr{'y' if self.unsaved_tail == 1 else 'ies'} after the last completed "
                "save (an interrupted save)") if self.unsaved_tail else ""
        return f"audit log intact: {len(self.entries)} entries, hash chain verified{tail}"


def _well_formed(e: Any) -> bool:
    """An entry with every key, each of the type this program writes (anything else is a damaged line)."""
    return (isinstance(e, dict) and all(k in e for k in KEYS) and isinstance(e["seq"], int)
            and not isinstance(e["seq"], bool) and isinstance(e["details"], dict)
            and all(isinstance(e[k], str) for k in ("action", "actor", "prev_sha256", "utc")))


def verify_lines(lines: list[str], expected_count: int | None = None, expected_head: str | None = None
                 ) -> AuditCheck:
    """Check the chain of ``lines`` and, when given, the count and head hash the manifest recorded."""
    entries: list[dict[str, Any]] = []
    problems: list[str] = []
    for i, line in enumerate(lines):
        n = i + 1
        try:
            e = json.loads(line)
        except (ValueError, RecursionError):  # not JSON, or nested too deep to read
            e = None
        if not _well_formed(e):
            problems.append(f"line {n} is not a valid log entry (edited or damaged)")
            entries.append({"seq": i, "utc": "?", "actor": "?", "action": "(unreadable line)", "details": {},
                            "prev_sha256": "?"})
            continue
        entries.append(e)
        if e["seq"] != i:
            problems.append(f"line {n} is numbered {e['seq']}, expected {i}: entries were deleted or inserted")
        want = GENESIS if i == 0 else line_hash(lines[i - 1])
        if e["prev_sha256"] != want:
            problems.append(f"line {n} does not follow line {i}: line {i} was edited, or entries between were "
                            "deleted" if i else "line 1 is not the first entry of the log: entries were deleted")
    tail = 0
    if expected_count is not None:
        if len(lines) < expected_count:
            problems.append(f"the log has {len(lines)} entries, the case recorded {expected_count} at its last "
                            f"save: the last {expected_count - len(lines)} were deleted")
        else:
            head = line_hash(lines[expected_count - 1]) if expected_count else GENESIS
            if expected_head is not None and head != expected_head:
                problems.append(f"entry {expected_count} (the last at the last save) does not match the hash "
                                "recorded in the case: it was edited, or entries were deleted")
            tail = len(lines) - expected_count
    return AuditCheck(entries=entries, problems=problems, unsaved_tail=tail)


class AuditLog:
    """The lines of a log in memory; :meth:`append` chains a new entry, :meth:`write` persists them all."""

    def __init__(self, lines: list[str] | None = None, persisted: int = 0) -> None:
        self.lines: list[str] = list(lines or [])
        #: How many of :attr:`lines` are known to be in the file on disk.
        self.persisted = persisted

    def __len__(self) -> int:
        return len(self.lines)

    @property
    def head(self) -> str:
        return line_hash(self.lines[-1]) if self.lines else GENESIS

    def head_at(self, count: int) -> str:
        """The hash of entry ``count`` (1-based; ``GENESIS`` for 0)."""
        return line_hash(self.lines[count - 1]) if count else GENESIS

    def append(self, action: str, details: dict[str, Any], actor: str, utc: str | None = None) -> dict[str, Any]:
        """Add one entry after the current head; returns it."""
        entry = {"seq": len(self.lines), "utc": utc or utc_now(), "actor": actor, "action": action,
                 "details": details, "prev_sha256": self.head}
        self.lines.append(canonical(entry))
        return entry

    def entries(self) -> list[dict[str, Any]]:
        return verify_lines(self.lines).entries

    @staticmethod
    def read_lines(path: Path) -> list[str]:
        """The lines of a log file (an absent file is an empty log)."""
        if not path.exists():
            return []
        try:
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as e:
            raise CaseError(f"{path.name} is not UTF-8 text (an undecodable byte at offset {e.start}): the audit log "
                            "is damaged; nothing was changed") from e
        except OSError as e:
            raise CaseError(f"{path.name} cannot be read ({e.strerror or e.__class__.__name__})") from e
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        return lines

    def write(self, path: Path) -> None:
        """Rewrite ``path`` with every line, atomically; refuses when the file is not what was last read or written."""
        on_disk = self.read_lines(path)
        if on_disk != self.lines[: self.persisted]:
            raise CaseError(f"{path.name} was changed on disk since the case was opened: it was not overwritten "
                            "(open the case again to see what changed)")
        text = "".join(line + "\n" for line in self.lines)
        atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))
        self.persisted = len(self.lines)
