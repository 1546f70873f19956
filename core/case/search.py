"""Searches and cases: a search's record for the case file, and a case's candidates as a query. No Qt.

A search record (one entry of the case manifest's ``searches`` list, and the details of its
``search_run`` audit entry) holds what another examiner needs to rerun and judge it:

* ``query``: the database (the index or registry file *name* and the SHA-256 of its manifest or
  CSV), the embedder or classifier (name and weights SHA-256), the settings (mode, k, top, diverse
  pick, pattern) and which candidates were used (their ids);
* ``hits``: the ranked records (record id, distance or score, the matching candidate, the photo).

No path of the searching machine is kept: files are named, never located. Every hit is an
investigative lead, never an identification. :func:`case_face_candidates` and
:func:`case_plate_cells` read a saved case's candidates for ``varsr-search ... --case``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import torch

from core.case.reader import CaseData, read_case
from core.search.errors import SearchError

#: Said with every recorded search (the case file, its audit log and its report).
SEARCH_NOTICE = ("Search hits are investigative leads to check by other means: the candidates are synthetic, so "
                 "a hit is never an identification of anyone and never evidence.")
#: Wildcard registry records kept per plate search (the exact and ranked ones are all kept).
MAX_WILDCARD = 20
#: Selections of a case's candidates.
SHORTLIST, ALL = "shortlist", "all"


def file_name(path: Any) -> str | None:
    """Only the last part of a path (None stays None): a record names files, it does not locate them."""
    if path is None or path == "":
        return None
    text = str(path)
    return PureWindowsPath(text).name if "\\" in text else PurePosixPath(text).name


def _relative_or_name(path: Any) -> str | None:
    """A gallery-relative photo path as stored in the index; an absolute one reduced to its name."""
    if not isinstance(path, str) or not path:
        return None
    if PurePosixPath(path).is_absolute() or PureWindowsPath(path).is_absolute() or PureWindowsPath(path).drive \
            or ".." in PurePosixPath(path).parts:
        return file_name(path)
    return path


# -- records -----------------------------------------------------------------------------------------
#: What a fused face search's hit "distance" is (core.search.degraded.fused_record_scores).
FUSED_SCORE = ("fused score: the sum of three record distances (-det output and candidates to the photos, -det "
               "output to the photos degraded as the probe was), each standardised over the records; lower is "
               "closer, not a distance")


def face_entry(out: dict[str, Any]) -> dict[str, Any]:
    """The case record of a face search from :meth:`core.search.faces.FaceSearchResult.to_dict`.

    The caller may add ``top``, ``diverse``, ``source`` (how the candidates were chosen) and
    ``candidates_offered`` (ids before a diverse pick) to ``out``.
    """
    query = {
        "database": "face gallery index",
        "index": {"name": file_name(out.get("index")), "manifest_sha256": out.get("index_manifest_sha256")},
        "embedder": {"name": out.get("embedder"), "weights_sha256": out.get("embedder_weights_sha256")},
        "distance": FUSED_SCORE if out.get("mode") == "fused" else
        "Euclidean distance in the embedder's space (lower is closer)",
        "mode": out.get("mode"), "k": out.get("k"), "top": out.get("top"), "diverse": out.get("diverse"),
        "source": out.get("source"),
        "candidates": [str(c) for c in out.get("candidates") or []],
        "candidates_offered": [str(c) for c in out.get("candidates_offered") or []] or None,
        "records_searched": out.get("records_searched"),
    }
    hits = [{"rank": h.get("rank"), "record_id": h.get("record_id"), "distance": h.get("distance"),
             "candidate": h.get("candidate"),
             "photo": _relative_or_name(h.get("photo_in_index")) or file_name(h.get("photo")),
             "photo_sha256": h.get("photo_sha256"), "face_found": h.get("face_found")}
            for h in out.get("hits") or []]
    return {"kind": "faces", "query": query, "hits": hits, "notes": [str(n) for n in out.get("notes") or []],
            "notice": SEARCH_NOTICE}


def _plate_hit(h: dict[str, Any]) -> dict[str, Any]:
    return {"kind": h.get("kind"), "rank": h.get("rank"), "record_id": h.get("plate"), "key": h.get("key"),
            "score": h.get("score"), "probability": h.get("probability"), "string_rank": h.get("string_rank"),
            "line": h.get("line"), "record": h.get("record")}


def plate_entry(out: dict[str, Any]) -> dict[str, Any]:
    """The case record of a plate search from :meth:`core.search.plates.PlateSearchResult.to_dict`.

    The caller adds ``top``, ``classifier`` (``{"name", "sha256"}``) and ``candidates`` (which rows or
    cells were read: ids and the number of candidates per cell) to ``out``.
    """
    reg = out.get("registry")
    query = {
        "database": "plate registry" if reg else "none (plate strings only)",
        "registry": None if not reg else {"name": file_name(reg.get("path")), "sha256": reg.get("sha256"),
                                          "column": reg.get("column"), "n_records": reg.get("n_records"),
                                          "n_scored": reg.get("n_scored"), "n_wildcard": reg.get("n_wildcard")},
        "classifier": out.get("classifier"),
        "score": "log-probability: sum over positions of log P_i(character), P_i the mean softmax of the "
                 "classifier over position i's candidates (higher is closer)",
        "length": out.get("length"), "reading": out.get("reading"), "top": out.get("top"),
        "pattern": out.get("pattern"), "pattern_source": out.get("pattern_source"),
        "candidates": out.get("candidates"),
    }
    hits: list[dict[str, Any]] = []
    if reg:
        hits = ([_plate_hit(h) for h in reg.get("exact") or []]
                + [_plate_hit(h) for h in (reg.get("wildcard") or [])[:MAX_WILDCARD]]
                + [_plate_hit(h) for h in reg.get("ranked") or []])
    strings = [{"rank": s.get("rank"), "text": s.get("text"), "score": s.get("score"),
                "probability": s.get("probability")} for s in out.get("strings") or []]
    return {"kind": "plates", "query": query, "strings": strings, "hits": hits, "notes": [], "notice": SEARCH_NOTICE}


def _dict(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def hits_of(rec: dict[str, Any]) -> list[dict[str, Any]]:
    """A record's hits (only well-formed ones: a damaged record must not stop a report)."""
    hits = rec.get("hits")
    return [h for h in hits if isinstance(h, dict)] if isinstance(hits, list) else []


def strings_of(rec: dict[str, Any]) -> list[dict[str, Any]]:
    """A plate search record's ranked strings (well-formed ones only)."""
    strings = rec.get("strings")
    return [x for x in strings if isinstance(x, dict)] if isinstance(strings, list) else []


def short_sha(sha: Any) -> str:
    return f"{sha[:12]}\u2026" if isinstance(sha, str) and len(sha) > 12 else str(sha)


def query_line(rec: dict[str, Any]) -> str:
    """One readable line for what a recorded search asked (the report and the audit log view)."""
    q = _dict(rec.get("query"))
    cands = q.get("candidates")
    if rec.get("kind") == "faces":
        ix, emb = _dict(q.get("index")), _dict(q.get("embedder"))
        mode = f"mode {q.get('mode')}" + (f" (k {q.get('k')})" if q.get("mode") == "knn" else "")
        pick = f", diverse pick of {q.get('diverse')}" if q.get("diverse") else ""
        cands = cands if isinstance(cands, list) else []
        used = ", ".join(map(str, cands)) or "none"
        return (f"face gallery index {ix.get('name')} (manifest SHA-256 {short_sha(ix.get('manifest_sha256'))}), "
                f"embedder {emb.get('name')} (weights SHA-256 {short_sha(emb.get('weights_sha256'))}), {mode}, "
                f"top {q.get('top')}{pick}; {len(cands)} candidate(s) from the {q.get('source') or 'query'}: "
                f"{used}; {q.get('records_searched')} records searched")
    reg, clf = _dict(q.get("registry")) or None, _dict(q.get("classifier"))
    db = (f"plate registry {reg.get('name')} (SHA-256 {short_sha(reg.get('sha256'))}, {reg.get('n_records')} records)"
          if reg else "no registry (strings only)")
    c = _dict(cands)
    rows = ", ".join(map(str, c.get("rows") or [])) or "the selected cells"
    return (f"{db}, classifier {clf.get('name')} (SHA-256 {short_sha(clf.get('sha256'))}), reading {q.get('reading')}, "
            f"pattern {q.get('pattern')} ({q.get('pattern_source')}), top {q.get('top')}; candidates: {rows}"
            + (f" ({'/'.join(map(str, k)) if isinstance(k := c.get('k'), list) else k} candidates per cell)"
               if c.get("k") is not None else ""))


def score_label(rec: dict[str, Any]) -> str:
    """What a recorded face search's hit "distance" is: a distance, or a fused search's score."""
    q = rec.get("query")
    return "fused score" if isinstance(q, dict) and q.get("mode") == "fused" else "distance"


def hit_line(rec: dict[str, Any], h: dict[str, Any]) -> str:
    """One readable line for one hit of a recorded search."""
    if rec.get("kind") == "faces":
        return (f"{h.get('rank')}. record {h.get('record_id')}: {score_label(rec)} {h.get('distance')} via candidate "
                f"{h.get('candidate')} (photo {h.get('photo')}" + ("" if h.get("face_found", True) else
                                                                      ", no face found") + ")")
    return (f"{h.get('kind')} {h.get('rank')}. {h.get('record_id')} (line {h.get('line')}): log P {h.get('score')}"
            + (f", string rank {h['string_rank']}" if h.get("string_rank") else ""))


def summary_line(rec: dict[str, Any], top: int = 3) -> str:
    """The audit log view's line: the query and its first hits."""
    kind = "face" if rec.get("kind") == "faces" else "plate"
    hits = hits_of(rec)
    first = "; ".join(hit_line(rec, h) for h in hits[:top])
    strings = strings_of(rec)
    if strings:
        first = "strings " + ", ".join(str(s.get("text")) for s in strings[:top]) + (f"; {first}" if first else "")
    return f"{kind} search {rec.get('id', '')}: {query_line(rec)} \u2192 {len(hits)} hit(s)" + (
        f": {first}" if first else "")


# -- a case's candidates as a query --------------------------------------------------------------------
def _chosen(data: CaseData, selection: str) -> tuple[dict[str, Any], list[Any]]:
    cands = {c.id: c for _, cs in data.sets for c in cs}
    if selection == ALL:
        return cands, list(cands.values())
    return cands, [cands[e.candidate_id] for e in data.shortlist if e.candidate_id in cands]


def _case_info(data: Any, selection: str) -> dict[str, Any]:
    return {"kind": "case", "case": data.folder.name, "case_saved_utc": data.manifest.get("saved_utc"),
            "selection": selection, "audit": data.check.summary()}


def case_face_candidates(folder: str | Path, selection: str = SHORTLIST) -> tuple[list[str], torch.Tensor,
                                                                                  dict[str, Any]]:
    """A saved case's face candidates (its shortlist, or all with ``selection="all"``) as ``(ids, frames, info)``.

    ``frames`` is ``(N, 3, S, S)`` in [0, 1], resized to the largest side. :class:`core.errors.CaseError`
    for an unreadable case, :class:`SearchError` when it holds no such face candidate.
    """
    data, faces = _face_candidates(folder, selection)
    side = max(c.image.shape[-1] for c in faces)
    frames = torch.stack([c.image.float() if c.image.shape[-1] == side else torch.nn.functional.interpolate(
        c.image[None].float(), size=(side, side), mode="bilinear", align_corners=False)[0] for c in faces])
    info = {**_case_info(data, selection), "candidates": [c.id for c in faces]}
    return [c.id for c in faces], frames.clamp(0, 1), info


def _face_candidates(folder: str | Path, selection: str) -> tuple[Any, list[Any]]:
    data = read_case(folder)
    _, chosen = _chosen(data, selection)
    faces = [c for c in chosen if c.recipe.get("domain") == "face" and c.image.dim() == 3
             and c.image.shape[-1] == c.image.shape[-2]]
    if not faces:
        what = "shortlisted face candidates (star some in the app, or pass --all)" if selection == SHORTLIST \
            else "face candidates"
        raise SearchError(f"case {data.folder.name} has no {what}")
    return data, faces


def case_face_candidate_objects(folder: str | Path, selection: str = SHORTLIST) -> list[Any]:
    """The same candidates as :func:`case_face_candidates`, as workbench candidates (with their model
    input ``lr``, model and consistency operator: what the fused search's probe is built from)."""
    return _face_candidates(folder, selection)[1]


def _is_plate_row(c: Any) -> bool:
    cells = c.recipe.get("cells")
    return (c.recipe.get("domain") == "plate-char" and isinstance(cells, list) and len(cells) > 0
            and c.image.dim() == 3 and c.image.shape[-1] % len(cells) == 0)


def case_plate_cells(folder: str | Path, selection: str = SHORTLIST, set_id: str | None = None
                     ) -> tuple[list[torch.Tensor], dict[str, Any], dict[str, Any]]:
    """A saved case's plate rows cut back into their cells: per position ``(K, C, h, w)``, what was used,
    and the reading inputs for :func:`core.search.plates.position_probabilities` (each cell's model input,
    cut from the first row's, and ``det`` when no row has a latent), so a case reads as the app reads it.

    The rows are the shortlisted plate rows, every plate row (``selection="all"``) or those of one
    candidate set (``set_id``). Each row holds one candidate per character cell side by side, so
    position ``i`` gets the ``i``-th cell of every row; an identical cell image is counted once.
    """
    data = read_case(folder)
    cands, chosen = _chosen(data, ALL if set_id else selection)
    if set_id is not None:
        sets = {cs.id: cs for cs, _ in data.sets if cs is not None}
        if set_id not in sets:
            raise SearchError(f"case {data.folder.name} has no candidate set {set_id!r} "
                              f"(sets: {', '.join(sets) or 'none'})")
        chosen = [cands[i] for i in sets[set_id].candidate_ids if i in cands]
    rows = [c for c in chosen if _is_plate_row(c)]
    if not rows:
        where = f"in set {set_id}" if set_id else ("shortlisted (star one in the app, or pass --all or --set)"
                                                   if selection == SHORTLIST else "")
        raise SearchError(f"case {data.folder.name} has no plate rows {where}".rstrip())
    lengths = sorted({len(r.recipe["cells"]) for r in rows})
    if len(lengths) > 1:
        raise SearchError(f"the chosen plate rows have {' and '.join(map(str, lengths))} characters: choose the "
                          "rows of one plate with --set")
    n = lengths[0]
    cells: list[list[torch.Tensor]] = [[] for _ in range(n)]
    seen: list[set[str]] = [set() for _ in range(n)]
    for r in rows:
        w = r.image.shape[-1] // n
        for i in range(n):
            part = r.image[:, :, i * w:(i + 1) * w].float().contiguous()
            digest = hashlib.sha256(part.numpy().tobytes()).hexdigest()
            if digest not in seen[i]:
                seen[i].add(digest)
                cells[i].append(part)
    info = {**_case_info(data, f"set {set_id}" if set_id else selection), "set": set_id,
            "rows": [r.id for r in rows], "cells": n, "k": [len(c) for c in cells]}
    inputs: dict[str, Any] = {}
    lr = rows[0].lr
    if lr.dim() == 3 and lr.shape[-1] % n == 0:
        lw = lr.shape[-1] // n
        inputs = {"lrs": [lr[:, :, i * lw:(i + 1) * lw].float() for i in range(n)],
                  "method": "det" if all(r.z is None for r in rows) else "varsr"}
    return [torch.stack(c) for c in cells], info, inputs
