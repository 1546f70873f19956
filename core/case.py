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
import os
import platform
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import torch
from safetensors import SafetensorError
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


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise CaseError(f"{path.parent.name}: no {path.name}: not a case folder") from e
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
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
            return Original(**{k: d[k] for k in Original.__dataclass_fields__})
        except (KeyError, TypeError) as e:
            raise CaseError(f"an original's record is incomplete ({e})") from e


@dataclass
class Recovery:
    """Unsaved work found beside a case (``case.autosave.json``)."""

    autosaved_utc: str
    saved_utc: str | None
    pending_entries: int
    usable: bool
    why: str = ""


def region_from_dict(d: dict[str, Any] | None) -> S.Region | None:
    """The :class:`Region` a manifest or a recipe recorded (None for the whole image)."""
    if not d or d.get("kind") in (None, "whole image"):
        return None

    def tup(v: Any) -> Any:
        return tuple(tup(x) for x in v) if isinstance(v, list) else float(v)

    return S.Region(str(d["kind"]), box=tup(d["box"]) if d.get("box") else None,
                    eyes=tup(d["eyes"]) if d.get("eyes") else None, quad=tup(d["quad"]) if d.get("quad") else None)


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
        if hasattr(ev, "sets_dropped"):
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
        if hasattr(ev, "sets_dropped"):
            ev.sets_dropped.disconnect(self._on_sets_dropped)

    @property
    def name(self) -> str:
        return self.folder.name

    # -- the log -------------------------------------------------------------------------------
    def record(self, action: str, **details: Any) -> dict[str, Any]:
        """Append one step to the audit log (persisted by the next save; kept by autosave)."""
        return self.log.append(action, json.loads(json.dumps(_portable(details), allow_nan=False)), self.examiner)

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
        if not self._muted:
            self.record("sets_dropped", sets=[cs.id for cs in sets], candidates=[c.id for c in freed],
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
        in_sets = {cid for cs in s.sets for cid in cs.candidate_ids}
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
        for c in self.session.candidates.values():
            r = c.recipe
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
            "requests": [{**request_of(cs, s.candidates), "created_utc": self.set_times.get(cs.id)} for cs in s.sets],
            "sets": sets,
            "candidates": {cid: {"recipe": _portable(c.recipe), "l1": c.l1, "lr_psnr": c.lr_psnr}
                           for cid, c in s.candidates.items()},
            "shortlist": [{"candidate": e.candidate_id, "note": e.note} for e in s.shortlist],
            "retired": self.retired,
            "next_candidate": s._next_candidate,
            "next_set": getattr(s, "_next_set", len(s.sets) + 1),
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
        raise CaseError(f"{what} is not a VarSR Studio case (format {data.get('format')!r})")
    v = data.get("format_version")
    if not isinstance(v, int) or v < 1:
        raise CaseError(f"{what} has no valid format version ({v!r})")
    if v > FORMAT_VERSION:
        raise CaseError(f"this case was written by a newer VarSR Studio (case format {v}; this version reads up to "
                        f"{FORMAT_VERSION}): open it with a newer version")


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


def _load_sets(folder: Path, manifest: dict[str, Any], warnings: list[str]) -> dict[str, dict[str, torch.Tensor]]:
    out = {}
    for entry in manifest.get("sets", []):
        path = safe_path(folder, entry.get("file"))
        if not path.is_file():
            raise CaseError(f"the candidate file {entry.get('file')} is missing from the case")
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != entry.get("sha256"):
            warnings.append(f"the candidate file {entry.get('file')} does not match its recorded SHA-256: "
                            "the candidates' pixels were altered after the save")
        try:
            out[entry["id"]] = st_load(data)
        except (SafetensorError, ValueError, KeyError) as e:
            raise CaseError(f"the candidate file {entry.get('file')} is not readable ({e})") from e
    return out


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
        case._take_snapshots()
        case.warnings = self.warnings + case.check_originals()
        case._unsaved_from = self.persisted if self.recovered else len(case.log)
        case.record("case_opened", audit=self.check.summary(), problems=self.check.problems, warnings=case.warnings,
                    recovered_from_autosave=self.recovered, software=software())
        if not self.recovered:
            case._unsaved_from = len(case.log)  # opening alone is no change worth saving
        return case

    def _fill(self, session: S.Session) -> None:
        st = self.manifest.get("session") or {}
        session.evidence, session.region = None, None
        session.candidates, session.sets, session.shortlist = {}, [], []
        session._next_candidate = 1
        if self.evidence is not None:
            session.set_evidence(self.evidence)
        if st.get("domain") in S.DOMAIN_MODELS:
            session.set_domain(st["domain"])
        session.set_cells(int(st.get("cells", 1)), [float(b) for b in st.get("cell_bounds", [])] or None)
        session.set_model_override(st.get("model_override"))
        session.set_region(self.region)
        for cs, cands in self.sets:
            for c in cands:
                session.candidates[c.id] = c
            if cs is not None:
                session.sets.append(cs)
                session.events.candidates_added.emit(cs)
        session._next_candidate = int(self.manifest.get("next_candidate", len(session.candidates) + 1))
        if hasattr(session, "_next_set"):
            session._next_set = int(self.manifest.get("next_set", len(session.sets) + 1))
        session.shortlist = list(self.shortlist)
        session.events.shortlist_changed.emit()


def read_case(folder: str | Path, *, recover: bool = False) -> CaseData:
    """Read and check a case folder without touching any session; :class:`CaseError` when it cannot be used.

    ``recover=True`` takes the unsaved work of ``case.autosave.json`` (offered as ``.recovery``).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise CaseError(f"{folder}: no such case folder")
    manifest = _read_json(safe_path(folder, MANIFEST), MANIFEST)
    _check_format(manifest, MANIFEST)
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
        lines += [str(x) for x in found[1]["audit_pending"]]
        expected_count, expected_head = len(lines), None
    if not isinstance(expected_count, int):
        raise CaseError(f"{MANIFEST} does not record its audit log")
    check = verify_lines(lines, expected_count, expected_head)
    warnings: list[str] = []
    originals: dict[str, Original] = {}
    for d in manifest.get("originals", []):
        o = Original.from_dict(d)
        safe_path(folder, o.file)
        originals[o.sha256] = o
    tensors = _load_sets(folder, manifest, warnings)
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
    recs = manifest.get("candidates") or {}
    sets: list[tuple[S.CandidateSet | None, list[S.Candidate]]] = []
    try:
        for entry in manifest.get("sets", []):
            t = tensors[entry["id"]]
            cands = []
            for cid in entry["candidates"]:
                rec = recs.get(cid)
                if rec is None or f"{cid}.image" not in t or f"{cid}.lr" not in t:
                    raise CaseError(f"candidate {cid} is listed but its record or its pixels are missing")
                cands.append(S.Candidate(image=t[f"{cid}.image"], lr=t[f"{cid}.lr"], z=t.get(f"{cid}.z"),
                                         recipe=rec["recipe"], l1=float(rec["l1"]), lr_psnr=float(rec["lr_psnr"]),
                                         id=cid))
            cs = None if entry["id"] == "loose" else S.CandidateSet(
                id=str(entry["id"]), title=str(entry.get("title", "")), candidate_ids=list(entry["candidates"]))
            sets.append((cs, cands))
        region = region_from_dict(st.get("region"))
        shortlist = [S.ShortlistEntry(str(e["candidate"]), str(e.get("note", "")))
                     for e in manifest.get("shortlist", []) if e.get("candidate") in recs]
    except (KeyError, TypeError, ValueError) as e:
        raise CaseError(f"{MANIFEST} is incomplete or malformed ({e.__class__.__name__}: {e})") from e
    return CaseData(folder=folder, manifest=manifest, lines=lines, persisted=len(disk_lines), check=check,
                    originals=originals, evidence=evidence, region=region, sets=sets, shortlist=shortlist,
                    recovery=None if recover else recovery, recovered=recover, warnings=warnings)


def open_case(folder: str | Path, session: S.Session | None = None, *, recover: bool = False,
              models_root: str | Path | None = None) -> Case:
    """Open a case into ``session`` (a new one by default), verifying its audit log and originals.

    Problems found do not stop the opening: they are in ``case.audit_check`` and ``case.warnings``
    (and logged). A malformed manifest, a newer format or a path leading outside the folder raise
    :class:`CaseError`, before the session is touched.
    """
    data = read_case(folder, recover=recover)
    return data.into(session if session is not None else S.Session(models_root))
