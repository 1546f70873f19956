"""The recorder and writer: :class:`Case` binds a session to a case folder, logs each step of the work
in the audit log and saves it (originals, candidate files, log, manifest; each atomically)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save as st_save

from core.case.audit import AuditCheck, AuditLog, utc_now, verify_lines
from core.case.copying import (
    CopyResult,
    PendingCopy,
    Verified,
    changed_text,
    check_files,
    file_key,
    image_size_of,
)
from core.case.folder_copy import remove_tree
from core.case.schema import (
    AUDIT,
    AUTOSAVE,
    CANDIDATES,
    CASE_FIELDS,
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    ORIGINALS,
    Original,
    Recovery,
    json_text,
    portable,
    request_of,
    safe_path,
    safe_suffix,
    software,
)
from core.errors import CaseError
from core.fileio import atomic_write
from core.images import sha256_file
from core.workbench.candidates import Candidate, CandidateSet
from core.workbench.evidence import Evidence, Region
from core.workbench.export import NOTICE
from core.workbench.operators import score_record
from core.workbench.session import Session


def clean_details(details: dict[str, str]) -> dict[str, str]:
    """The known, non-empty case details (:data:`CASE_FIELDS`), stripped."""
    return {k: str(details[k]).strip() for k in CASE_FIELDS if str(details.get(k) or "").strip()}


class Case:
    """A :class:`core.workbench.session.Session` bound to a case folder, with its audit log.

    The case listens to the session's events and logs each step (evidence, region, settings,
    generations, shortlist); :meth:`record` logs anything else (exports, reports, verification).
    Use :meth:`create` or :func:`open_case`; :meth:`save` and :meth:`autosave` write it.
    """

    def __init__(self, folder: str | Path, session: Session, examiner: str, *, created_utc: str | None = None,
                 log: AuditLog | None = None) -> None:
        self.folder = Path(folder)
        self.session = session
        self.examiner = examiner.strip() or "unnamed examiner"
        #: Case number, title and agency (:data:`CASE_FIELDS`), each optional.
        self.details: dict[str, str] = {}
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
        #: Copies of originals removed since the last save (:mod:`core.case.originals`): deleted by the next save.
        self.removed_files: list[str] = []
        #: Copies of originals a worker hashed (:meth:`take_copies`), by (SHA-256, file, size, mtime_ns):
        #: the save takes them in without reading them again.
        self._verified: dict[tuple[str, str, int, int], Verified] = {}
        #: Sources a worker found changed, by SHA-256: (path, size, mtime_ns) when read, and why.
        self._copy_failed: dict[str, tuple[tuple[str, int, int], str]] = {}
        self._set_files: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = {}
        self._made_folder = False  # :meth:`start` made the folder (:meth:`abandon` removes it)
        self._muted = False
        self._unsaved_from = len(self.log)
        self._autosaved_len = 0
        self._snap_settings: dict[str, Any] = {}
        self._snap_shortlist: list[str] = []
        self._snap_notes: dict[str, str] = {}
        self._take_snapshots()
        for signal, slot in self._subscriptions():
            signal.connect(slot)

    # -- creating ------------------------------------------------------------------------------
    @classmethod
    def create(cls, folder: str | Path, session: Session, examiner: str,
               details: dict[str, str] | None = None) -> Case:
        """A new case in ``folder`` (new or empty), adopting what the session already holds; saved at once.
        ``details``: case number, title, agency (:data:`CASE_FIELDS`)."""
        case = cls.start(folder, session, examiner, details)
        try:
            case.save_new()
        except BaseException:
            case.abandon()
            raise
        return case

    @classmethod
    def start(cls, folder: str | Path, session: Session, examiner: str,
              details: dict[str, str] | None = None) -> Case:
        """A new case as :meth:`create` makes it, not yet saved: a worker may first copy its large originals
        in (:meth:`pending_copies`); then :meth:`save_new` writes it, or :meth:`abandon` undoes it."""
        folder = Path(folder)
        if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
            raise CaseError(f"{folder} already exists and is not empty: choose a new folder for the case")
        made = not folder.exists()
        folder.mkdir(parents=True, exist_ok=True)
        case = cls(folder, session, examiner)
        case._made_folder = made
        case.details = clean_details(details or {})
        case.record("case_created", examiner=case.examiner, software=software(), format_version=FORMAT_VERSION,
                    **({"details": case.details} if case.details else {}))
        if session.evidence is not None or session.candidates:
            case.record("work_adopted", note="done in this session before the case was created",
                        evidence_sha256=session.evidence.sha256 if session.evidence else None,
                        region=session.region.to_dict() if session.region else {"kind": "whole image"},
                        requests=[request_of(s, session.candidates) for s in session.sets],
                        shortlist=[e.candidate_id for e in session.shortlist])
        for x in session.exports:  # exports made before the case: carried in with their own times
            case.record("shortlist_exported", **{k: v for k, v in x.items() if k != "utc"}, made_utc=x.get("utc"),
                        before_case=True)
        case._take_snapshots()
        return case

    def save_new(self) -> None:
        """The first save of a case :meth:`start` made (the exports before it now belong to the case)."""
        self.save()
        self.session.exports = []

    def abandon(self) -> None:
        """Undo a case :meth:`start` made and no save completed: stop listening, and remove what was written
        into its folder (new or empty when it started; the folder itself goes too when it made it)."""
        self.detach()
        if self.saved_utc is not None or (self.folder / MANIFEST).exists():
            return  # saved once: a case, kept
        if self._made_folder:
            remove_tree(self.folder)
            return
        for p in list(self.folder.iterdir()) if self.folder.is_dir() else []:
            if p.is_dir():
                remove_tree(p)
            else:
                p.unlink(missing_ok=True)

    def continue_in(self, folder: str | Path) -> None:
        """Go on in ``folder``, a byte copy of this case's folder as last saved (save as): the steps since the
        save and those to come are written there by the next save; the old folder stays as it was."""
        old = self.folder.name
        self.folder = Path(folder)
        self.record("case_saved_as", copied_from=old)

    def detach(self) -> None:
        """Stop listening to the session (before another case takes it over)."""
        for signal, slot in self._subscriptions():
            signal.disconnect(slot)

    def _subscriptions(self) -> list[tuple[Any, Callable[..., None]]]:
        """The session events the case logs, each with its handler (connected and disconnected alike)."""
        ev = self.session.events
        return [(ev.evidence_changed, self._on_evidence), (ev.region_changed, self._on_region),
                (ev.settings_changed, self._on_settings), (ev.candidates_added, self._on_set_added),
                (ev.shortlist_changed, self._on_shortlist), (ev.sets_dropped, self._on_sets_dropped)]

    @property
    def name(self) -> str:
        return self.folder.name

    def set_details(self, details: dict[str, str]) -> None:
        """Change the case number, title or agency (logged; saved by the next save)."""
        new = clean_details(details)
        if new != self.details:
            self.details = new
            self.record("case_details_changed", details=new)

    # -- the log -------------------------------------------------------------------------------
    def record(self, action: str, **details: Any) -> dict[str, Any]:
        """Append one step to the audit log (persisted by the next save; kept by autosave)."""
        return self.log.append(action, json.loads(json.dumps(portable(details), allow_nan=False)), self.examiner)

    def record_search(self, entry: dict[str, Any]) -> dict[str, Any]:
        """Keep a face or plate search in the case (manifest ``searches``) and log it (``search_run``).

        ``entry``: a record from :mod:`core.case.search` (query and ranked hits); it gets an
        id (``search-N``) and the time. Returns the record as kept.
        """
        n = 1 + max((int(m.group(1)) for s in self.searches
                     if (m := re.fullmatch(r"search-(\d+)", str(s.get("id", ""))))), default=0)
        rec = json.loads(json.dumps({"id": f"search-{n}", "utc": utc_now(), **portable(entry)}, allow_nan=False))
        self.searches.append(rec)
        self.record("search_run", **rec)
        return rec

    def _settings(self) -> dict[str, Any]:
        s = self.session
        d = {"domain": s.domain, "cells": s.n_cells, "cell_bounds": [float(b) for b in s.cell_bounds],
             "model_override": s.model_override}
        if tuple(s.cell_outer) != (0.0, 1.0):  # written only when set: older settings stay as they were
            d["cell_edges"] = [float(e) for e in s.cell_edges]
        if s.cell_inverted:
            d["cell_inverted"] = True
        return d

    def _recorded_settings(self) -> dict[str, Any]:
        """The settings the case logs and saves: :meth:`_settings` and what consistency is scored under."""
        return {**self._settings(), "consistency_operator": self.session.consistency_operator}

    def _take_snapshots(self) -> None:
        s = self.session
        self._snap_settings = self._recorded_settings()
        self._snap_shortlist = [e.candidate_id for e in s.shortlist]
        self._snap_notes = {e.candidate_id: e.note for e in s.shortlist}

    def _on_evidence(self, ev: Evidence) -> None:
        if self._muted:
            return
        self.record("evidence_loaded", sha256=ev.sha256, name=ev.label, source=ev.source,
                    image_size=list(ev.image.size))
        try:
            self._ensure_original(ev.sha256, "evidence", ev.label, ev.source, ev.path, ev)
        except (OSError, CaseError) as e:
            self.warnings.append(f"the evidence could not be copied into the case yet: {e}")

    def _on_region(self, region: Region | None) -> None:
        if not self._muted:
            self.record("region_set", region=region.to_dict() if region else {"kind": "whole image"})

    def _on_settings(self) -> None:
        if self._muted:
            return
        now = self._recorded_settings()
        if now != self._snap_settings:
            self.record("settings_changed", **now)
            self._snap_settings = now

    def _on_set_added(self, cset: CandidateSet) -> None:
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

    def _on_sets_dropped(self, sets: list[CandidateSet], freed: list[Candidate]) -> None:
        for c in freed:
            self.retired[c.id] = portable(c.recipe)
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
                self.archived_records[cid] = {"recipe": portable(c.recipe), **score_record(c)}
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
    def _original_rel(self, sha: str, name: str) -> str:
        return f"{ORIGINALS}/{sha[:16]}{safe_suffix(name)}"

    def _take_verified(self, sha: str, rel: str, target: Path, pop: bool = True) -> Verified | None:
        """The worker's verification of ``target``, if the file is still as it was hashed (size, mtime)."""
        if not self._verified or not target.is_file():
            return None
        st = target.stat()
        key = (sha, rel, st.st_size, st.st_mtime_ns)
        return self._verified.pop(key, None) if pop else self._verified.get(key)

    def _ensure_original(self, sha: str, role: str, name: str, source: str, path: Path | None,
                         ev: Evidence | None) -> Original | None:
        """Copy an original into ``originals/`` (once); the copy's hash must be the recorded one.

        A copy a worker already made and hashed (:meth:`take_copies`) is taken in without reading it
        again, as is a source it found changed (refused with the same words): only the pasted image's
        encoding, a small file or what changed since the worker ran is hashed and copied here."""
        have = self.originals.get(sha)
        if have is not None and (self.folder / have.file).is_file():
            return have
        if not self.folder.is_dir():
            return None
        rel = self._original_rel(sha, name)
        if rel in self.removed_files:  # removed, then brought back before the save
            self.removed_files.remove(rel)
        target = self.folder / rel
        target.parent.mkdir(exist_ok=True)
        done = self._take_verified(sha, rel, target)
        if done is not None or (target.is_file() and sha256_file(target) == sha):
            pass
        elif path is not None and Path(path).is_file():
            src = Path(path)  # streamed: an original may be a clip of gigabytes
            failed = self._copy_failed.get(sha)
            if failed is not None and failed[0] == file_key(src):
                raise CaseError(failed[1])
            if sha256_file(src) != sha:
                raise CaseError(changed_text(src.name))
            atomic_write(target, lambda p: shutil.copyfile(src, p))
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
        size = done.image_size if done is not None else image_size_of(target)
        o = Original(sha256=sha, file=rel, name=Path(name).name, role=role, source=source,
                     size_bytes=target.stat().st_size, image_size=size, added_utc=utc_now())
        self.originals[sha] = o
        self.record("original_copied", sha256=sha, file=rel, name=o.name, role=role, size_bytes=o.size_bytes)
        return o

    def _wanted_originals(self) -> Iterator[tuple[str, str, str, str, Path | None, Evidence | None, str]]:
        """Each original the case should hold and does not yet: the evidence, then each candidate's evidence
        and reference; as (sha, role, name, source, file or None, the pasted evidence or None, warning prefix).
        Lazy: one taken in before the next is asked for is not offered again."""
        ev = self.session.evidence
        if ev is not None and ev.sha256 not in self.originals:
            yield ev.sha256, "evidence", ev.label, ev.source, ev.path, ev, ""
        for c in self.session.candidates.values():
            src = c.recipe.get("source") or {}
            for role, info, sha in (("evidence", src.get("evidence"), (src.get("evidence") or {}).get("sha256")),
                                    ("reference", src.get("reference"), c.recipe.get("reference_sha256"))):
                if not sha or sha in self.originals or not info:
                    continue
                p = Path(info["path"]) if info.get("path") else None
                yield (sha, role, info.get("path") or role, info.get("source", "file"),
                       p if p is not None and p.is_absolute() else None, None, f"{role} {sha[:12]}: ")

    def _collect_originals(self, defer: Collection[str] = ()) -> None:
        """Make sure the evidence and every reference the candidates used are in the case (but ``defer``)."""
        for sha, role, name, source, path, ev, prefix in self._wanted_originals():
            if sha in defer:
                continue
            try:
                self._ensure_original(sha, role, name, source, path, ev)
            except CaseError as e:
                self._warn_once(f"{prefix}{e}")

    def pending_copies(self) -> list[PendingCopy]:
        """The originals the next save would copy from files (the heavy part of a save), read from nothing
        but their sizes: for a worker's :func:`core.case.copying.run_copies`, whose result
        :meth:`take_copies` hands back. Not listed: a pasted image (encoded in memory, small), a file no
        longer there (the save warns), one a worker already verified or found changed (unchanged since)."""
        if not self.folder.is_dir():
            return []
        out: dict[str, PendingCopy] = {}
        for sha, _role, name, _source, path, _ev, _prefix in self._wanted_originals():
            if sha in out or path is None or not Path(path).is_file():
                continue
            rel = self._original_rel(sha, name)
            key = file_key(Path(path))
            failed = self._copy_failed.get(sha)
            if self._take_verified(sha, rel, self.folder / rel, pop=False) or (failed and failed[0] == key):
                continue
            out[sha] = PendingCopy(sha, Path(path), rel, key[1])
        return list(out.values())

    def take_copies(self, result: CopyResult) -> None:
        """Take in what a worker's :func:`core.case.copying.run_copies` did (on the case's own thread): the
        next save records its copies without hashing them again, and warns about the sources it refused."""
        for v in result.verified:
            self._verified[v.key] = v
        self._copy_failed.update(result.failed)

    def _warn_once(self, text: str) -> None:
        if text not in self.warnings:
            self.warnings.append(text)
            self.record("warning", text=text)

    def check_originals(self, cancelled: Callable[[], bool] | None = None) -> list[str]:
        """One line per original whose copy in the case is missing or no longer matches its SHA-256
        (:func:`core.case.copying.check_files`; ``cancelled``: :class:`core.case.copying.CopyCancelled`)."""
        ev = self.session.evidence
        return check_files(self.folder, list(self.originals.values()),
                           (ev.path, ev.sha256) if ev is not None and ev.path is not None else None, cancelled)

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
            "examiner": self.examiner, "details": dict(self.details), "created_utc": self.created_utc,
            "saved_utc": saved_utc,
            "software": software(),
            "originals": [o.to_dict() for o in self.originals.values()],
            "session": {"evidence_sha256": s.evidence.sha256 if s.evidence else None,
                        "region": s.region.to_dict() if s.region else None, **self._recorded_settings()},
            "models": self._models(),
            "requests": self.archived_requests + [{**request_of(cs, s.candidates),
                                                   "created_utc": self.set_times.get(cs.id)} for cs in s.sets],
            "sets": self.archived_sets + sets,
            "candidates": {**{cid: rec for cid, rec in self.archived_records.items() if cid not in s.candidates},
                           **{cid: {"recipe": portable(c.recipe), **score_record(c)}
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
        text = json_text(manifest)
        atomic_write(self.folder / MANIFEST, lambda p: p.write_text(text, encoding="utf-8"))
        self.saved_utc = now
        self._unsaved_from = len(self.log)
        for rel in self.removed_files:  # the manifest no longer names them: their copies can go
            target = safe_path(self.folder, rel)
            if target.is_file() and not any(o.file == rel for o in self.originals.values()):
                os.chmod(target, 0o644)
                target.unlink()
        self.removed_files = []
        (self.folder / AUTOSAVE).unlink(missing_ok=True)
        self.recovery = None

    def autosave(self, defer: Collection[str] = ()) -> Path:
        """Write unsaved work to ``case.autosave.json`` (and any new candidate files); the case itself is unchanged.
        ``defer``: originals (SHA-256) not copied now (a clip: left to the next save, which copies it in a worker)."""
        self.sync_notes()
        self._collect_originals(defer)
        sets = self._write_sets()
        now = utc_now()
        base = self.log.persisted
        payload = {"format": FORMAT, "format_version": FORMAT_VERSION, "autosaved_utc": now,
                   "base": {"saved_utc": self.saved_utc, "audit_entries": base, "audit_head": self.log.head_at(base)},
                   "manifest": self.manifest(sets, self.saved_utc or now, len(self.log)),
                   "audit_pending": self.log.lines[base:]}
        text = json_text(payload)
        atomic_write(self.folder / AUTOSAVE, lambda p: p.write_text(text, encoding="utf-8"))
        self._autosaved_len = len(self.log)
        return self.folder / AUTOSAVE

