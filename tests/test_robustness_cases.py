"""Case files that are malformed, truncated, newer, tampered with or huge (core/case/).

Each damaged case either opens (its problems reported and logged) or is refused with a one-line
:class:`CaseError`; a refused case is never written to, and an opened one saved again keeps what it
had (its originals byte for byte, its audit log append-only) and opens again. Fuzzing: hypothesis,
derandomised, every input under a time limit. A large case opened with a memory bound loads only the
newest sets (and every shortlisted candidate); the rest stay in the case and every save keeps them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from PIL import Image
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

import core
from core import case as K
from core.case.audit import AuditLog, verify_lines
from core.case.report import describe
from core.errors import CaseError
from core.workbench import session as S
from tests.conftest import tiny_config
from tests.helpers.cases import do_work, generate
from tests.helpers.fuzz import PER_INPUT_S, edited_json, time_limit

FUZZ = dict(deadline=None, derandomize=True, database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


# -- fixtures: one real case, made once, copied per input ------------------------------------------------
@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """A saved case holding every kind of candidate, and a copy of it with unsaved work in its autosave."""
    from core.model.bundle import save_bundle
    from core.model.varsr import VarSR

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("cases")
    torch.manual_seed(0)
    face = VarSR(tiny_config("face-8"))
    face.attributes = {"mean/Male": torch.randn(16), "diff/Smiling": torch.randn(16)}
    save_bundle(face, root / "models" / "face-8")
    save_bundle(VarSR(tiny_config("plate-char")), root / "models" / "plate-char")
    (root / "incoming").mkdir()
    img = Image.new("RGB", (48, 40), (70, 90, 110))
    img.paste((220, 180, 150), (16, 10, 32, 30))
    img.save(root / "incoming" / "evidence.png")
    session = S.Session(root / "models")
    case = K.Case.create(root / "CASE", session, "Examiner A")
    ids = do_work(session, root / "incoming" / "evidence.png", root)
    case.save()
    shutil.copytree(root / "CASE", root / "AUTOSAVED")
    other = K.open_case(root / "AUTOSAVED", models_root=root / "models")
    other.session.set_note(ids["row"], "unsaved note")
    other.session.unstar(ids["more"])
    other.autosave()
    yield {"root": root, "case": root / "CASE", "autosaved": root / "AUTOSAVED", "models": root / "models"}
    torch.set_num_threads(before)


def files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def fresh(made: dict[str, Path], which: str = "case") -> Path:
    work = made["root"] / "work"
    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(made[which], work, symlinks=True)
    return work


def assert_one_line(e: CaseError) -> None:
    assert str(e).strip() and "\n" not in str(e) and "Traceback" not in str(e)


# -- fuzzing: mutated manifests, audit logs and autosaves -------------------------------------------------
@st.composite
def damaged_lines(draw: st.DrawFn, data: bytes) -> bytes:
    """A log file with byte-level damage or whole lines deleted, duplicated, swapped or edited."""
    lines = data.split(b"\n")
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["flip", "truncate", "insert", "drop_line", "dup_line", "swap", "edit_value"]))
        if op in ("drop_line", "dup_line", "swap", "edit_value"):
            lines = out.split(b"\n")
            i = draw(st.integers(0, len(lines) - 1))
            j = draw(st.integers(0, len(lines) - 1))
            if op == "drop_line":
                del lines[i]
            elif op == "dup_line":
                lines.insert(j, lines[i])
            elif op == "swap":
                lines[i], lines[j] = lines[j], lines[i]
            else:  # an examiner's name or a value changed, the JSON still valid
                lines[i] = lines[i].replace(b"Examiner A", b"Examiner Z").replace(b'"seq":', b'"seq":1')
            out = bytearray(b"\n".join(lines))
        elif out:
            i = draw(st.integers(0, len(out) - 1))
            if op == "flip":
                out[i] ^= 1 << draw(st.integers(0, 7))
            elif op == "truncate":
                del out[i:]
            else:
                out[i:i] = draw(st.binary(min_size=1, max_size=8))
    return bytes(out)


def _open_or_refuse(work: Path, models: Path, before: dict[str, bytes], **kw) -> K.Case | None:
    """Open ``work``: a refusal must be one line and leave every file as it was."""
    try:
        with time_limit(PER_INPUT_S):
            case = K.open_case(work, models_root=models, **kw)
    except CaseError as e:
        event("refused")
        assert_one_line(e)
        assert files(work) == before  # a refused case is never written to
        return None
    event("opened with problems" if case.warnings or not case.audit_check.ok else "opened")
    return case


def _save_and_reopen(case: K.Case, work: Path, models: Path, before: dict[str, bytes]) -> None:
    """Saving an opened case keeps its originals and its log's lines, and gives a case that opens again."""
    for e in case.log.entries():
        assert isinstance(describe(e), str)  # the audit viewer and the report list every entry
    with time_limit(PER_INPUT_S):
        case.save()
        again = K.read_case(work)
    after = files(work)
    for name, data in before.items():
        if name.startswith(f"{K.ORIGINALS}/"):
            assert after[name] == data  # the originals are never rewritten
    assert after[K.AUDIT].startswith(before.get(K.AUDIT, b""))  # append-only: damaged lines are kept as found
    assert len(again.lines) == len(case.log)


@settings(max_examples=60, **FUZZ)
@given(data=st.data())
def test_fuzzed_manifest_opens_or_is_refused_and_is_never_clobbered(made, data: st.DataObject) -> None:
    work = fresh(made)
    (work / K.MANIFEST).write_bytes(data.draw(edited_json((made["case"] / K.MANIFEST).read_text())))
    before = files(work)
    case = _open_or_refuse(work, made["models"], before, max_candidates=data.draw(st.sampled_from([None, 6])))
    if case is not None:
        _save_and_reopen(case, work, made["models"], before)


@settings(max_examples=50, **FUZZ)
@given(data=st.data())
def test_fuzzed_audit_log_opens_with_its_problems_or_is_refused(made, data: st.DataObject) -> None:
    work = fresh(made)
    original = (work / K.AUDIT).read_bytes()
    damaged = data.draw(damaged_lines(original))
    (work / K.AUDIT).write_bytes(damaged)
    before = files(work)
    case = _open_or_refuse(work, made["models"], before)
    if case is None:
        return
    if AuditLog.read_lines(work / K.AUDIT) != AuditLog.read_lines(made["case"] / K.AUDIT):
        assert not case.audit_check.ok and case.audit_check.problems  # any change to the lines is found
        opened = case.log.entries()[-1]
        assert opened["action"] == "case_opened" and opened["details"]["problems"]  # and logged
    _save_and_reopen(case, work, made["models"], before)


@settings(max_examples=30, **FUZZ)
@given(data=st.data())
def test_fuzzed_autosave_is_offered_only_when_usable(made, data: st.DataObject) -> None:
    work = fresh(made, "autosaved")
    (work / K.AUTOSAVE).write_bytes(data.draw(edited_json((made["autosaved"] / K.AUTOSAVE).read_text())))
    before = files(work)
    with time_limit(PER_INPUT_S):
        plain = K.read_case(work)  # damaged unsaved work never stops the case from opening as saved
    assert plain.recovery is not None
    if not plain.recovery.usable:
        with pytest.raises(CaseError, match="no usable unsaved work"):
            K.read_case(work, recover=True)
    else:
        try:
            with time_limit(PER_INPUT_S):
                K.read_case(work, recover=True)
        except CaseError as e:
            assert_one_line(e)
    assert files(work) == before


# -- single cases, each named ---------------------------------------------------------------------------
@pytest.mark.parametrize("text, words", [
    ("", "not readable JSON"),
    ('{"format": "varsr-case", "format_version": 1, "audit": {"entries": 1e999}}', "not readable JSON"),
    ('{"format": "varsr-case", "format_version": 1, "x": NaN}', "not readable JSON"),
    ("[" * 100_000, "not readable JSON"),
    ('{"format": "varsr-case", "format_version": 1, "candidates": {"C0001": {"recipe": {}, "l1": 1, '
     '"lr_psnr": 1}}, "sets": [{"id": "S1", "candidates": ["C0001"]}], "audit": {"entries": 0}}',
     "a candidate set's record"),
    ('{"format": "varsr-case", "format_version": true}', "no valid format version"),
    ('{"format": "varsr-case", "format_version": 1, "session": {"cells": 1000000000}}', "cells"),
    ('{"format": "varsr-case", "format_version": 1, "session": {"region": {"kind": "box", "box": [1, 2]}}}',
     "region"),
    ('{"format": "varsr-case", "format_version": 1, "session": {"domain": ["face"]}}', "domain"),
])
def test_malformed_manifest_is_refused_in_one_line(made, text: str, words: str) -> None:
    work = fresh(made)
    (work / K.MANIFEST).write_text(text, encoding="utf-8")
    before = files(work)
    with pytest.raises(CaseError, match=words) as e:
        K.open_case(work)
    assert_one_line(e.value)
    assert files(work) == before


def test_newer_manifest_or_autosave_is_refused_and_kept(made) -> None:
    work = fresh(made, "autosaved")
    m = json.loads((work / K.MANIFEST).read_text())
    m["format_version"] = K.FORMAT_VERSION + 1
    m["new_feature"] = {"whatever": 1}
    (work / K.MANIFEST).write_text(json.dumps(m))
    before = files(work)
    with pytest.raises(CaseError, match="newer VarSR Studio"):
        K.open_case(work)
    assert files(work) == before

    work = fresh(made, "autosaved")
    a = json.loads((work / K.AUTOSAVE).read_text())
    a["format_version"] = K.FORMAT_VERSION + 1
    (work / K.AUTOSAVE).write_text(json.dumps(a))
    data = K.read_case(work)
    assert not data.recovery.usable and "newer" in data.recovery.why
    with pytest.raises(CaseError, match="no usable unsaved work"):
        K.read_case(work, recover=True)
    assert (work / K.AUTOSAVE).read_text() == json.dumps(a)  # kept for a newer version to recover


def test_truncated_manifest_and_log_are_refused_or_reported(made) -> None:
    work = fresh(made)
    text = (work / K.MANIFEST).read_bytes()
    for cut in (1, len(text) // 3, len(text) - 5):
        (work / K.MANIFEST).write_bytes(text[:cut])
        with pytest.raises(CaseError, match="not readable JSON"):
            K.open_case(work)
    (work / K.MANIFEST).write_bytes(text)
    log = (work / K.AUDIT).read_bytes()
    (work / K.AUDIT).write_bytes(log[: len(log) // 2])  # cut mid-line
    case = K.open_case(work, models_root=made["models"])
    assert not case.audit_check.ok and any("not a valid log entry" in p or "deleted" in p
                                           for p in case.audit_check.problems)


def test_undecodable_or_unreadable_log_is_refused_and_kept(made) -> None:
    work = fresh(made)
    (work / K.AUDIT).write_bytes((work / K.AUDIT).read_bytes() + b"\xff\xfe not utf-8\n")
    before = files(work)
    with pytest.raises(CaseError, match="not UTF-8 text"):
        K.open_case(work)
    assert files(work) == before
    (work / K.AUDIT).unlink()
    (work / K.AUDIT).mkdir()
    with pytest.raises(CaseError, match="cannot be read"):
        K.open_case(work)


def test_log_lines_of_the_wrong_types_are_reported_not_crashed_on() -> None:
    good = AuditLog()
    good.append("case_created", {"examiner": "E"}, "E")
    e = json.loads(good.lines[0])
    for bad in ({**e, "seq": "0"}, {**e, "details": []}, {**e, "actor": None}, {**e, "seq": True}):
        check = verify_lines([json.dumps(bad)])
        assert not check.ok and "not a valid log entry" in check.problems[0]
    check = verify_lines(["[" * 100_000])  # nested too deep to read: a damaged line, not a crash
    assert not check.ok
    odd = {**e, "details": {"region": "box", "sliders": [1], "candidates": 5, "software": []},
           "action": "candidates_generated"}
    assert "candidates generated" in describe(odd) or "candidates_generated" in describe(odd)


def test_symlinked_original_leading_outside_is_refused(made) -> None:
    work = fresh(made)
    m = json.loads((work / K.MANIFEST).read_text())
    ev = next(o for o in m["originals"] if o["role"] == "evidence")
    outside = made["root"] / "outside.png"
    shutil.copyfile(work / ev["file"], outside)  # the same bytes: only the link gives it away
    os.chmod(work / ev["file"], 0o644)
    (work / ev["file"]).unlink()
    (work / ev["file"]).symlink_to(outside)
    before = files(work)
    with pytest.raises(CaseError, match="link that leads outside"):
        K.open_case(work)
    assert files(work) == before and outside.read_bytes() == (made["case"] / ev["file"]).read_bytes()

    work = fresh(made)  # the whole originals folder a link to a folder outside
    elsewhere = made["root"] / "elsewhere"
    shutil.rmtree(elsewhere, ignore_errors=True)
    shutil.copytree(work / K.ORIGINALS, elsewhere)
    shutil.rmtree(work / K.ORIGINALS)
    (work / K.ORIGINALS).symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(CaseError, match="link that leads outside"):
        K.open_case(work)


def test_tampered_candidate_pixels_of_the_wrong_shape_are_refused(made) -> None:
    work = fresh(made)
    m = json.loads((work / K.MANIFEST).read_text())
    entry = m["sets"][0]
    tensors = st_load((work / entry["file"]).read_bytes())
    cid = entry["candidates"][0]
    tensors[f"{cid}.image"] = torch.zeros(7)  # a 1-D "image"
    data = st_save(tensors)
    os.chmod(work / entry["file"], 0o644)
    (work / entry["file"]).write_bytes(data)
    entry["sha256"] = hashlib.sha256(data).hexdigest()  # the record rewritten to match
    (work / K.MANIFEST).write_text(json.dumps(m))
    with pytest.raises(CaseError, match="pixels are malformed"):
        K.open_case(work)
    (work / entry["file"]).write_bytes(b"\x00" * 40)  # not safetensors at all
    with pytest.raises(CaseError, match="not readable"):
        K.open_case(work)


def test_tampered_id_counters_never_reuse_an_id(made) -> None:
    work = fresh(made)
    m = json.loads((work / K.MANIFEST).read_text())
    m["next_candidate"], m["next_set"] = 1, 1
    (work / K.MANIFEST).write_text(json.dumps(m))
    case = K.open_case(work, models_root=made["models"])
    before = set(case.session.candidates)
    face = core.load_model(made["models"] / "face-8")
    case.session.set_domain("face")
    cset = generate(case.session, face, 4, seed=9)
    assert not set(cset.candidate_ids) & before and cset.id not in {e["id"] for e in m["sets"]}
    assert all(cid in case.session.candidates for cid in before)  # no old candidate was replaced


# -- a case larger than the session's bound ----------------------------------------------------------------
@pytest.fixture
def big_case(made, tmp_path: Path) -> tuple[Path, list[S.CandidateSet], str]:
    """A case of 5 sets of 4 candidates (saved by an unbounded session), one starred in the oldest set."""
    session = S.Session(made["models"], max_candidates=10_000)
    case = K.Case.create(tmp_path / "BIG", session, "E")
    session.open_file(made["root"] / "incoming" / "evidence.png")
    face = core.load_model(made["models"] / "face-8")
    sets = [generate(session, face, 4, seed=k) for k in range(5)]
    starred = sets[0].candidate_ids[2]
    session.star(starred)
    session.set_note(starred, "kept")
    case.save()
    return case.folder, sets, starred


def test_opening_a_large_case_loads_the_newest_sets_and_saving_keeps_them_all(made, big_case) -> None:
    folder, sets, starred = big_case
    full = K.read_case(folder)
    before = json.loads((folder / K.MANIFEST).read_text())
    case = K.open_case(folder, models_root=made["models"], max_candidates=8)
    s = case.session
    assert [cs.id for cs in s.sets] == [cs.id for cs in sets[-2:]]  # the newest 8 candidates
    assert set(s.candidates) == {*sets[3].candidate_ids, *sets[4].candidate_ids, starred}
    assert [e.candidate_id for e in s.shortlist] == [starred] and s.note(starred) == "kept"
    want = next(c for _, cs in full.sets for c in cs if c.id == starred)
    assert torch.equal(s.candidates[starred].image, want.image)  # read alone from its set's file
    assert [e["id"] for e in case.archived_sets] == [cs.id for cs in sets[:3]]
    assert case.log.entries()[-1]["details"]["sets_left_on_disk"] == [cs.id for cs in sets[:3]]

    face = core.load_model(made["models"] / "face-8")
    new = generate(s, face, 4, seed=99)  # more work, then a save: what was left on disk stays in the case
    case.save()
    after = json.loads((folder / K.MANIFEST).read_text())
    assert [e["id"] for e in after["sets"]] == [e["id"] for e in before["sets"]] + [new.id]
    assert after["sets"][:5] == before["sets"]  # the same files, hashes and candidates
    assert {k: v for k, v in after["candidates"].items() if k in before["candidates"]} == before["candidates"]
    assert [r["set"] for r in after["requests"]] == [cs.id for cs in sets] + [new.id]
    reopened = K.read_case(folder)
    assert sum(len(c) for _, c in reopened.sets) == 24
    for (_, a), (_, b) in zip(full.sets, reopened.sets, strict=False):
        assert all(torch.equal(x.image, y.image) for x, y in zip(a, b, strict=True))
    assert [e.candidate_id for e in reopened.shortlist] == [starred]


def test_sets_dropped_after_a_save_stay_in_the_case(made, tmp_path: Path) -> None:
    session = S.Session(made["models"], max_candidates=6)
    case = K.Case.create(tmp_path / "C", session, "E")
    session.open_file(made["root"] / "incoming" / "evidence.png")
    face = core.load_model(made["models"] / "face-8")
    first = generate(session, face, 4, seed=1)
    case.save()
    generate(session, face, 4, seed=2)  # over the bound: the first set leaves memory, not the case
    assert first.id not in [cs.id for cs in session.sets]
    case.save()
    data = K.read_case(case.folder)
    assert [cs.id for cs, _ in data.sets][0] == first.id and len(data.sets[0][1]) == 4
    unsaved = generate(session, face, 4, seed=3)  # dropped before any save: only its recipes are kept
    generate(session, face, 4, seed=4)
    case.save()
    m = json.loads((case.folder / K.MANIFEST).read_text())
    assert unsaved.id not in [e["id"] for e in m["sets"]]
    assert all(cid in m["retired"] for cid in unsaved.candidate_ids)


def test_refused_open_then_save_elsewhere_leaves_the_broken_case_alone(made, tmp_path: Path) -> None:
    broken = fresh(made)
    text = (broken / K.MANIFEST).read_bytes()
    (broken / K.MANIFEST).write_bytes(text[: len(text) // 2])
    before = files(broken)
    session = S.Session(made["models"])
    current = K.Case.create(tmp_path / "CURRENT", session, "E")
    with pytest.raises(CaseError):
        K.open_case(broken, session)
    current.save()  # the case that stayed open saves into its own folder
    assert files(broken) == before
    with pytest.raises(CaseError, match="not empty"):
        K.Case.create(broken, S.Session(made["models"]), "E")  # and a new case never takes over the folder
    assert files(broken) == before
