"""A plate registry: a CSV of plate texts plus any other columns, read safely and scored fast.

The file is read with the :mod:`csv` module only (nothing is evaluated); anything that is not a
text CSV with a header and a plate column ends in :class:`RegistryError` with a one-line reason.
Plate texts are compared in a normal form: upper case, without spaces, hyphens, dots or middle
dots (``ab-12 cd`` and ``AB12CD`` are the same plate). A row whose plate cell is empty is skipped
and counted.
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.errors import DataError

#: Header names taken as the plate column (case-insensitive), in this order, when none is given.
PLATE_COLUMNS = ("plate", "plate_text", "plate_number", "licence_plate", "license_plate", "registration",
                 "reg", "number", "text")
#: Field separators recognised (the one found most often in the header row; a comma by default).
DELIMITERS = (",", ";", "\t", "|")
#: Refuse registries larger than this (bytes): read fully into memory.
MAX_BYTES = 1 << 30
#: Characters dropped when normalising a plate text.
_SEPARATORS = str.maketrans("", "", " -.\u00b7\t_")


class RegistryError(DataError):
    """A registry CSV is missing, empty, not text, malformed or has no plate column.

    The message stays one line: line breaks quoted inside the file (a header cell with a newline,
    say) are shown escaped, as every CLI prints one error line.
    """

    def __init__(self, message: str) -> None:
        super().__init__(str(message).replace("\r", "\\r").replace("\n", "\\n"))


def normalize_plate(text: str) -> str:
    """The form plates are compared in: upper case, no spaces, hyphens, dots or underscores."""
    return text.translate(_SEPARATORS).upper()


@dataclass
class PlateRegistry:
    """The records of a registry CSV (each a dict of its columns), with their normalised plates."""

    path: Path | None
    column: str
    columns: list[str]
    records: list[dict[str, str]]
    keys: list[str]
    lines: list[int]
    skipped: int = 0
    #: SHA-256 of the CSV file's bytes (set by :func:`load_registry`; empty for text parsed directly).
    sha256: str = ""
    _codes: dict[tuple[tuple[str, ...], int], tuple[np.ndarray, np.ndarray]] = field(
        default_factory=dict, repr=False)
    _by_key: dict[str, list[int]] | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.records)

    def lengths(self) -> dict[int, int]:
        """How many records have each plate length."""
        out: dict[int, int] = {}
        for k in self.keys:
            out[len(k)] = out.get(len(k), 0) + 1
        return dict(sorted(out.items()))

    def encoded(self, classes: list[str] | tuple[str, ...], length: int) -> tuple[np.ndarray, np.ndarray]:
        """Records of ``length`` whose characters are all in ``classes``: their indices ``(m,)`` and
        class codes ``(m, length)`` (cached per class list and length)."""
        key = (tuple(classes), int(length))
        if key not in self._codes:
            where = {c: i for i, c in enumerate(classes)}
            idx, codes = [], []
            for i, k in enumerate(self.keys):
                if len(k) == length and all(c in where for c in k):
                    idx.append(i)
                    codes.append([where[c] for c in k])
            self._codes[key] = (np.asarray(idx, dtype=np.int64),
                                np.asarray(codes, dtype=np.int64).reshape(len(idx), length))
        return self._codes[key]

    def records_of(self, key: str) -> list[int]:
        """Indices of the records whose normalised plate is ``key``."""
        if self._by_key is None:
            self._by_key = {}
            for i, k in enumerate(self.keys):
                self._by_key.setdefault(k, []).append(i)
        return self._by_key.get(key, [])

    def other_columns(self, i: int) -> dict[str, str]:
        """Record ``i`` without its plate column."""
        return {k: v for k, v in self.records[i].items() if k != self.column}


def _decode(data: bytes, where: str) -> str:
    if not data.strip():
        raise RegistryError(f"{where}: the registry is empty (expected a CSV with a header row and a plate column)")
    if b"\x00" in data[:65536]:
        raise RegistryError(f"{where}: not a text CSV (binary data)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise RegistryError(f"{where}: not a UTF-8 text CSV (undecodable byte at offset {e.start})") from e


def _pick_column(header: list[str], column: str | None, where: str) -> str:
    lowered = {h.strip().lower(): h for h in header}
    if column is not None:
        if column in header:
            return column
        if column.strip().lower() in lowered:
            return lowered[column.strip().lower()]
        raise RegistryError(f"{where}: no column '{column}' (columns: {', '.join(header)})")
    for name in PLATE_COLUMNS:
        if name in lowered:
            return lowered[name]
    raise RegistryError(f"{where}: no plate column (columns: {', '.join(header)}); name it 'plate' or give "
                        "the column")


def parse_registry(text: str, column: str | None = None, where: str = "registry",
                   path: Path | None = None) -> PlateRegistry:
    """A registry from CSV text (header row first); see :func:`load_registry`."""
    first = text.split("\n", 1)[0]
    delimiter = max(DELIMITERS, key=lambda d: (first.count(d), d == ","))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = next(reader, None)
        if header is None or not any(h.strip() for h in header):
            raise RegistryError(f"{where}: the registry has no header row")
        header = [h.strip() for h in header]
        if len(set(header)) != len(header):
            raise RegistryError(f"{where}: repeated column names in the header ({', '.join(header)})")
        col = _pick_column(header, column, where)
        ci = header.index(col)
        records, keys, lines, skipped = [], [], [], 0
        for row in reader:
            line = reader.line_num
            if not row or not any(v.strip() for v in row):
                continue
            if len(row) != len(header):
                raise RegistryError(f"{where}: line {line} has {len(row)} fields, the header has {len(header)}")
            key = normalize_plate(row[ci])
            if not key:
                skipped += 1
                continue
            records.append(dict(zip(header, row, strict=True)))
            keys.append(key)
            lines.append(line)
    except csv.Error as e:
        raise RegistryError(f"{where}: malformed CSV at line {reader.line_num} ({e})") from e
    if not records:
        raise RegistryError(f"{where}: no plates in column '{col}'")
    return PlateRegistry(path=path, column=col, columns=header, records=records, keys=keys, lines=lines,
                         skipped=skipped)


def load_registry(path: str | Path, column: str | None = None) -> PlateRegistry:
    """Read a registry CSV (UTF-8, ``,``/``;``/tab/``|`` separated, header row first).

    ``column``: the plate column's name; by default the first of :data:`PLATE_COLUMNS` present.
    Raises :class:`RegistryError` for a missing, empty, binary, non-UTF-8 or malformed file, a row
    with the wrong number of fields, or a missing plate column.
    """
    path = Path(path)
    where = str(path)
    if not path.is_file():
        raise RegistryError(f"{where}: no such registry file")
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise RegistryError(f"{where}: the registry is {size / 2**30:.1f} GiB, more than the {MAX_BYTES >> 30} GiB "
                            "read into memory")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise RegistryError(f"{where}: cannot be read ({e.strerror or e})") from e
    reg = parse_registry(_decode(data, where), column, where, path)
    reg.sha256 = hashlib.sha256(data).hexdigest()
    return reg
