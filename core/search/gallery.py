"""A face gallery index on disk: one embedding per photo, a JSON manifest, incremental updates.

An index is a folder::

    manifest.json              format, version, embedder (name, weights SHA-256, dim), gallery
                               source, one entry per photo (path, record id, SHA-256, size,
                               mtime, face found or not), skipped files, embeddings file + SHA-256
    embeddings-<sha16>.npy     float32 (N, dim), row i = entry i (read with allow_pickle=False)

The embeddings file is named by its content and written before the manifest (both atomically),
so a crash or a cancel at any point leaves the previous index intact. Re-indexing re-embeds only
photos whose bytes changed (SHA-256; unchanged size + mtime skips re-hashing); a photo moved or
renamed keeps its embedding. A malformed, truncated, altered or newer-version index is an
:class:`IndexFormatError` and is never overwritten.

Photos: MTCNN finds the most confident face, the embedder aligns it by the eyes; when no face is
found the whole image is used as the face frame and the entry says so (``face: null``).
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import hashlib
import io
import json
import os
import time
import tokenize
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from core.data.common import IMAGE_EXTS, image_files
from core.errors import ImageLoadError
from core.fileio import atomic_write
from core.images import load_image, sha256_file
from core.search.embedders import Embedder, load_embedder
from core.search.errors import EmbedderError, IndexFormatError, SearchCancelled, SearchError
from core.search.face_detect import Face

INDEX_FORMAT = "varsr-face-index"
INDEX_VERSION = 1
MANIFEST = "manifest.json"
NO_FACE_NOTE = "no face found: the whole image was embedded"
INDEX_NOTICE = ("A gallery index searched with synthetic candidates: its hits are investigative leads to check by "
                "other means, never an identification and never evidence.")
Progress = Callable[[int, int], None]
Cancelled = Callable[[], bool]
Detector = Callable[[Image.Image], Face | None]


@dataclass(frozen=True)
class GalleryItem:
    """One photo of the gallery: its path (relative to ``base`` when inside it) and its record."""

    path: str
    record_id: str


@dataclass
class Gallery:
    base: Path
    kind: str  # "folder" or "csv"
    source: Path
    items: list[GalleryItem]

    def resolve(self, path: str) -> Path:
        p = Path(path)
        return p if p.is_absolute() else self.base / p


def list_gallery(source: str | Path) -> Gallery:
    """A folder of photos (searched recursively; record id = relative path without extension) or a
    CSV of ``path,record_id`` rows (paths relative to the CSV's folder; an optional header row)."""
    src = Path(source).expanduser()
    if src.is_dir():
        files = image_files(src, recursive=True)
        items = [GalleryItem(f.relative_to(src).as_posix(), f.relative_to(src).with_suffix("").as_posix())
                 for f in files]
        if not items:
            raise SearchError(f"{src}: no photos ({', '.join(sorted(IMAGE_EXTS))}) in this folder")
        return Gallery(src, "folder", src, items)
    if src.is_file() and src.suffix.lower() == ".csv":
        return Gallery(src.parent, "csv", src, _read_csv(src))
    if not src.exists():
        raise SearchError(f"{src}: no such folder or CSV file")
    raise SearchError(f"{src}: a gallery is a folder of photos or a .csv of path,record_id rows")


def _read_csv(path: Path) -> list[GalleryItem]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise SearchError(f"{path}: not UTF-8 text ({e.reason})") from e
    items: list[GalleryItem] = []
    for n, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        cells = [c.strip() for c in row]
        if not any(cells):
            continue
        if n == 1 and cells[0].lower() in ("path", "file", "filename", "image"):
            continue  # header
        if len(cells) < 2 or not cells[0] or not cells[1]:
            raise SearchError(f"{path}:{n}: expected 'path,record_id', found {','.join(row)[:60]!r}")
        items.append(GalleryItem(cells[0], cells[1]))
    if not items:
        raise SearchError(f"{path}: no path,record_id rows")
    return items


@dataclass
class FaceIndex:
    """A loaded index: the manifest's entries and their embeddings (row i = entry i)."""

    folder: Path
    manifest: dict[str, Any]
    embeddings: np.ndarray
    #: SHA-256 of ``manifest.json`` when loaded (what a case records of the index it searched).
    manifest_sha256: str = ""

    @property
    def entries(self) -> list[dict[str, Any]]:
        return self.manifest["entries"]

    @property
    def embedder(self) -> dict[str, Any]:
        return self.manifest["embedder"]

    @property
    def record_ids(self) -> list[str]:
        return [e["record_id"] for e in self.entries]

    def photo_path(self, row: int) -> Path:
        """Where entry ``row``'s photo is (relative entries resolve against the gallery folder)."""
        p = Path(self.entries[row]["path"])
        return p if p.is_absolute() else Path(self.manifest["gallery"]["base"]) / p

    def check_embedder(self, embedder: Embedder) -> None:
        """Raise :class:`EmbedderError` unless ``embedder`` is the one this index was built with (its
        distances mean nothing against another network's, or other weights')."""
        if (embedder.name, embedder.version) != (self.embedder["name"], self.embedder["version"]):
            raise EmbedderError(f"{self.folder} was built with {self.embedder['name']}, not these "
                                f"{embedder.name} weights")

    def __len__(self) -> int:
        return len(self.entries)


@dataclass
class IndexReport:
    """What one indexing run did."""

    folder: Path
    total: int = 0
    embedded: int = 0
    reused: int = 0
    no_face: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        s = (f"{self.total} photos indexed ({self.embedded} embedded, {self.reused} unchanged), "
             f"{self.no_face} without a detected face (whole image used), {len(self.skipped)} skipped, "
             f"{self.seconds:.1f} s")
        return s


# -- reading ---------------------------------------------------------------------------------------
def _fail(folder: Path, what: str) -> IndexFormatError:
    return IndexFormatError(f"{folder}: {what}")


def read_manifest(folder: str | Path) -> dict[str, Any]:
    """The validated manifest of the index in ``folder`` (raises :class:`IndexFormatError`)."""
    folder = Path(folder)
    path = folder / MANIFEST
    if not path.is_file():
        raise _fail(folder, f"not a face index (no {MANIFEST})")
    try:
        m = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise _fail(folder, f"{MANIFEST} cannot be read ({e.strerror or e.__class__.__name__})") from e
    except (ValueError, RecursionError) as e:  # not UTF-8, not JSON, or nested too deep
        raise _fail(folder, f"{MANIFEST} is not valid JSON (truncated or damaged: {e})") from e
    if not isinstance(m, dict) or m.get("format") != INDEX_FORMAT:
        raise _fail(folder, f"{MANIFEST} is not a VarSR face index manifest")
    version = m.get("version")
    if not isinstance(version, int) or version < 1:
        raise _fail(folder, f"{MANIFEST} has no valid version")
    if version > INDEX_VERSION:
        raise _fail(folder, f"made by a newer VarSR Studio (index version {version}; this one reads up to "
                            f"{INDEX_VERSION}): update the program, or index into another folder")
    emb, entries = m.get("embedder"), m.get("entries")
    if not isinstance(emb, dict) or not all(isinstance(emb.get(k), str) for k in ("name", "version")) \
            or not _count(emb.get("dim")) or emb["dim"] < 1:
        raise _fail(folder, f"{MANIFEST}: the embedder record is malformed")
    if not isinstance(entries, list) or not all(
            isinstance(e, dict) and isinstance(e.get("path"), str) and isinstance(e.get("record_id"), str)
            and isinstance(e.get("sha256"), str) and (e.get("face") is None or isinstance(e["face"], dict))
            and (e.get("note") is None or isinstance(e["note"], str)) for e in entries):
        raise _fail(folder, f"{MANIFEST}: the entries are malformed")
    gallery, counts = m.get("gallery"), m.get("counts")
    if not isinstance(m.get("embeddings"), dict) or not isinstance(gallery, dict) \
            or not all(isinstance(gallery.get(k), str) for k in ("kind", "source", "base")):
        raise _fail(folder, f"{MANIFEST}: the embeddings or gallery record is missing")
    if not isinstance(counts, dict) or not all(_count(counts.get(k)) for k in ("photos", "records", "no_face")):
        raise _fail(folder, f"{MANIFEST}: the counts are malformed")
    return m


def _count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def load_index(folder: str | Path) -> FaceIndex:
    """Load and check an index: manifest, embeddings file SHA-256, shape, dtype, finiteness."""
    folder = Path(folder)
    m = read_manifest(folder)
    rec = m["embeddings"]
    name = rec.get("file")
    if not isinstance(name, str) or "/" in name or "\\" in name or not name.endswith(".npy"):
        raise _fail(folder, f"{MANIFEST}: bad embeddings file name")
    path = folder / name
    if not path.is_file():
        raise _fail(folder, f"the embeddings file {name} is missing")
    if sha256_file(path) != rec.get("sha256"):
        raise _fail(folder, f"{name} does not match the SHA-256 in {MANIFEST} (altered or truncated)")
    arr = _read_embeddings(folder, path, len(m["entries"]), m["embedder"]["dim"])
    if not np.isfinite(arr).all():
        raise _fail(folder, f"{name} contains NaN or infinite values")
    return FaceIndex(folder, m, arr, sha256_file(folder / MANIFEST))


def _read_embeddings(folder: Path, path: Path, n: int, dim: int) -> np.ndarray:
    """The ``(n, dim)`` float32 array of an index's ``.npy`` file. Its header is read and checked (an
    ``.npy`` of version 1 or 2, little-endian float32, C order, that shape) before any data: an object
    array, whose data would be a pickle, is refused unread, and so is a zip (``.npz``) under the name."""
    name = path.name
    try:
        with open(path, "rb") as f, warnings.catch_warnings():
            warnings.simplefilter("error")  # a header numpy must repair (Python 2 style) is not one written here
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                raise ValueError(f".npy format version {version[0]}.{version[1]} is not one this program writes")
            if dtype != np.dtype("<f4") or fortran or shape != (n, dim):
                raise _fail(folder, f"{name} holds {dtype} {shape}{' (Fortran order)' if fortran else ''}, the "
                                    f"manifest says float32 ({n}, {dim})")
            data = f.read(n * dim * 4 + 1)
    except (ValueError, TypeError, OSError, EOFError, SyntaxError, tokenize.TokenError, RecursionError,
            Warning) as e:
        raise _fail(folder, f"{name} is not a readable .npy array ({e.__class__.__name__}: {e})") from e
    if len(data) != n * dim * 4:
        raise _fail(folder, f"{name} holds {len(data)} bytes of data, not the {n * dim * 4} of ({n}, {dim}) float32")
    return np.frombuffer(data, dtype="<f4").reshape(n, dim).astype(np.float32)


# -- writing ---------------------------------------------------------------------------------------
def _existing(out: Path) -> FaceIndex | None:
    """The index already at ``out`` (None if the folder is new or empty); refuses other folders."""
    if not out.exists():
        return None
    if not out.is_dir():
        raise SearchError(f"{out}: exists and is not a folder")
    if (out / MANIFEST).exists():
        return load_index(out)  # malformed -> IndexFormatError, nothing is written
    if any(out.iterdir()):
        raise SearchError(f"{out}: a non-empty folder that is not a face index; choose a new or empty folder")
    return None


def build_index(
    gallery: str | Path,
    out: str | Path,
    embedder: Embedder | None = None,
    *,
    detector: Detector | None = None,
    progress: Progress | None = None,
    cancelled: Cancelled | None = None,
) -> IndexReport:
    """Index (or update the index of) ``gallery`` into the folder ``out``.

    ``progress(i, n)`` is called as photos are done; when ``cancelled()`` turns true, indexing stops
    with :class:`SearchCancelled` and nothing is written. Unreadable photos are skipped and listed.
    """
    t0 = time.perf_counter()
    out = Path(out).expanduser()
    g = list_gallery(gallery)
    old = _existing(out)
    embedder = embedder if embedder is not None else load_embedder()
    if detector is None:
        from core.search.face_detect import find_face as detector
    report = IndexReport(out, total=0)
    reuse: dict[str, tuple[np.ndarray, dict[str, Any]]] = {}
    stat_sha: dict[tuple[str, int, int], str] = {}
    if old is not None:
        same = (old.embedder["name"], old.embedder["version"]) == (embedder.name, embedder.version)
        if same:
            for i, e in enumerate(old.entries):
                reuse[e["sha256"]] = (old.embeddings[i], e)
                if isinstance(e.get("size"), int) and isinstance(e.get("mtime_ns"), int):
                    stat_sha[(e["path"], e["size"], e["mtime_ns"])] = e["sha256"]
        else:
            report.notes.append(f"the existing index used embedder {old.embedder['name']} "
                                f"({old.embedder['version'][:12]}); every photo was embedded again")
    entries: list[dict[str, Any]] = []
    rows: list[np.ndarray | None] = []
    pending: list[tuple[int, Any]] = []  # (entry index, chip) waiting for a batched forward pass
    n = len(g.items)

    def flush() -> None:
        if pending:
            vecs = embedder.embed_chips([c for _, c in pending])
            for (i, _), v in zip(pending, vecs, strict=True):
                rows[i] = v
            pending.clear()

    for k, item in enumerate(g.items):
        if cancelled is not None and cancelled():
            raise SearchCancelled("indexing cancelled: nothing was written")
        path = g.resolve(item.path)
        try:
            st = path.stat()
            sha = stat_sha.get((item.path, st.st_size, st.st_mtime_ns)) or sha256_file(path)
        except OSError as e:
            report.skipped.append({"path": item.path, "reason": e.strerror or str(e)})
            continue
        entry: dict[str, Any] = {"path": item.path, "record_id": item.record_id, "sha256": sha,
                                 "size": st.st_size, "mtime_ns": st.st_mtime_ns}
        if sha in reuse:
            vec, prev = reuse[sha]
            entry["face"] = prev.get("face")
            if prev.get("note"):
                entry["note"] = prev["note"]
            entries.append(entry)
            rows.append(vec)
            report.reused += 1
        else:
            try:
                img = load_image(path, "RGB")
            except ImageLoadError as e:
                report.skipped.append({"path": item.path, "reason": str(e)})
                continue
            face = detector(img)
            entry["face"] = face.to_dict() if face is not None else None
            if face is None:
                entry["note"] = NO_FACE_NOTE
            entries.append(entry)
            rows.append(None)
            pending.append((len(entries) - 1, embedder.chip(img, face)))
            report.embedded += 1
            if len(pending) >= 16:
                flush()
        if progress is not None:
            progress(k + 1, n)
    flush()
    if cancelled is not None and cancelled():
        raise SearchCancelled("indexing cancelled: nothing was written")
    if not entries:
        raise SearchError(f"{g.source}: none of the {n} photos could be read")
    report.total = len(entries)
    report.no_face = sum(1 for e in entries if e.get("face") is None)
    emb = np.ascontiguousarray(np.stack([r for r in rows if r is not None]).astype(np.float32))
    if len(emb) != len(entries):  # every entry's chip was flushed above
        raise SearchError("internal: a gallery photo was not embedded")
    _write(out, g, embedder, entries, emb, report)
    report.seconds = time.perf_counter() - t0
    return report


def _write(out: Path, g: Gallery, embedder: Embedder, entries: list[dict[str, Any]], emb: np.ndarray,
           report: IndexReport) -> None:
    import core

    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    np.save(buf, emb, allow_pickle=False)
    data = buf.getvalue()
    sha = hashlib.sha256(data).hexdigest()
    name = f"embeddings-{sha[:16]}.npy"
    new_file = not (out / name).exists()
    try:
        atomic_write(out / name, lambda p: p.write_bytes(data))
        _write_manifest(out, g, embedder, entries, emb, report, name, sha, core.__version__)
    except BaseException:  # disk full, read-only, interrupted: the previous index stays as it was
        if new_file:
            (out / name).unlink(missing_ok=True)
        if created:
            with contextlib.suppress(OSError):
                out.rmdir()
        raise
    for stale in out.glob("embeddings-*.npy"):
        if stale.name != name:
            try:
                os.remove(stale)
            except OSError:
                pass


def _write_manifest(out: Path, g: Gallery, embedder: Embedder, entries: list[dict[str, Any]], emb: np.ndarray,
                    report: IndexReport, name: str, sha: str, version: str) -> None:
    """The manifest, written last (atomically): the commit point of an index."""
    manifest = {
        "format": INDEX_FORMAT,
        "version": INDEX_VERSION,
        "notice": INDEX_NOTICE,
        "created_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "program": {"varsr_studio": version},
        "embedder": {"name": embedder.name, "version": embedder.version, "dim": int(emb.shape[1])},
        "gallery": {"kind": g.kind, "source": str(g.source.resolve()), "base": str(g.base.resolve())},
        "embeddings": {"file": name, "sha256": sha, "dtype": "float32", "shape": list(emb.shape)},
        "counts": {"photos": len(entries), "records": len({e["record_id"] for e in entries}),
                   "no_face": report.no_face, "skipped": len(report.skipped)},
        "skipped": report.skipped,
        "entries": entries,
    }
    text = json.dumps(manifest, indent=1) + "\n"
    atomic_write(out / MANIFEST, lambda p: p.write_text(text, encoding="utf-8"))
