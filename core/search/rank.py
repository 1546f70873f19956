"""Rank gallery records against a set of query candidates.

Every record (one or more photos) gets one distance from the ``K`` candidates:

* ``min`` (default): the smallest distance between any candidate and any of the record's photos,
  i.e. the record is as close as its best-matching candidate.
* ``knn``: the mean of the record's ``k`` smallest candidate distances (each candidate's distance to
  the record being its distance to the record's closest photo). A record must then resemble several
  candidates, which rewards identities the samples agree on over one lucky outlier.

Each hit names the candidate that matched it best and the photo it matched. Distances are Euclidean
in the embedder's space. Up to :data:`BRUTE_FORCE_MAX` photos the distances are computed exactly
with numpy, in chunks (memory stays bounded); beyond, faiss-cpu (when installed) finds each
candidate's nearest photos first and only those records are scored exactly, which is exact for
``min`` and a close approximation for ``knn``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.search.errors import SearchError

MODES = ("min", "knn")
#: Galleries with more photos than this use faiss (if installed) to shortlist records first.
BRUTE_FORCE_MAX = 100_000
#: Photos scored per numpy chunk.
CHUNK = 65_536


@dataclass
class Hit:
    """One ranked record: its distance, the candidate that matched it best, and the photo it matched."""

    rank: int
    record_id: str
    distance: float
    candidate: int
    row: int
    candidate_distances: list[float] | None = None

    def to_dict(self) -> dict[str, object]:
        return {"rank": self.rank, "record_id": self.record_id, "distance": round(self.distance, 5),
                "candidate": self.candidate, "row": self.row}


class RecordTable:
    """Gallery rows grouped by record (computed once per index): ``order`` sorts rows by record."""

    def __init__(self, record_ids: list[str]) -> None:
        self.names, inverse = np.unique(np.asarray(record_ids, dtype=object).astype(str), return_inverse=True)
        self.row_record = inverse.astype(np.int64)
        self.order = np.argsort(self.row_record, kind="stable")
        sorted_rec = self.row_record[self.order]
        self.starts = np.flatnonzero(np.r_[True, sorted_rec[1:] != sorted_rec[:-1]]) if len(sorted_rec) else \
            np.zeros(0, dtype=np.int64)
        self.single = len(self.starts) == len(self.row_record)  # one photo per record
        counts = np.diff(np.r_[self.starts, len(self.order)])
        self.max_photos = int(counts.max()) if len(counts) else 0

    def __len__(self) -> int:
        return len(self.names)


def sq_norms(x: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", x, x, dtype=np.float64).astype(np.float32)


def distances(query: np.ndarray, gallery: np.ndarray, gallery_sq: np.ndarray | None = None) -> np.ndarray:
    """Euclidean distances ``(K, M)`` between query rows and gallery rows (float32)."""
    q = np.ascontiguousarray(query, dtype=np.float32)
    g = np.ascontiguousarray(gallery, dtype=np.float32)
    gs = sq_norms(g) if gallery_sq is None else gallery_sq
    d2 = sq_norms(q)[:, None] + gs[None, :] - 2.0 * (q @ g.T)
    return np.sqrt(np.maximum(d2, 0.0, out=d2), out=d2)


def _score(rec_d: np.ndarray, mode: str, k: int) -> np.ndarray:
    """Record scores from per-candidate record distances ``(K, R)``."""
    if mode == "min" or k <= 1:
        return rec_d.min(0)
    kk = min(k, rec_d.shape[0])
    return np.partition(rec_d, kk - 1, axis=0)[:kk].mean(0)


def _check(query: np.ndarray, gallery: np.ndarray, mode: str, k: int, top: int) -> None:
    if mode not in MODES:
        raise SearchError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    if query.ndim != 2 or len(query) == 0:
        raise SearchError("no query candidates to search with")
    if gallery.ndim != 2 or query.shape[1] != gallery.shape[1]:
        raise SearchError(f"query embeddings have {query.shape[-1]} dimensions, the gallery {gallery.shape[-1]}")
    if k < 1 or top < 1:
        raise SearchError("k and top must be at least 1")


def _merge_top(best: tuple[np.ndarray, np.ndarray], scores: np.ndarray, recs: np.ndarray, top: int
               ) -> tuple[np.ndarray, np.ndarray]:
    s, r = np.concatenate([best[0], scores]), np.concatenate([best[1], recs])
    if len(s) > top:
        keep = np.argpartition(s, top - 1)[:top]
        s, r = s[keep], r[keep]
    return s, r


def _brute_force(query: np.ndarray, gallery: np.ndarray, table: RecordTable, mode: str, k: int, top: int,
                 records: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Top record scores and record numbers, scoring ``records`` (default: all) exactly."""
    recs_all = np.arange(len(table)) if records is None else np.unique(records)
    best = (np.zeros(0, np.float32), np.zeros(0, np.int64))
    counts = np.diff(np.r_[table.starts, len(table.order)])
    i = 0
    while i < len(recs_all):
        # a chunk of whole records, about CHUNK photos
        j, rows_n = i, 0
        while j < len(recs_all) and (rows_n == 0 or rows_n + counts[recs_all[j]] <= CHUNK):
            rows_n += counts[recs_all[j]]
            j += 1
        recs = recs_all[i:j]
        if table.single:
            rows = table.order[table.starts[recs]]
            rec_d = distances(query, gallery[rows])
        else:
            segs = [table.order[table.starts[r]:table.starts[r] + counts[r]] for r in recs]
            rows = np.concatenate(segs)
            bounds = np.r_[0, np.cumsum([len(s) for s in segs])[:-1]]
            rec_d = np.minimum.reduceat(distances(query, gallery[rows]), bounds, axis=1)
        best = _merge_top(best, _score(rec_d, mode, k), recs, top)
        i = j
    order = np.lexsort((best[1], best[0]))  # by score, ties by record id
    return best[0][order], best[1][order]


def _faiss_shortlist(query: np.ndarray, gallery: np.ndarray, table: RecordTable, mode: str, k: int, top: int,
                     index: object | None = None) -> np.ndarray:
    """Record numbers near each candidate (faiss exact L2 search); enough for an exact ``min`` top list."""
    import faiss

    if index is None:
        index = faiss.IndexFlatL2(gallery.shape[1])
        index.add(np.ascontiguousarray(gallery, dtype=np.float32))
    depth = top * max(1, table.max_photos) * (1 if mode == "min" else max(1, k))
    depth = min(len(gallery), max(depth, 64))
    _, rows = index.search(np.ascontiguousarray(query, dtype=np.float32), depth)
    rows = rows[rows >= 0]
    return table.row_record[rows]


def faiss_available() -> bool:
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def rank(query: np.ndarray, gallery: np.ndarray, record_ids: list[str] | RecordTable, *, mode: str = "min",
         k: int = 3, top: int = 20, backend: str = "auto", faiss_index: object | None = None) -> list[Hit]:
    """The ``top`` records closest to the query candidates ``(K, D)`` among the gallery rows ``(M, D)``.

    ``backend``: ``auto`` (numpy up to :data:`BRUTE_FORCE_MAX` photos, faiss beyond when installed),
    ``numpy`` or ``faiss``. Equal distances are ordered by record id.
    """
    query = np.asarray(query, dtype=np.float32)
    gallery = np.asarray(gallery, dtype=np.float32)
    _check(query, gallery, mode, k, top)
    table = record_ids if isinstance(record_ids, RecordTable) else RecordTable(list(record_ids))
    if len(table.row_record) != len(gallery):
        raise SearchError(f"{len(table.row_record)} record ids for {len(gallery)} gallery rows")
    if len(gallery) == 0:
        return []
    top = min(top, len(table))
    use_faiss = backend == "faiss" or (backend == "auto" and len(gallery) > BRUTE_FORCE_MAX and faiss_available())
    if backend not in ("auto", "numpy", "faiss"):
        raise SearchError(f"backend must be auto, numpy or faiss, not {backend!r}")
    if use_faiss and not faiss_available():
        raise SearchError("the faiss backend needs faiss-cpu (pip install faiss-cpu)")
    shortlist = _faiss_shortlist(query, gallery, table, mode, k, top, faiss_index) if use_faiss else None
    scores, recs = _brute_force(query, gallery, table, mode, k, top, shortlist)
    return hits_for(query, gallery, table, scores, recs)


def hits_for(query: np.ndarray, gallery: np.ndarray, table: RecordTable, scores: np.ndarray,
             recs: np.ndarray) -> list[Hit]:
    """Hits for records ``recs`` with ``scores`` (in rank order), each naming the query row and the
    record's photo closest to each other."""
    counts = np.diff(np.r_[table.starts, len(table.order)])
    hits = []
    for n, (s, r) in enumerate(zip(scores, recs, strict=True), start=1):
        rows = table.order[table.starts[r]:table.starts[r] + counts[r]]
        d = distances(query, gallery[rows])  # (K, photos)
        cand, photo = np.unravel_index(int(np.argmin(d)), d.shape)
        hits.append(Hit(n, str(table.names[r]), float(s), int(cand), int(rows[photo]),
                        [round(float(v), 5) for v in d.min(1)]))
    return hits
