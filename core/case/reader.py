"""Reading a case: the manifest and audit log checked, originals and candidate files loaded (a large case
in part), unsaved work recovered from the autosave, and the result put into a session."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load as st_load

from core.case.audit import GENESIS, AuditCheck, AuditLog, line_hash, verify_lines
from core.case.recorder import Case, clean_details
from core.case.schema import (
    AUDIT,
    AUTOSAVE,
    MANIFEST,
    Original,
    Recovery,
    check_format,
    check_manifest,
    read_json,
    safe_path,
    software,
    utc_time,
)
from core.errors import CaseError, ImageLoadError, VarSRError
from core.images import sha256_file
from core.jsonchecks import strs
from core.workbench.candidates import Candidate, CandidateSet
from core.workbench.evidence import Evidence, Region, load_evidence, region_from_dict
from core.workbench.operators import DEFAULT, operator
from core.workbench.session import Session, ShortlistEntry


def read_recovery(folder: Path, manifest: dict[str, Any], disk_lines: list[str]) -> tuple[Recovery, dict] | None:
    """The autosave beside a case, when there is one, and whether it continues the saved case."""
    path = safe_path(folder, AUTOSAVE)
    if not path.is_file():
        return None
    saved = manifest.get("saved_utc")
    try:
        data = read_json(path, AUTOSAVE)
        check_format(data, AUTOSAVE)
        base, pending, when = dict(data["base"]), list(data["audit_pending"]), str(data["autosaved_utc"])
        if not strs(pending) or not isinstance(data.get("manifest"), dict):
            raise CaseError("its unsaved steps or its manifest are malformed")
    except (CaseError, KeyError, TypeError, ValueError) as e:
        return Recovery(autosaved_utc="?", saved_utc=saved, pending_entries=0, usable=False,
                        why=f"the recovery file is damaged ({e})"), {}
    oldest = dt.datetime.min.replace(tzinfo=dt.UTC)
    newer = (utc_time(when) or oldest) > (utc_time(saved) or oldest)
    n = base.get("audit_entries")
    continues = n == len(disk_lines) and base.get("audit_head") == (line_hash(disk_lines[-1]) if n else GENESIS)
    why = "" if newer and continues else (
        "the case was saved after it" if not newer else "the case's audit log changed after it")
    return Recovery(autosaved_utc=when, saved_utc=saved, pending_entries=len(pending), usable=newer and continues,
                    why=why), data


def _read_set_file(folder: Path, entry: dict[str, Any], warnings: list[str], only: set[str] | None = None
                   ) -> dict[str, torch.Tensor]:
    """The tensors of one candidate set's file: all of them, or only those of the candidates ``only``
    (read one by one from the file: the rest never enter memory). Its SHA-256 is checked either way."""
    name = entry["file"]
    path = safe_path(folder, name)
    if not path.is_file():
        raise CaseError(f"the candidate file {name} is missing from the case")
    try:
        data = path.read_bytes() if only is None else None
        sha = hashlib.sha256(data).hexdigest() if data is not None else sha256_file(path)
        if sha != entry["sha256"]:
            warnings.append(f"the candidate file {name} does not match its recorded SHA-256: "
                            "the candidates' pixels were altered after the save")
        if data is not None:
            return st_load(data)
        out: dict[str, torch.Tensor] = {}
        if only:
            with safe_open(str(path), framework="pt") as f:
                keys = set(f.keys())
                for key in (f"{cid}.{part}" for cid in sorted(only) for part in ("image", "lr", "z")):
                    if key in keys:
                        out[key] = f.get_tensor(key)
        return out
    except (SafetensorError, ValueError, KeyError, OSError) as e:
        raise CaseError(f"the candidate file {name} is not readable ({e.__class__.__name__}: {e})") from e


def _plan_sets(entries: list[dict[str, Any]], max_candidates: int | None) -> tuple[list[dict], list[dict]]:
    """The sets to load and those to leave on disk: the oldest named sets while the sets hold more than
    ``max_candidates`` (the newest always loads whole; ``loose`` always loads), as the session keeps."""
    if max_candidates is None:
        return list(entries), []
    named = [e for e in entries if e["id"] != "loose"]
    total = sum(len(e["candidates"]) for e in named)
    left: set[str] = set()
    for e in named[:-1]:
        if total <= max_candidates:
            break
        left.add(e["id"])
        total -= len(e["candidates"])
    return [e for e in entries if e["id"] not in left], [e for e in entries if e["id"] in left]


def _candidate(cid: str, rec: dict[str, Any], t: dict[str, torch.Tensor]) -> Candidate:
    """A candidate from its record and its tensors, whose shapes must be those of an image and its input."""
    image, lr, z = t.get(f"{cid}.image"), t.get(f"{cid}.lr"), t.get(f"{cid}.z")
    if image is None or lr is None:
        raise CaseError(f"candidate {cid} is listed but its pixels are missing")
    ok = all(x.is_floating_point() and x.dim() == 3 and x.shape[0] in (1, 3) and min(x.shape) >= 1
             for x in (image, lr)) and image.shape[0] == lr.shape[0] and (
        z is None or (z.is_floating_point() and z.dim() == 1))
    if not ok:
        raise CaseError(f"candidate {cid}'s pixels are malformed (image {tuple(image.shape)}, input "
                        f"{tuple(lr.shape)}): the candidate file was altered")
    return Candidate(image=image, lr=lr, z=z, recipe=rec["recipe"], l1=float(rec["l1"]),
                       lr_psnr=float(rec["lr_psnr"]), id=cid, scored_under=str(rec.get("scores_operator") or DEFAULT))


def _next_number(ids: list[str], prefix: str, recorded: int | None) -> int:
    """The next free number for ids ``<prefix><n>``: the recorded one, or past the highest in use."""
    used = [int(m.group(1)) for i in ids if (m := re.fullmatch(re.escape(prefix) + r"(\d{1,9})", i))]
    return max([recorded or 1, *(n + 1 for n in used)])


@dataclass
class CaseData:
    """A case read and checked from disk, not yet put into a session (:meth:`into` cannot fail on bad data)."""

    folder: Path
    manifest: dict[str, Any]
    lines: list[str]
    persisted: int
    check: AuditCheck
    originals: dict[str, Original]
    evidence: Evidence | None
    region: Region | None
    sets: list[tuple[CandidateSet | None, list[Candidate]]]
    shortlist: list[ShortlistEntry]
    recovery: Recovery | None
    recovered: bool
    warnings: list[str] = field(default_factory=list)
    #: Older candidate sets left on disk (``read_case(max_candidates=...)``): their manifest entries, their
    #: candidates' records and their requests, kept by every save of the case.
    archived_sets: list[dict[str, Any]] = field(default_factory=list)
    archived_records: dict[str, dict[str, Any]] = field(default_factory=dict)
    archived_requests: list[dict[str, Any]] = field(default_factory=list)

    def into(self, session: Session, check_originals: bool = True) -> Case:
        """Empty ``session``, fill it from the case (its events announce everything) and bind a :class:`Case`.

        ``check_originals=False`` leaves the hashing of the originals' copies (a clip of gigabytes) to the
        caller (a worker: :func:`core.case.copying.check_files`); the opening's log entry says so."""
        m = self.manifest
        case = Case(self.folder, session, str(m.get("examiner", "")), created_utc=m.get("created_utc"),
                    log=AuditLog(self.lines, persisted=self.persisted))
        case.details = clean_details(m.get("details") or {})  # older cases have none
        case.originals = dict(self.originals)
        case.saved_utc = m.get("saved_utc")
        case.audit_check = self.check
        case.recovery = self.recovery
        case.recovered = self.recovered
        case._muted = True
        try:
            self._fill(session)
        finally:
            case._muted = False
        case.set_times = {e["id"]: e.get("created_utc") or "" for e in m.get("sets", [])}
        for e in m.get("sets", []):
            case._set_files[e["id"]] = (tuple(e["candidates"]), {"file": e["file"], "sha256": e["sha256"]})
        case.retired = dict(m.get("retired") or {})
        case.archived_sets = [dict(e) for e in self.archived_sets]
        case.archived_records = dict(self.archived_records)
        case.archived_requests = list(self.archived_requests)
        searches = m.get("searches") or []  # optional: cases saved before searches were recorded have none
        if not isinstance(searches, list) or not all(isinstance(x, dict) for x in searches):
            self.warnings.append(f"{MANIFEST}: the recorded searches are malformed and were not loaded")
            searches = []
        case.searches = [dict(x) for x in searches]
        case._take_snapshots()
        case.warnings = self.warnings + (case.check_originals() if check_originals else [])
        case._unsaved_from = self.persisted if self.recovered else len(case.log)
        case.record("case_opened", audit=self.check.summary(), problems=self.check.problems, warnings=case.warnings,
                    recovered_from_autosave=self.recovered, software=software(),
                    sets_left_on_disk=[e["id"] for e in self.archived_sets],
                    **({} if check_originals else {"originals_check": "in the background"}))
        if not self.recovered:
            case._unsaved_from = len(case.log)  # opening alone is no change worth saving
        return case

    def _operator(self, name: Any) -> str:
        """The consistency operator the case recorded (none: the box filter, as in older cases)."""
        try:
            return operator(name).name
        except VarSRError:
            self.warnings.append(f"the case scores consistency under {str(name)[:30]!r}, which this version does "
                                 "not know: the box filter is used")
            return DEFAULT

    def _fill(self, session: Session) -> None:
        m = self.manifest
        st = m.get("session") or {}
        cids = [*(m.get("candidates") or {}), *(m.get("retired") or {})]
        # never below an id in use (a tampered count must not make new candidates replace old ones)
        session.restore(evidence=self.evidence, region=self.region, domain=st.get("domain"),
                        n_cells=int(st.get("cells", 1)),
                        cell_bounds=[float(b) for b in st.get("cell_bounds", [])] or None,
                        cell_edges=[float(e) for e in st.get("cell_edges") or []] or None,
                        cell_inverted=bool(st.get("cell_inverted", False)),
                        model_override=st.get("model_override"),
                        consistency_operator=self._operator(st.get("consistency_operator")),
                        sets=self.sets, shortlist=self.shortlist,
                        next_candidate=_next_number(cids, "C", m.get("next_candidate")),
                        next_set=_next_number([e["id"] for e in m.get("sets", [])], "S", m.get("next_set")))


def read_case(folder: str | Path, *, recover: bool = False, max_candidates: int | None = None) -> CaseData:
    """Read and check a case folder without touching any session; :class:`CaseError` when it cannot be used.

    ``recover=True`` takes the unsaved work of ``case.autosave.json`` (offered as ``.recovery``).
    ``max_candidates`` bounds the memory a large case takes, as :class:`core.workbench.session.Session` bounds its
    history: while the candidate sets hold more than that, the oldest sets are left on disk (the newest
    always loads whole; shortlisted candidates always load, read one by one from their set's file).
    What is left on disk stays in the case (:attr:`CaseData.archived_sets`): every save keeps it. None
    (the default, for the command-line tools) loads every candidate.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise CaseError(f"{folder}: no such case folder")
    try:
        return _read_case(folder, recover, max_candidates)
    except CaseError as e:  # every refusal names the case
        if str(e).startswith(f"{folder.name}:") or str(folder) in str(e):
            raise
        raise CaseError(f"{folder.name}: {e}") from e


def _read_case(folder: Path, recover: bool, max_candidates: int | None) -> CaseData:
    manifest = read_json(safe_path(folder, MANIFEST), MANIFEST)
    check_format(manifest, MANIFEST)
    check_manifest(manifest, MANIFEST)
    disk_lines = AuditLog.read_lines(safe_path(folder, AUDIT))
    found = read_recovery(folder, manifest, disk_lines)
    recovery = found[0] if found else None
    lines = list(disk_lines)
    audit = manifest.get("audit") or {}
    expected_count, expected_head = audit.get("entries"), audit.get("head_sha256")
    if recover:
        if found is None or not found[0].usable:
            raise CaseError("there is no usable unsaved work to recover" + (f": {recovery.why}" if recovery else ""))
        manifest = found[1]["manifest"]
        check_format(manifest, AUTOSAVE)
        check_manifest(manifest, AUTOSAVE)
        lines += [str(x) for x in found[1]["audit_pending"]]
        expected_count, expected_head = len(lines), None
    if not isinstance(expected_count, int):
        raise CaseError(f"{MANIFEST} does not record its audit log")
    check = verify_lines(lines, expected_count, expected_head)
    warnings: list[str] = []
    originals: dict[str, Original] = {}
    for d in manifest.get("originals", []):
        if not isinstance(d, dict):
            raise CaseError(f"{MANIFEST} is malformed: an original's record is not an object")
        o = Original.from_dict(d)
        safe_path(folder, o.file)
        originals[o.sha256] = o
    recs = manifest.get("candidates") or {}
    entries = manifest.get("sets", [])
    for entry in entries:
        for cid in entry["candidates"]:
            if cid not in recs:
                raise CaseError(f"candidate {cid[:20]} is listed but its record is missing from {MANIFEST}")
    shortlisted = list(dict.fromkeys(e["candidate"] for e in manifest.get("shortlist", []) if e["candidate"] in recs))
    notes = {e["candidate"]: e.get("note", "") for e in manifest.get("shortlist", [])}
    load, leave = _plan_sets(entries, max_candidates)
    st = manifest.get("session") or {}
    evidence = None
    if st.get("evidence_sha256"):
        o = originals.get(st["evidence_sha256"])
        if o is None:
            raise CaseError("the case's evidence is not among its originals")
        try:
            evidence = load_evidence(safe_path(folder, o.file))  # read as the app reads any evidence
        except ImageLoadError as e:
            raise CaseError(f"the case's copy of the evidence cannot be read: {e}") from e
        evidence.source = o.source
    sets: list[tuple[CandidateSet | None, list[Candidate]]] = []
    for entry in load:
        t = _read_set_file(folder, entry, warnings)
        cands = [_candidate(cid, recs[cid], t) for cid in entry["candidates"]]
        del t
        cs = None if entry["id"] == "loose" else CandidateSet(
            id=entry["id"], title=entry.get("title") or "", candidate_ids=list(entry["candidates"]))
        sets.append((cs, cands))
    pinned = set(shortlisted)
    kept = []  # shortlisted candidates of the sets left on disk
    for entry in leave:
        wanted = {cid for cid in entry["candidates"] if cid in pinned}
        t = _read_set_file(folder, entry, warnings, wanted)
        kept += [_candidate(cid, recs[cid], t) for cid in entry["candidates"] if cid in wanted]
    if kept:
        sets.append((None, kept))
    in_memory = {c.id for _, cands in sets for c in cands}
    for cid in shortlisted:
        if cid not in in_memory:
            warnings.append(f"the shortlisted candidate {cid[:20]} is in no candidate set of the case: it was left "
                            "out of the shortlist")
    shortlist = [ShortlistEntry(cid, notes.get(cid, "")) for cid in shortlisted if cid in in_memory]
    left_ids = {e["id"] for e in leave}
    return CaseData(folder=folder, manifest=manifest, lines=lines, persisted=len(disk_lines), check=check,
                    originals=originals, evidence=evidence, region=region_from_dict(st.get("region")), sets=sets,
                    shortlist=shortlist, recovery=None if recover else recovery, recovered=recover,
                    warnings=warnings, archived_sets=leave,
                    archived_records={cid: recs[cid] for e in leave for cid in e["candidates"]},
                    archived_requests=[r for r in manifest.get("requests") or []
                                       if isinstance(r, dict) and isinstance(r.get("set"), str)
                                       and r["set"] in left_ids])


def open_case(folder: str | Path, session: Session | None = None, *, recover: bool = False,
              models_root: str | Path | None = None, max_candidates: int | None = None) -> Case:
    """Open a case into ``session`` (a new one by default), verifying its audit log and originals.

    Problems found do not stop the opening: they are in ``case.audit_check`` and ``case.warnings``
    (and logged). A malformed manifest, a newer format or a path leading outside the folder raise
    :class:`CaseError`, before the session is touched. ``max_candidates``: see :func:`read_case`.
    """
    data = read_case(folder, recover=recover, max_candidates=max_candidates)
    return data.into(session if session is not None else Session(models_root))

