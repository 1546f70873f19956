"""Case files: one folder holding what another examiner needs to audit and reproduce the work.

Layout (every path the manifest stores is relative to the case folder)::

    CASE/
      case.json            the manifest, written last: the commit point of every save
      audit.jsonl          the hash-chained, append-only audit log (core.audit)
      originals/           byte-identical, read-only copies of the evidence and reference images
      candidates/          one safetensors file per candidate set (images, inputs, latents), named by content
      case.autosave.json   unsaved work for crash recovery; removed by the next save

The manifest records each original's SHA-256, the crop / alignment / cell geometry, the models
(name and weights SHA-256), the software versions, every generation request, each candidate's
recipe, the shortlist with notes, the examiner and the times (UTC). Nothing is unpickled: JSON,
PNG/JPEG originals and safetensors only. A save writes new files first and the manifest last, each
through :func:`core.fileio.atomic_write`, so an interrupted save leaves the previous case intact.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import math
import os
import platform
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from core import session as S
from core.audit import GENESIS, AuditCheck, AuditLog, line_hash, utc_now, verify_lines
from core.errors import CaseError, ImageLoadError
from core.export import NOTICE
from core.fileio import atomic_write
from core.images import load_image, sha256_file

FORMAT = "varsr-case"
FORMAT_VERSION = 1
MANIFEST = "case.json"
AUDIT = "audit.jsonl"
AUTOSAVE = "case.autosave.json"
ORIGINALS = "originals"
CANDIDATES = "candidates"
#: The most character cells a case may record (the app offers 1 to 12).
MAX_CELLS = 64


# -- paths -----------------------------------------------------------------------------------------
def safe_path(root: Path, rel: Any) -> Path:
    """``root / rel`` for a relative path inside ``root``; :class:`CaseError` for ``..``, an absolute
    path, or a link that resolves outside the case folder."""
    if not isinstance(rel, str) or not rel.strip():
        raise CaseError(f"the case refers to a file by an invalid path: {rel!r}")
    posix, win = PurePosixPath(rel), PureWindowsPath(rel)
    if posix.is_absolute() or win.is_absolute() or win.drive or rel.startswith(("/", "\\")):
        raise CaseError(f"the case refers to an absolute path ({rel}): a case may only use files inside its folder")
    if ".." in posix.parts or ".." in win.parts:
        raise CaseError(f"the case refers to {rel}, outside its folder ('..'): refused")
    full = root / posix
    base = root.resolve()
    if not full.resolve().is_relative_to(base):
        raise CaseError(f"{rel} in the case is a link that leads outside the case folder: refused")
    return full


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _ints(v: Any) -> bool:
    return isinstance(v, list) and all(_is_int(x) for x in v)


def _nums(v: Any) -> bool:
    return isinstance(v, list) and all(_is_num(x) for x in v)


def _strs(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def _portable(obj: Any) -> Any:
    """A deep copy with every ``"path"`` value reduced to its file name (no paths of this machine)."""
    if isinstance(obj, dict):
        return {k: (Path(v).name if k == "path" and isinstance(v, str) else _portable(v)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_portable(v) for v in obj]
    return obj


def _safe_name(name: str) -> str:
    """A short, harmless file suffix from a received file name (``.png``)."""
    suffix = Path(name).suffix.lower()
    return suffix if re.fullmatch(r"\.[a-z0-9]{1,5}", suffix) else ""


def _json_text(data: Any) -> str:
    return json.dumps(data, indent=1, ensure_ascii=False, allow_nan=False) + "\n"


def _finite(text: str) -> float:
    v = float(text)
    if not math.isfinite(v):
        raise ValueError(f"the number {text[:20]} is out of range")
    return v


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _read_json(path: Path, what: str) -> dict[str, Any]:
    """A JSON object from ``path``; :class:`CaseError` when missing, unreadable, not UTF-8, not strict JSON
    (NaN, infinities and numbers out of range are refused: a save could not write them back) or nested
    too deep."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"), parse_float=_finite, parse_constant=_no_constant)
    except FileNotFoundError as e:
        raise CaseError(f"{path.parent.name}: no {path.name}: not a case folder") from e
    except (OSError, ValueError, RecursionError) as e:  # ValueError: UnicodeDecodeError, JSONDecodeError, ...
        raise CaseError(f"{what} is not readable JSON ({e.__class__.__name__}): the case is damaged") from e
    if not isinstance(data, dict):
        raise CaseError(f"{what} is not a case manifest")
    return data


def software() -> dict[str, Any]:
    """The versions and machine a save (or a regeneration) ran on."""
    import core

    return {"varsr_studio": core.__version__, "core": core.__version__, "torch": torch.__version__,
            "python": platform.python_version(), "platform": platform.platform(), "machine": platform.machine(),
            "torch_threads": torch.get_num_threads()}


def _utc_time(text: str | None) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(text) if text else None
    except ValueError:
        return None


# -- the parts of a case ---------------------------------------------------------------------------
@dataclass
class Original:
    """A byte-identical copy of a received image inside the case."""

    sha256: str
    file: str
    name: str
    role: str
    source: str
    size_bytes: int
    image_size: list[int] | None
    added_utc: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @staticmethod
    def from_dict(d: dict[str, Any]) -> Original:
        try:
            o = Original(**{k: d[k] for k in Original.__dataclass_fields__})
        except (KeyError, TypeError) as e:
            raise CaseError(f"an original's record is incomplete ({e})") from e
        if not (all(isinstance(getattr(o, k), str) for k in ("sha256", "file", "name", "role", "source", "added_utc"))
                and _is_int(o.size_bytes) and (o.image_size is None or _ints(o.image_size))):
            raise CaseError(f"{MANIFEST} is malformed: an original's record has a value of the wrong type")
        return o


@dataclass
class Recovery:
    """Unsaved work found beside a case (``case.autosave.json``)."""

    autosaved_utc: str
    saved_utc: str | None
    pending_entries: int
    usable: bool
    why: str = ""


#: The shape of each kind of region's coordinates: ``box`` 4 numbers, ``eyes`` 2 points, ``quad`` 4 points.
_REGION_SHAPES = {"box": (4,), "eyes": (2, 2), "quad": (4, 2)}


def region_from_dict(d: dict[str, Any] | None) -> S.Region | None:
    """The :class:`Region` a manifest or a recipe recorded (None for the whole image); :class:`CaseError`
    for an unknown kind or coordinates that are not finite numbers of the kind's shape."""
    if not d:
        return None
    if not isinstance(d, dict):
        raise CaseError(f"a recorded region is not an object: {str(d)[:40]!r}")
    kind = d.get("kind")
    if kind in (None, "whole image"):
        return None
    if kind not in _REGION_SHAPES:
        raise CaseError(f"a recorded region is of an unknown kind: {str(kind)[:40]!r}")

    def tup(v: Any, shape: tuple[int, ...]) -> Any:
        if not shape:
            if not _is_num(v):
                raise CaseError(f"a recorded {kind} region has an invalid coordinate: {str(v)[:40]!r}")
            return float(v)
        if not isinstance(v, list) or len(v) != shape[0]:
            raise CaseError(f"a recorded {kind} region does not have its {kind}'s coordinates")
        return tuple(tup(x, shape[1:]) for x in v)

    return S.Region(str(kind), **{kind: tup(d.get(kind), _REGION_SHAPES[kind])})


def request_of(cset: S.CandidateSet, cands: dict[str, S.Candidate]) -> dict[str, Any]:
    """What was asked for to make a set: the generation request, from its first candidate's recipe."""
    ids = cset.candidate_ids
    r = cands[ids[0]].recipe if ids else {}
    first = r.get("cells", [r])[0] if r.get("kind") == "row" else r
    out: dict[str, Any] = {"set": cset.id, "title": cset.title, "kind": r.get("kind"), "model": r.get("model"),
                           "weights_sha256": r.get("weights_sha256"), "n": len(ids), "candidates": list(ids)}
    for key in ("seed", "temperature", "sliders", "parent", "reference_sha256", "attribute_scale", "method"):
        if first.get(key) not in (None, {}, ""):
            out[key] = first[key]
    if r.get("kind") == "row":
        out["cells"] = len(r.get("cells", []))
    src = r.get("source") or {}
    ev = src.get("evidence") or {}
    if ev.get("sha256"):
        out["evidence_sha256"] = ev["sha256"]
    if src.get("region"):
        out["region"] = src["region"]
    return out


# -- the case ----------------------------------------------------------------------------------------
class Case:
    """A :class:`core.session.Session` bound to a case folder, with its audit log.

    The case listens to the session's events and logs each step (evidence, region, settings,
    generations, shortlist); :meth:`record` logs anything else (exports, reports, verification).
    Use :meth:`create` or :func:`open_case`; :meth:`save` and :meth:`autosave` write it.
    """

    def __init__(self, folder: str | Path, session: S.Session, examiner: str, *, created_utc: str | None = None,
                 log: AuditLog | None = None) -> None:
        self.folder = Path(folder)
        self.session = session
        self.examiner = examiner.strip() or "unnamed examiner"
        self.created_utc = created_utc or utc_now()
        self.saved_utc: str | None = None
        self.log = log if log is not None else AuditLog()
        self.originals: dict[str, Original] = {}
        self.set_times: dict[str, str] = {}
        self.audit_check: AuditCheck | None = None
        self.warnings: list[str] = []
        self.recovery: Recovery | None = None
        self.recovered = False
        #: Recipes of candidates the session dropped to bound its memory (still parents of kept ones).
        self.retired: dict[str, dict[str, Any]] = {}
        #: Candidate sets kept in the case's files but not in memory (left on disk when the case was opened,
        #: or dropped by the session after they were saved): their manifest entries, their candidates'
        #: records and their requests, written back unchanged by every save.
        self.archived_sets: list[dict[str, Any]] = []
        self.archived_records: dict[str, dict[str, Any]] = {}
        self.archived_requests: list[dict[str, Any]] = []
        #: Database searches run with this case's candidates (query and ranked hits; :meth:`record_search`).
        self.searches: list[dict[str, Any]] = []
        self._set_files: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = {}
        self._muted = False
        self._unsaved_from = len(self.log)
        self._autosaved_len = 0
        self._snap_settings: dict[str, Any] = {}
        self._snap_shortlist: list[str] = []
        self._snap_notes: dict[str, str] = {}
        self._take_snapshots()
        ev = session.events
        ev.evidence_changed.connect(self._on_evidence)
        ev.region_changed.connect(self._on_region)
        ev.settings_changed.connect(self._on_settings)
        ev.candidates_added.connect(self._on_set_added)
        ev.shortlist_changed.connect(self._on_shortlist)
        ev.sets_dropped.connect(self._on_sets_dropped)

    # -- creating ------------------------------------------------------------------------------
    @classmethod
    def create(cls, folder: str | Path, session: S.Session, examiner: str) -> Case:
        """A new case in ``folder`` (new or empty), adopting what the session already holds; saved at once."""
        folder = Path(folder)
        if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
            raise CaseError(f"{folder} already exists and is not empty: choose a new folder for the case")
        folder.mkdir(parents=True, exist_ok=True)
        case = cls(folder, session, examiner)
        case.record("case_created", examiner=case.examiner, software=software(), format_version=FORMAT_VERSION)
        if session.evidence is not None or session.candidates:
            case.record("work_adopted", note="done in this session before the case was created",
                        evidence_sha256=session.evidence.sha256 if session.evidence else None,
                        region=session.region.to_dict() if session.region else {"kind": "whole image"},
                        requests=[request_of(s, session.candidates) for s in session.sets],
                        shortlist=[e.candidate_id for e in session.shortlist])
        case._take_snapshots()
        case.save()
        return case

    def detach(self) -> None:
        """Stop listening to the session (before another case takes it over)."""
        ev = self.session.events
        ev.evidence_changed.disconnect(self._on_evidence)
        ev.region_changed.disconnect(self._on_region)
        ev.settings_changed.disconnect(self._on_settings)
        ev.candidates_added.disconnect(self._on_set_added)
        ev.shortlist_changed.disconnect(self._on_shortlist)
        ev.sets_dropped.disconnect(self._on_sets_dropped)

    @property
    def name(self) -> str:
        return self.folder.name

    # -- the log -------------------------------------------------------------------------------
    def record(self, action: str, **details: Any) -> dict[str, Any]:
        """Append one step to the audit log (persisted by the next save; kept by autosave)."""
        return self.log.append(action, json.loads(json.dumps(_portable(details), allow_nan=False)), self.examiner)

    def record_search(self, entry: dict[str, Any]) -> dict[str, Any]:
        """Keep a face or plate search in the case (manifest ``searches``) and log it (``search_run``).

        ``entry``: a record from :mod:`core.search.case_search` (query and ranked hits); it gets an
        id (``search-N``) and the time. Returns the record as kept.
        """
        n = 1 + max((int(m.group(1)) for s in self.searches
                     if (m := re.fullmatch(r"search-(\d+)", str(s.get("id", ""))))), default=0)
        rec = json.loads(json.dumps({"id": f"search-{n}", "utc": utc_now(), **_portable(entry)}, allow_nan=False))
        self.searches.append(rec)
        self.record("search_run", **rec)
        return rec

    def _settings(self) -> dict[str, Any]:
        s = self.session
        return {"domain": s.domain, "cells": s.n_cells, "cell_bounds": [float(b) for b in s.cell_bounds],
                "model_override": s.model_override}

    def _take_snapshots(self) -> None:
        s = self.session
        self._snap_settings = self._settings()
        self._snap_shortlist = [e.candidate_id for e in s.shortlist]
        self._snap_notes = {e.candidate_id: e.note for e in s.shortlist}

    def _on_evidence(self, ev: S.Evidence) -> None:
        if self._muted:
            return
        self.record("evidence_loaded", sha256=ev.sha256, name=ev.label, source=ev.source,
                    image_size=list(ev.image.size))
        try:
            self._ensure_original(ev.sha256, "evidence", ev.label, ev.source, ev.path, ev)
        except (OSError, CaseError) as e:
            self.warnings.append(f"the evidence could not be copied into the case yet: {e}")

    def _on_region(self, region: S.Region | None) -> None:
        if not self._muted:
            self.record("region_set", region=region.to_dict() if region else {"kind": "whole image"})

    def _on_settings(self) -> None:
        if self._muted:
            return
        now = self._settings()
        if now != self._snap_settings:
            self.record("settings_changed", **now)
            self._snap_settings = now

    def _on_set_added(self, cset: S.CandidateSet) -> None:
        self.set_times.setdefault(cset.id, utc_now())
        if self._muted:
            return
        req = request_of(cset, self.session.candidates)
        self.record("candidates_generated", **req, torch_threads=torch.get_num_threads())
        for cid in cset.candidate_ids:
            r = self.session.candidates[cid].recipe
            ref = (r.get("source") or {}).get("reference")
            if r.get("kind") == "reference" and ref:
                try:
                    self._ensure_original(r["reference_sha256"], "reference", ref.get("path") or "reference",
                                          "file", Path(ref["path"]) if ref.get("path") else None, None)
                except (OSError, CaseError, KeyError) as e:
                    self.warnings.append(f"the reference image could not be copied into the case: {e}")

    def _on_shortlist(self) -> None:
        if self._muted:
            return
        now = [e.candidate_id for e in self.session.shortlist]
        added = [c for c in now if c not in self._snap_shortlist]
        removed = [c for c in self._snap_shortlist if c not in now]
        if added or removed or now != self._snap_shortlist:
            self.record("shortlist_changed", starred=added, unstarred=removed, order=now)
        self._snap_shortlist = now

    def _on_sets_dropped(self, sets: list[S.CandidateSet], freed: list[S.Candidate]) -> None:
        for c in freed:
            self.retired[c.id] = _portable(c.recipe)
        by_id = {**self.session.candidates, **{c.id: c for c in freed}}
        on_disk = []
        for cs in sets:  # a set already in the case's files stays in the case, pixels and all
            cached = self._set_files.get(cs.id)
            if cached is None or cached[0] != tuple(cs.candidate_ids) or not all(i in by_id for i in cs.candidate_ids):
                continue
            on_disk.append(cs.id)
            self.archived_sets.append({"id": cs.id, "title": cs.title, "candidates": list(cs.candidate_ids),
                                       "created_utc": self.set_times.get(cs.id), **cached[1]})
            for cid in cs.candidate_ids:
                c = by_id[cid]
                self.archived_records[cid] = {"recipe": _portable(c.recipe), "l1": c.l1, "lr_psnr": c.lr_psnr}
            self.archived_requests.append({**request_of(cs, by_id), "created_utc": self.set_times.get(cs.id)})
        if not self._muted:
            self.record("sets_dropped", sets=[cs.id for cs in sets], candidates=[c.id for c in freed],
                        kept_in_case_files=on_disk,
                        why="the oldest sets were dropped from memory; their recipes stay in the case")

    def sync_notes(self) -> None:
        """Log every shortlist note that changed since it was last logged."""
        notes = {e.candidate_id: e.note for e in self.session.shortlist}
        for cid, note in notes.items():
            if self._snap_notes.get(cid, "") != note:
                self.record("note_set", candidate=cid, note=note)
        self._snap_notes = notes

    def log_check(self) -> AuditCheck:
        """The log as it stands: the problems found on disk when the case was opened, else the chain in memory."""
        if self.audit_check is not None and not self.audit_check.ok:
            return self.audit_check
        return verify_lines(self.log.lines)

    def has_unsaved_changes(self) -> bool:
        self.sync_notes()
        return len(self.log) > self._unsaved_from

    def needs_autosave(self) -> bool:
        return self.has_unsaved_changes() and len(self.log) > self._autosaved_len

    # -- originals -------------------------------------------------------------------------------
    def _ensure_original(self, sha: str, role: str, name: str, source: str, path: Path | None,
                         ev: S.Evidence | None) -> Original | None:
        """Copy an original into ``originals/`` (once); the copy's hash must be the recorded one."""
        have = self.originals.get(sha)
        if have is not None and (self.folder / have.file).is_file():
            return have
        if not self.folder.is_dir():
            return None
        rel = f"{ORIGINALS}/{sha[:16]}{_safe_name(name)}"
        target = self.folder / rel
        target.parent.mkdir(exist_ok=True)
        if target.is_file() and sha256_file(target) == sha:
            pass
        elif path is not None and Path(path).is_file():
            if sha256_file(path) != sha:
                raise CaseError(f"{Path(path).name} on disk no longer matches the SHA-256 recorded when it was "
                                "loaded: it was changed; its copy was not taken")
            data = Path(path).read_bytes()
            atomic_write(target, lambda p: p.write_bytes(data))
        elif ev is not None and ev.path is None:
            buf = io.BytesIO()
            ev.image.save(buf, "PNG")  # the encoding the pasted image's hash was taken of
            data = buf.getvalue()
            if hashlib.sha256(data).hexdigest() != sha:
                raise CaseError("the pasted image's PNG encoding no longer matches its recorded hash")
            atomic_write(target, lambda p: p.write_bytes(data))
        else:
            raise CaseError(f"{name}: the original file is not available to copy into the case")
        os.chmod(target, 0o444)
        try:
            size: list[int] | None = list(load_image(target).size)
        except ImageLoadError:
            size = None
        o = Original(sha256=sha, file=rel, name=Path(name).name, role=role, source=source,
                     size_bytes=target.stat().st_size, image_size=size, added_utc=utc_now())
        self.originals[sha] = o
        self.record("original_copied", sha256=sha, file=rel, name=o.name, role=role, size_bytes=o.size_bytes)
        return o

    def _collect_originals(self) -> None:
        """Make sure the evidence and every reference the candidates used are in the case."""
        ev = self.session.evidence
        if ev is not None and ev.sha256 not in self.originals:
            try:
                self._ensure_original(ev.sha256, "evidence", ev.label, ev.source, ev.path, ev)
            except CaseError as e:
                self._warn_once(str(e))
        for c in self.session.candidates.values():
            src = c.recipe.get("source") or {}
            for role, info, sha in (("evidence", src.get("evidence"), (src.get("evidence") or {}).get("sha256")),
                                    ("reference", src.get("reference"), c.recipe.get("reference_sha256"))):
                if not sha or sha in self.originals or not info:
                    continue
                p = Path(info["path"]) if info.get("path") else None
                try:
                    self._ensure_original(sha, role, info.get("path") or role, info.get("source", "file"),
                                          p if p is not None and p.is_absolute() else None, None)
                except CaseError as e:
                    self._warn_once(f"{role} {sha[:12]}: {e}")

    def _warn_once(self, text: str) -> None:
        if text not in self.warnings:
            self.warnings.append(text)
            self.record("warning", text=text)

    def check_originals(self) -> list[str]:
        """One line per original whose copy in the case is missing or no longer matches its SHA-256."""
        out = []
        for o in self.originals.values():
            try:
                p = safe_path(self.folder, o.file)
            except CaseError as e:
                out.append(str(e))
                continue
            if not p.is_file():
                out.append(f"the original {o.name} ({o.file}) is missing from the case")
            elif sha256_file(p) != o.sha256:
                out.append(f"the original {o.name} ({o.file}) no longer matches its SHA-256 {o.sha256[:16]}\u2026: "
                           "it was changed on disk")
        ev = self.session.evidence
        if ev is not None and ev.path is not None and ev.path.is_file() and sha256_file(ev.path) != ev.sha256:
            line = f"the evidence file {ev.path.name} no longer matches the SHA-256 recorded when it was loaded"
            if line not in out:
                out.append(line)
        return out

    def original_path(self, sha: str) -> Path:
        o = self.originals.get(sha)
        if o is None:
            raise CaseError(f"the original {sha[:16]}\u2026 is not in the case")
        return safe_path(self.folder, o.file)

    # -- candidate files -------------------------------------------------------------------------
    def _groups(self) -> list[tuple[str, str, list[str]]]:
        s = self.session
        groups = [(cs.id, cs.title, list(cs.candidate_ids)) for cs in s.sets]
        in_sets = {cid for cs in s.sets for cid in cs.candidate_ids} | set(self.archived_records)
        loose = [cid for cid in s.candidates if cid not in in_sets]
        if loose:
            groups.append(("loose", "candidates outside any set", loose))
        return groups

    def _write_sets(self) -> list[dict[str, Any]]:
        """Write each candidate set's tensors once (named by content; existing files are kept)."""
        out = []
        (self.folder / CANDIDATES).mkdir(exist_ok=True)
        for sid, title, ids in self._groups():
            cached = self._set_files.get(sid)
            if cached is None or cached[0] != tuple(ids):
                tensors: dict[str, torch.Tensor] = {}
                for cid in ids:
                    c = self.session.candidates[cid]
                    tensors[f"{cid}.image"] = c.image.detach().float().cpu().clone().contiguous()
                    tensors[f"{cid}.lr"] = c.lr.detach().float().cpu().clone().contiguous()
                    if c.z is not None:
                        tensors[f"{cid}.z"] = c.z.detach().float().cpu().clone().contiguous()
                data = st_save(tensors, metadata={"notice": NOTICE, "set": sid})
                sha = hashlib.sha256(data).hexdigest()
                rel = f"{CANDIDATES}/{sid}-{sha[:16]}.safetensors"
                target = self.folder / rel
                if not (target.is_file() and sha256_file(target) == sha):
                    atomic_write(target, lambda p, d=data: p.write_bytes(d))
                cached = (tuple(ids), {"file": rel, "sha256": sha})
                self._set_files[sid] = cached
            out.append({"id": sid, "title": title, "candidates": ids, "created_utc": self.set_times.get(sid),
                        **cached[1]})
        return out

    # -- the manifest ----------------------------------------------------------------------------
    def _models(self) -> list[dict[str, Any]]:
        seen: dict[tuple[str, str], dict[str, Any]] = {}
        recipes = [c.recipe for c in self.session.candidates.values()] + [
            rec["recipe"] for cid, rec in self.archived_records.items() if cid not in self.session.candidates]
        for r in recipes:
            key = (str(r.get("model")), str(r.get("weights_sha256")))
            if key in seen:
                continue
            cfg = self.session.installed.get(key[0])
            seen[key] = {"name": key[0], "weights_sha256": r.get("weights_sha256"), "domain": r.get("domain"),
                         "lr_size": r.get("lr_size"), "hr_size": r.get("hr_size"), "scale": r.get("scale"),
                         "latent_dim": cfg.latent_dim if cfg else None}
        return list(seen.values())

    def manifest(self, sets: list[dict[str, Any]], saved_utc: str, audit_count: int) -> dict[str, Any]:
        s = self.session
        return {
            "format": FORMAT, "format_version": FORMAT_VERSION, "notice": NOTICE,
            "examiner": self.examiner, "created_utc": self.created_utc, "saved_utc": saved_utc,
            "software": software(),
            "originals": [o.to_dict() for o in self.originals.values()],
            "session": {"evidence_sha256": s.evidence.sha256 if s.evidence else None,
                        "region": s.region.to_dict() if s.region else None, **self._settings()},
            "models": self._models(),
            "requests": self.archived_requests + [{**request_of(cs, s.candidates),
                                                   "created_utc": self.set_times.get(cs.id)} for cs in s.sets],
            "sets": self.archived_sets + sets,
            "candidates": {**{cid: rec for cid, rec in self.archived_records.items() if cid not in s.candidates},
                           **{cid: {"recipe": _portable(c.recipe), "l1": c.l1, "lr_psnr": c.lr_psnr}
                              for cid, c in s.candidates.items()}},
            "shortlist": [{"candidate": e.candidate_id, "note": e.note} for e in s.shortlist],
            "retired": self.retired,
            "next_candidate": s.next_candidate_number,
            "next_set": s.next_set_number,
            "searches": self.searches,
            "audit": {"file": AUDIT, "entries": audit_count, "head_sha256": self.log.head_at(audit_count)},
        }

    def save(self) -> None:
        """Write the case: new originals and candidate files, then the log, then the manifest (atomic each)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.sync_notes()
        self._collect_originals()
        sets = self._write_sets()
        now = utc_now()
        before = len(self.log)
        self.record("case_saved", candidates=len(self.session.candidates), shortlist=len(self.session.shortlist),
                    originals=len(self.originals))
        try:
            self.log.write(self.folder / AUDIT)
        except BaseException:
            del self.log.lines[before:]  # never written: the save did not happen
            raise
        manifest = self.manifest(sets, now, len(self.log))
        text = _json_text(manifest)
        atomic_write(self.folder / MANIFEST, lambda p: p.write_text(text, encoding="utf-8"))
        self.saved_utc = now
        self._unsaved_from = len(self.log)
        (self.folder / AUTOSAVE).unlink(missing_ok=True)
        self.recovery = None

    def autosave(self) -> Path:
        """Write unsaved work to ``case.autosave.json`` (and any new candidate files); the case itself is unchanged."""
        self.sync_notes()
        self._collect_originals()
        sets = self._write_sets()
        now = utc_now()
        base = self.log.persisted
        payload = {"format": FORMAT, "format_version": FORMAT_VERSION, "autosaved_utc": now,
                   "base": {"saved_utc": self.saved_utc, "audit_entries": base, "audit_head": self.log.head_at(base)},
                   "manifest": self.manifest(sets, self.saved_utc or now, len(self.log)),
                   "audit_pending": self.log.lines[base:]}
        text = _json_text(payload)
        atomic_write(self.folder / AUTOSAVE, lambda p: p.write_text(text, encoding="utf-8"))
        self._autosaved_len = len(self.log)
        return self.folder / AUTOSAVE


# -- opening -----------------------------------------------------------------------------------------
def _check_format(data: dict[str, Any], what: str) -> None:
    if data.get("format") != FORMAT:
        raise CaseError(f"{what} is not a VarSR Studio case (format {str(data.get('format'))[:40]!r})")
    v = data.get("format_version")
    if not _is_int(v) or v < 1:
        raise CaseError(f"{what} has no valid format version ({str(v)[:20]!r})")
    if v > FORMAT_VERSION:
        raise CaseError(f"this case was written by a newer VarSR Studio (case format {v}; this version reads up to "
                        f"{FORMAT_VERSION}): open it with a newer version")


def _is_str(v: Any) -> bool:
    return isinstance(v, str)


def _is_dict(v: Any) -> bool:
    return isinstance(v, dict)


def _file_ref(v: Any) -> bool:
    """An image a recipe's source names (the evidence, a reference)."""
    return isinstance(v, dict) and all(v.get(k) is None or isinstance(v[k], str) for k in ("sha256", "path", "source"))


def _cells_info(v: Any) -> bool:
    return isinstance(v, dict) and (v.get("n") is None or _is_int(v["n"])) and (v.get("bounds") is None
                                                                              or _nums(v["bounds"]))


#: What each recipe field this program reads must be (``None`` is always allowed; other fields are kept as
#: they are). A recipe with any other value is refused when the case is opened, not when it is used.
_RECIPE_FIELDS: dict[str, Any] = {
    "kind": _is_str, "model": _is_str, "weights_sha256": _is_str, "domain": _is_str, "parent": _is_str,
    "method": _is_str, "reference_sha256": _is_str, "id": _is_str, "seed": _is_int, "index": _is_int,
    "n": _is_int, "chunk": _is_int, "scale": _is_int, "cell": _is_int, "temperature": _is_num,
    "attribute_scale": _is_num, "consistency_l1_0_255": _is_num, "lr_psnr_db": _is_num,
    "sliders": lambda v: isinstance(v, dict) and all(_is_num(x) for x in v.values()),
    "choices": _ints, "lr_size": _ints, "hr_size": _ints, "z": _nums, "cells": lambda v: isinstance(v, list),
    "source": _is_dict, "reference_alignment": _is_dict, "parent_scores": _is_dict, "change_0_255": _is_dict,
}
_SOURCE_FIELDS: dict[str, Any] = {"evidence": _file_ref, "reference": _file_ref, "cells": _cells_info,
                                  "cell": _is_int, "crop_size": _ints, "notes": _strs, "region": _is_dict}


def _check_fields(d: dict[str, Any], fields: dict[str, Any], where: str) -> None:
    for key, ok in fields.items():
        v = d.get(key)
        if v is not None and not ok(v):
            raise CaseError(f"{MANIFEST} is malformed: {where} has an invalid '{key}' ({str(v)[:40]!r})")


def _check_recipe(r: Any, where: str, cell: bool = False) -> None:
    """Refuse a recipe whose fields are not of the types this program writes (so nothing fails later)."""
    if not isinstance(r, dict):
        raise CaseError(f"{MANIFEST} is malformed: {where} has no recipe")
    _check_fields(r, _RECIPE_FIELDS, where)
    src = r.get("source")
    if src is not None:
        _check_fields(src, _SOURCE_FIELDS, f"{where}'s source")
        region_from_dict(src.get("region"))
    if r.get("kind") == "row" and not cell:
        cells = r.get("cells")
        if not cells or not all(isinstance(c, dict) for c in cells):
            raise CaseError(f"{MANIFEST} is malformed: {where} is a row without its cells")
        for i, c in enumerate(cells):
            _check_recipe(c, f"{where} (cell {i + 1})", cell=True)


def _check_manifest(m: dict[str, Any], what: str) -> None:
    """Refuse a manifest (or an autosave's) whose parts are not of the types this program writes."""

    def need(ok: bool, part: str) -> None:
        if not ok:
            raise CaseError(f"{what} is malformed: {part}")

    for key in ("examiner", "created_utc", "saved_utc"):
        need(m.get(key) is None or isinstance(m[key], str), f"'{key}' is not text")
    need(isinstance(m.get("originals", []), list), "'originals' is not a list")
    st = m.get("session")
    need(st is None or isinstance(st, dict), "'session' is not an object")
    st = st or {}
    need(st.get("evidence_sha256") is None or isinstance(st["evidence_sha256"], str), "the evidence's hash is not text")
    need(st.get("domain") is None or isinstance(st["domain"], str), "the domain is not text")
    need(st.get("model_override") is None or isinstance(st["model_override"], str), "the model is not text")
    cells = st.get("cells", 1)
    need(_is_int(cells) and 1 <= cells <= MAX_CELLS, f"the number of cells is not 1 to {MAX_CELLS}")
    bounds = st.get("cell_bounds", [])
    need(_nums(bounds) and len(bounds) in (0, cells - 1), "the cell bounds are not one number per boundary")
    region_from_dict(st.get("region"))
    sets = m.get("sets", [])
    need(isinstance(sets, list), "'sets' is not a list")
    ids = set()
    for e in sets:
        need(isinstance(e, dict) and isinstance(e.get("id"), str) and _strs(e.get("candidates"))
             and isinstance(e.get("file"), str) and isinstance(e.get("sha256"), str)
             and (e.get("title") is None or isinstance(e["title"], str))
             and (e.get("created_utc") is None or isinstance(e["created_utc"], str)),
             "a candidate set's record is incomplete or of the wrong types")
        need(e["id"] not in ids, f"the candidate set {e['id'][:20]} is listed twice")
        ids.add(e["id"])
    recs = m.get("candidates", {})
    need(isinstance(recs, dict), "'candidates' is not an object")
    for cid, rec in recs.items():
        need(isinstance(rec, dict) and _is_num(rec.get("l1")) and _is_num(rec.get("lr_psnr")),
             f"candidate {cid[:20]}'s record has no valid scores")
        _check_recipe(rec.get("recipe"), f"candidate {cid[:20]}")
    shortlist = m.get("shortlist", [])
    need(isinstance(shortlist, list) and all(
        isinstance(e, dict) and isinstance(e.get("candidate"), str) and isinstance(e.get("note", ""), str)
        for e in shortlist), "the shortlist is not a list of candidates and notes")
    retired = m.get("retired")
    need(retired is None or isinstance(retired, dict), "the retired recipes are not an object")
    for cid, r in (retired or {}).items():
        _check_recipe(r, f"retired candidate {cid[:20]}")
    for key in ("next_candidate", "next_set"):
        need(m.get(key) is None or (_is_int(m[key]) and m[key] >= 1), f"'{key}' is not a positive integer")
    audit = m.get("audit")
    need(audit is None or isinstance(audit, dict), "'audit' is not an object")
    audit = audit or {}
    need(audit.get("entries") is None or (_is_int(audit["entries"]) and audit["entries"] >= 0),
         "the audit log's entry count is not a count")
    need(audit.get("head_sha256") is None or isinstance(audit["head_sha256"], str),
         "the audit log's head hash is not text")


def read_recovery(folder: Path, manifest: dict[str, Any], disk_lines: list[str]) -> tuple[Recovery, dict] | None:
    """The autosave beside a case, when there is one, and whether it continues the saved case."""
    path = safe_path(folder, AUTOSAVE)
    if not path.is_file():
        return None
    saved = manifest.get("saved_utc")
    try:
        data = _read_json(path, AUTOSAVE)
        _check_format(data, AUTOSAVE)
        base, pending, when = dict(data["base"]), list(data["audit_pending"]), str(data["autosaved_utc"])
        if not _strs(pending) or not isinstance(data.get("manifest"), dict):
            raise CaseError("its unsaved steps or its manifest are malformed")
    except (CaseError, KeyError, TypeError, ValueError) as e:
        return Recovery(autosaved_utc="?", saved_utc=saved, pending_entries=0, usable=False,
                        why=f"the recovery file is damaged ({e})"), {}
    oldest = dt.datetime.min.replace(tzinfo=dt.UTC)
    newer = (_utc_time(when) or oldest) > (_utc_time(saved) or oldest)
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


def _candidate(cid: str, rec: dict[str, Any], t: dict[str, torch.Tensor]) -> S.Candidate:
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
    return S.Candidate(image=image, lr=lr, z=z, recipe=rec["recipe"], l1=float(rec["l1"]),
                       lr_psnr=float(rec["lr_psnr"]), id=cid)


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
    evidence: S.Evidence | None
    region: S.Region | None
    sets: list[tuple[S.CandidateSet | None, list[S.Candidate]]]
    shortlist: list[S.ShortlistEntry]
    recovery: Recovery | None
    recovered: bool
    warnings: list[str] = field(default_factory=list)
    #: Older candidate sets left on disk (``read_case(max_candidates=...)``): their manifest entries, their
    #: candidates' records and their requests, kept by every save of the case.
    archived_sets: list[dict[str, Any]] = field(default_factory=list)
    archived_records: dict[str, dict[str, Any]] = field(default_factory=dict)
    archived_requests: list[dict[str, Any]] = field(default_factory=list)

    def into(self, session: S.Session) -> Case:
        """Empty ``session``, fill it from the case (its events announce everything) and bind a :class:`Case`."""
        m = self.manifest
        case = Case(self.folder, session, str(m.get("examiner", "")), created_utc=m.get("created_utc"),
                    log=AuditLog(self.lines, persisted=self.persisted))
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
        case.warnings = self.warnings + case.check_originals()
        case._unsaved_from = self.persisted if self.recovered else len(case.log)
        case.record("case_opened", audit=self.check.summary(), problems=self.check.problems, warnings=case.warnings,
                    recovered_from_autosave=self.recovered, software=software(),
                    sets_left_on_disk=[e["id"] for e in self.archived_sets])
        if not self.recovered:
            case._unsaved_from = len(case.log)  # opening alone is no change worth saving
        return case

    def _fill(self, session: S.Session) -> None:
        m = self.manifest
        st = m.get("session") or {}
        cids = [*(m.get("candidates") or {}), *(m.get("retired") or {})]
        # never below an id in use (a tampered count must not make new candidates replace old ones)
        session.restore(evidence=self.evidence, region=self.region, domain=st.get("domain"),
                        n_cells=int(st.get("cells", 1)),
                        cell_bounds=[float(b) for b in st.get("cell_bounds", [])] or None,
                        model_override=st.get("model_override"), sets=self.sets, shortlist=self.shortlist,
                        next_candidate=_next_number(cids, "C", m.get("next_candidate")),
                        next_set=_next_number([e["id"] for e in m.get("sets", [])], "S", m.get("next_set")))


def read_case(folder: str | Path, *, recover: bool = False, max_candidates: int | None = None) -> CaseData:
    """Read and check a case folder without touching any session; :class:`CaseError` when it cannot be used.

    ``recover=True`` takes the unsaved work of ``case.autosave.json`` (offered as ``.recovery``).
    ``max_candidates`` bounds the memory a large case takes, as :class:`core.session.Session` bounds its
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
    manifest = _read_json(safe_path(folder, MANIFEST), MANIFEST)
    _check_format(manifest, MANIFEST)
    _check_manifest(manifest, MANIFEST)
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
        _check_format(manifest, AUTOSAVE)
        _check_manifest(manifest, AUTOSAVE)
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
            evidence = S.load_evidence(safe_path(folder, o.file))  # read as the app reads any evidence
        except ImageLoadError as e:
            raise CaseError(f"the case's copy of the evidence cannot be read: {e}") from e
        evidence.source = o.source
    sets: list[tuple[S.CandidateSet | None, list[S.Candidate]]] = []
    for entry in load:
        t = _read_set_file(folder, entry, warnings)
        cands = [_candidate(cid, recs[cid], t) for cid in entry["candidates"]]
        del t
        cs = None if entry["id"] == "loose" else S.CandidateSet(
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
    shortlist = [S.ShortlistEntry(cid, notes.get(cid, "")) for cid in shortlisted if cid in in_memory]
    left_ids = {e["id"] for e in leave}
    return CaseData(folder=folder, manifest=manifest, lines=lines, persisted=len(disk_lines), check=check,
                    originals=originals, evidence=evidence, region=region_from_dict(st.get("region")), sets=sets,
                    shortlist=shortlist, recovery=None if recover else recovery, recovered=recover,
                    warnings=warnings, archived_sets=leave,
                    archived_records={cid: recs[cid] for e in leave for cid in e["candidates"]},
                    archived_requests=[r for r in manifest.get("requests") or []
                                       if isinstance(r, dict) and isinstance(r.get("set"), str)
                                       and r["set"] in left_ids])


def open_case(folder: str | Path, session: S.Session | None = None, *, recover: bool = False,
              models_root: str | Path | None = None, max_candidates: int | None = None) -> Case:
    """Open a case into ``session`` (a new one by default), verifying its audit log and originals.

    Problems found do not stop the opening: they are in ``case.audit_check`` and ``case.warnings``
    (and logged). A malformed manifest, a newer format or a path leading outside the folder raise
    :class:`CaseError`, before the session is touched. ``max_candidates``: see :func:`read_case`.
    """
    data = read_case(folder, recover=recover, max_candidates=max_candidates)
    return data.into(session if session is not None else S.Session(models_root))
