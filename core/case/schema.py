"""A case's format: its file names, path safety, the parts of its manifest and the checks on what is read.

Nothing read from a case is trusted: every path must stay inside the case folder (:func:`safe_path`),
every value must be of the type this program writes (:func:`check_manifest`), else :class:`CaseError`.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import platform
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import torch

from core.errors import CaseError
from core.jsonchecks import ints, is_int, is_num, nums, strs
from core.workbench.candidates import Candidate, CandidateSet
from core.workbench.evidence import region_from_dict
from core.workbench.recipes import check_recipe

FORMAT = "varsr-case"
FORMAT_VERSION = 1
MANIFEST = "case.json"
AUDIT = "audit.jsonl"
AUTOSAVE = "case.autosave.json"
ORIGINALS = "originals"
CANDIDATES = "candidates"
#: The most character cells a case may record (the app offers 1 to 12).
MAX_CELLS = 64
#: The case's own details beside the examiner (all optional text; cases written before them have none).
CASE_FIELDS = ("case_number", "title", "agency")


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


def portable(obj: Any) -> Any:
    """A deep copy with every ``"path"`` value reduced to its file name (no paths of this machine)."""
    if isinstance(obj, dict):
        return {k: (Path(v).name if k == "path" and isinstance(v, str) else portable(v)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [portable(v) for v in obj]
    return obj


def safe_suffix(name: str) -> str:
    """A short, harmless file suffix from a received file name (``.png``)."""
    suffix = Path(name).suffix.lower()
    return suffix if re.fullmatch(r"\.[a-z0-9]{1,5}", suffix) else ""


def json_text(data: Any) -> str:
    return json.dumps(data, indent=1, ensure_ascii=False, allow_nan=False) + "\n"


def _finite(text: str) -> float:
    v = float(text)
    if not math.isfinite(v):
        raise ValueError(f"the number {text[:20]} is out of range")
    return v


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def read_json(path: Path, what: str) -> dict[str, Any]:
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


def utc_time(text: str | None) -> dt.datetime | None:
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
                and is_int(o.size_bytes) and (o.image_size is None or ints(o.image_size))):
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


def request_of(cset: CandidateSet, cands: dict[str, Candidate]) -> dict[str, Any]:
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



# -- checking what is read -------------------------------------------------------------------------
def check_format(data: dict[str, Any], what: str) -> None:
    if data.get("format") != FORMAT:
        raise CaseError(f"{what} is not a VarSR Studio case (format {str(data.get('format'))[:40]!r})")
    v = data.get("format_version")
    if not is_int(v) or v < 1:
        raise CaseError(f"{what} has no valid format version ({str(v)[:20]!r})")
    if v > FORMAT_VERSION:
        raise CaseError(f"this case was written by a newer VarSR Studio (case format {v}; this version reads up to "
                        f"{FORMAT_VERSION}): open it with a newer version")


def check_manifest(m: dict[str, Any], what: str) -> None:
    """Refuse a manifest (or an autosave's) whose parts are not of the types this program writes."""

    def need(ok: bool, part: str) -> None:
        if not ok:
            raise CaseError(f"{what} is malformed: {part}")

    for key in ("examiner", "created_utc", "saved_utc"):
        need(m.get(key) is None or isinstance(m[key], str), f"'{key}' is not text")
    details = m.get("details", {})
    need(isinstance(details, dict) and all(isinstance(v, str) for v in details.values()),
         "'details' is not an object of text")
    need(isinstance(m.get("originals", []), list), "'originals' is not a list")
    st = m.get("session")
    need(st is None or isinstance(st, dict), "'session' is not an object")
    st = st or {}
    need(st.get("evidence_sha256") is None or isinstance(st["evidence_sha256"], str), "the evidence's hash is not text")
    need(st.get("domain") is None or isinstance(st["domain"], str), "the domain is not text")
    need(st.get("model_override") is None or isinstance(st["model_override"], str), "the model is not text")
    need(st.get("consistency_operator") is None or isinstance(st["consistency_operator"], str),
         "the consistency operator is not text")
    cells = st.get("cells", 1)
    need(is_int(cells) and 1 <= cells <= MAX_CELLS, f"the number of cells is not 1 to {MAX_CELLS}")
    bounds = st.get("cell_bounds", [])
    need(nums(bounds) and len(bounds) in (0, cells - 1), "the cell bounds are not one number per boundary")
    edges = st.get("cell_edges")
    need(edges is None or (nums(edges) and len(edges) == cells + 1
                           and all(a < b for a, b in zip(edges[:-1], edges[1:], strict=True))),
         "the cell edges are not n + 1 increasing numbers")
    need(st.get("cell_inverted") is None or isinstance(st["cell_inverted"], bool),
         "'cell_inverted' is not true or false")
    region_from_dict(st.get("region"))
    sets = m.get("sets", [])
    need(isinstance(sets, list), "'sets' is not a list")
    ids = set()
    for e in sets:
        need(isinstance(e, dict) and isinstance(e.get("id"), str) and strs(e.get("candidates"))
             and isinstance(e.get("file"), str) and isinstance(e.get("sha256"), str)
             and (e.get("title") is None or isinstance(e["title"], str))
             and (e.get("created_utc") is None or isinstance(e["created_utc"], str)),
             "a candidate set's record is incomplete or of the wrong types")
        need(e["id"] not in ids, f"the candidate set {e['id'][:20]} is listed twice")
        ids.add(e["id"])
    recs = m.get("candidates", {})
    need(isinstance(recs, dict), "'candidates' is not an object")
    for cid, rec in recs.items():
        need(isinstance(rec, dict) and is_num(rec.get("l1")) and is_num(rec.get("lr_psnr"))
             and (rec.get("scores_operator") is None or isinstance(rec["scores_operator"], str)),
             f"candidate {cid[:20]}'s record has no valid scores")
        check_recipe(rec.get("recipe"), f"candidate {cid[:20]}", prefix=f"{MANIFEST} is malformed: ")
    shortlist = m.get("shortlist", [])
    need(isinstance(shortlist, list) and all(
        isinstance(e, dict) and isinstance(e.get("candidate"), str) and isinstance(e.get("note", ""), str)
        for e in shortlist), "the shortlist is not a list of candidates and notes")
    retired = m.get("retired")
    need(retired is None or isinstance(retired, dict), "the retired recipes are not an object")
    for cid, r in (retired or {}).items():
        check_recipe(r, f"retired candidate {cid[:20]}", prefix=f"{MANIFEST} is malformed: ")
    for key in ("next_candidate", "next_set"):
        need(m.get(key) is None or (is_int(m[key]) and m[key] >= 1), f"'{key}' is not a positive integer")
    audit = m.get("audit")
    need(audit is None or isinstance(audit, dict), "'audit' is not an object")
    audit = audit or {}
    need(audit.get("entries") is None or (is_int(audit["entries"]) and audit["entries"] >= 0),
         "the audit log's entry count is not a count")
    need(audit.get("head_sha256") is None or isinstance(audit["head_sha256"], str),
         "the audit log's head hash is not text")

