"""Removing an original from a case: only one that nothing derives from, and always on the record.

An image opened into a case by mistake (a test image, the wrong file) may be taken out again while no
candidate (kept, dropped from memory or only recorded) and no recorded search was made from it, and
while it is not the evidence on screen. The removal is an audit entry (``original_removed``: who, when,
which SHA-256 and file, and why); the copy leaves ``originals/`` at the next save, after the manifest
that no longer lists it is written, so an interrupted save never leaves a manifest naming a missing file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from core.errors import CaseError

if TYPE_CHECKING:
    from core.case.recorder import Case
    from core.case.schema import Original


def recipe_images(recipe: Any) -> set[str]:
    """The SHA-256 of every image a recipe was made from: its evidence, its reference, its cells' (a plate row)."""
    if not isinstance(recipe, dict):
        return set()
    out: set[str] = set()
    got = recipe.get("source")
    src: dict[str, Any] = got if isinstance(got, dict) else {}
    for part in ("evidence", "reference"):
        info = src.get(part)
        if isinstance(info, dict) and isinstance(info.get("sha256"), str):
            out.add(info["sha256"])
    if isinstance(recipe.get("reference_sha256"), str):
        out.add(recipe["reference_sha256"])
    for cell in recipe.get("cells") or []:
        out |= recipe_images(cell)
    return out


def _strings(obj: Any) -> set[str]:
    if isinstance(obj, str):
        return {obj}
    if isinstance(obj, dict):
        return set().union(*(_strings(v) for v in obj.values())) if obj else set()
    if isinstance(obj, list):
        return set().union(*(_strings(v) for v in obj)) if obj else set()
    return set()


@dataclass
class Derived:
    """What was made from one original: candidate ids and recorded search ids."""

    candidates: list[str]
    searches: list[str]

    def __bool__(self) -> bool:
        return bool(self.candidates or self.searches)

    def text(self) -> str:
        bits = []
        if self.candidates:
            more = "\u2026" if len(self.candidates) > 5 else ""
            bits.append(f"{len(self.candidates)} candidate(s) ({', '.join(self.candidates[:5])}{more})")
        if self.searches:
            bits.append(f"{len(self.searches)} search(es) ({', '.join(self.searches[:5])})")
        return " and ".join(bits)


def derived_from(case: Case, sha: str) -> Derived:
    """Every candidate (in memory, left on disk, or retired) and every recorded search made from ``sha``."""
    recipes: dict[str, Any] = {cid: rec.get("recipe") for cid, rec in case.archived_records.items()}
    recipes.update(case.retired)
    recipes.update({cid: c.recipe for cid, c in case.session.candidates.items()})
    cands = sorted(cid for cid, r in recipes.items() if sha in recipe_images(r))
    made = set(cands)
    searches = [str(s.get("id")) for s in case.searches if sha in _strings(s) or made & _strings(s)]
    return Derived(cands, searches)


def why_kept(case: Case, sha: str) -> str:
    """Why the original ``sha`` cannot be removed now ("" when it can)."""
    o = case.originals.get(sha)
    if o is None:
        return f"the original {sha[:16]}\u2026 is not in the case"
    derived = derived_from(case, sha)
    if derived:
        return f"{derived.text()} derive from {o.name}: it stays in the case with the work made from it"
    ev = case.session.evidence
    if ev is not None and ev.sha256 == sha:
        return (f"{o.name} is the evidence on screen: open the evidence you are working on first (File > Open; "
                "an image already in the case is not copied again), then remove this one")
    return ""


def remove_original(case: Case, sha: str, why: str = "") -> Original:
    """Take an original nothing derives from out of the case (logged; its copy goes at the next save);
    :class:`CaseError` saying why when something derives from it or it is the evidence on screen."""
    reason = why_kept(case, sha)
    if reason:
        raise CaseError(f"not removed: {reason}")
    o = case.originals.pop(sha)
    case.removed_files.append(o.file)
    case.record("original_removed", sha256=o.sha256, file=o.file, name=o.name, role=o.role,
                size_bytes=o.size_bytes, added_utc=o.added_utc, why=why.strip())
    return o
