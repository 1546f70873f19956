"""Case files (core/case/): save/open, audit chain, atomic saves, recovery, path safety."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

import core
from core import case as K
from core.case import audit as A
from core.errors import CaseError
from core.images import sha256_file
from core.workbench import session as S
from tests.conftest import REPO
from tests.helpers.cases import generate


# -- save and open ------------------------------------------------------------------------------------------
def test_save_reopen_roundtrip(saved_case, evidence_png: Path, tmp_path: Path) -> None:
    case, ids = saved_case
    folder = case.folder
    m = json.loads((folder / K.MANIFEST).read_text())
    assert m["format"] == K.FORMAT and m["format_version"] == K.FORMAT_VERSION and m["examiner"] == "Examiner A"
    assert str(tmp_path) not in (folder / K.MANIFEST).read_text()  # only paths relative to the case
    ev = next(o for o in m["originals"] if o["role"] == "evidence")
    copy = folder / ev["file"]
    assert ev["sha256"] == sha256_file(evidence_png) == sha256_file(copy)
    assert copy.read_bytes() == evidence_png.read_bytes() and (copy.stat().st_mode & 0o222) == 0  # read-only
    assert {o["role"] for o in m["originals"]} == {"evidence", "reference"}
    assert {x["name"] for x in m["models"]} == {"face-8", "plate-char"}
    assert all(len(x["weights_sha256"]) == 64 for x in m["models"])
    assert m["requests"][0]["seed"] == 3 and m["requests"][0]["n"] == 4 and m["requests"][0]["temperature"] == 0.8
    assert m["software"]["torch"] == torch.__version__ and m["saved_utc"].endswith("+00:00")

    reopened = K.open_case(folder)
    s, old = reopened.session, case.session
    assert reopened.audit_check.ok and reopened.warnings == [] and reopened.examiner == "Examiner A"
    assert list(s.candidates) == list(old.candidates)
    for cid, c in old.candidates.items():
        d = s.candidates[cid]
        assert torch.equal(c.image, d.image) and torch.equal(c.lr, d.lr) and d.l1 == c.l1
        assert (c.z is None) == (d.z is None) and (c.z is None or torch.equal(c.z, d.z))
    assert [e.candidate_id for e in s.shortlist] == list(ids.values())
    assert s.note(ids["sample"]) == "closest to the witness account"
    assert s.region is not None and s.region.box == (16, 10, 32, 30)
    assert (s.domain, s.n_cells) == ("plate", 3)
    assert s.evidence.sha256 == old.evidence.sha256 and s.evidence.image.tobytes() == old.evidence.image.tobytes()
    assert [cs.id for cs in s.sets] == [cs.id for cs in old.sets]
    actions = [e["action"] for e in reopened.log.entries()]
    for a in ("case_created", "evidence_loaded", "original_copied", "region_set", "candidates_generated",
              "shortlist_changed", "note_set", "case_saved", "case_opened"):
        assert a in actions, a
    # opening alone is not an unsaved change; new candidate ids continue after the restored ones
    assert not reopened.has_unsaved_changes()
    assert s.next_candidate_number == old.next_candidate_number


def test_new_case_refuses_a_folder_in_use(tmp_path: Path, models_root: Path) -> None:
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "x.txt").write_text("x")
    with pytest.raises(CaseError, match="not empty"):
        K.Case.create(tmp_path / "used", S.Session(models_root), "E")


# -- the audit log --------------------------------------------------------------------------------------
def _lines(folder: Path) -> list[str]:
    return (folder / K.AUDIT).read_text().splitlines()


def _write(folder: Path, lines: list[str]) -> None:
    (folder / K.AUDIT).write_text("".join(x + "\n" for x in lines))


def test_intact_log_verifies(saved_case) -> None:
    case, _ = saved_case
    check = K.open_case(case.folder).audit_check
    assert check.ok and check.unsaved_tail == 0 and "intact" in check.summary()


def test_edited_line_is_detected(saved_case) -> None:
    case, _ = saved_case
    lines = _lines(case.folder)
    i = next(k for k, x in enumerate(lines) if '"box":[16' in x)
    lines[i] = lines[i].replace('"box":[16', '"box":[17', 1)  # a moved crop box
    _write(case.folder, lines)
    check = K.open_case(case.folder).audit_check
    assert not check.ok and any(f"line {i + 2} does not follow line {i + 1}" in p for p in check.problems)


def test_edited_last_line_is_detected(saved_case) -> None:
    case, _ = saved_case
    lines = _lines(case.folder)
    lines[-1] = lines[-1].replace("case_saved", "case_saveD")
    _write(case.folder, lines)
    check = K.open_case(case.folder).audit_check
    assert not check.ok and any("does not match the hash recorded" in p for p in check.problems)


@pytest.mark.parametrize("where", ["middle", "last"])
def test_deleted_line_is_detected(saved_case, where: str) -> None:
    case, _ = saved_case
    lines = _lines(case.folder)
    del lines[len(lines) // 2 if where == "middle" else -1]
    _write(case.folder, lines)
    opened = K.open_case(case.folder)
    assert not opened.audit_check.ok
    assert any(("deleted" in p) for p in opened.audit_check.problems)
    # the problem found is itself logged, so the next save keeps it
    assert opened.log.entries()[-1]["action"] == "case_opened"
    assert opened.log.entries()[-1]["details"]["problems"] == opened.audit_check.problems


def test_verify_lines_chain() -> None:
    log = A.AuditLog()
    for i in range(4):
        log.append("step", {"i": i}, "E")
    assert A.verify_lines(log.lines, 4, log.head).ok
    assert not A.verify_lines(log.lines[1:]).ok  # the first entry gone
    swapped = [log.lines[0], log.lines[2], log.lines[1], log.lines[3]]
    assert not A.verify_lines(swapped).ok
    assert not A.verify_lines(log.lines[:3] + ["{not json"]).ok


def test_log_is_not_overwritten_when_changed_on_disk(saved_case) -> None:
    case, _ = saved_case
    lines = _lines(case.folder)
    _write(case.folder, lines[:-1])
    case.record("something", x=1)
    with pytest.raises(CaseError, match="changed on disk"):
        case.save()
    assert _lines(case.folder) == lines[:-1]


# -- atomic saves -----------------------------------------------------------------------------------------
def _state(case: K.Case) -> tuple:
    s = case.session
    return list(s.candidates), [(e.candidate_id, e.note) for e in s.shortlist]


def _more_work(case: K.Case) -> None:
    s = case.session
    model = core.load_model(s.models_root / "plate-char")
    cset = generate(s, model, 4, seed=11)
    s.star(cset.candidate_ids[0])
    s.set_note(cset.candidate_ids[0], "added after the first save")


@pytest.mark.parametrize("fail_at", [2, "last"])
def test_interrupted_save_leaves_the_previous_case(saved_case, monkeypatch: pytest.MonkeyPatch, fail_at) -> None:
    case, _ = saved_case
    before = _state(K.open_case(case.folder))
    files_before = {p: p.read_bytes() for p in (case.folder / K.MANIFEST, case.folder / K.AUDIT)}
    _more_work(case)
    calls = []
    real = K.recorder.atomic_write

    def flaky(target, write):
        calls.append(Path(target).name)
        if (fail_at == "last" and Path(target).name == K.MANIFEST) or len(calls) == fail_at:
            def half(p: Path) -> None:
                write(p)
                raise OSError(28, "No space left on device")  # the temporary file is written, then the disk fills
            return real(target, half)
        return real(target, write)

    monkeypatch.setattr(K.recorder, "atomic_write", flaky)
    monkeypatch.setattr(A, "atomic_write", flaky)
    with pytest.raises(OSError):
        case.save()
    monkeypatch.undo()
    assert len(calls) >= 2, calls
    assert (case.folder / K.MANIFEST).read_bytes() == files_before[case.folder / K.MANIFEST]
    assert not list(case.folder.rglob("*.tmp"))  # no half-written file left behind
    reopened = K.open_case(case.folder)
    assert _state(reopened) == before and reopened.warnings == []
    assert reopened.audit_check.ok
    if fail_at == "last":  # the log was written, the manifest not: the extra entries are kept and named
        assert reopened.audit_check.unsaved_tail > 0 and "interrupted save" in reopened.audit_check.summary()
    else:
        assert (case.folder / K.AUDIT).read_bytes() == files_before[case.folder / K.AUDIT], calls
    # the session still holds the work: saving again succeeds
    case.save()
    assert len(K.open_case(case.folder).session.candidates) > len(before[0])


KILL_SCRIPT = r"""
import os, signal, sys
from pathlib import Path
import torch
torch.set_num_threads(1)
import core
from core import case as K
from core.workbench import session as S
from core.case import audit as A
from tests.helpers.cases import generate
root, folder = Path(sys.argv[1]), Path(sys.argv[2])
case = K.open_case(folder, models_root=root)
generate(case.session, core.load_model(root / "plate-char"), 4, seed=11)
calls = []
real = K.recorder.atomic_write
def dying(target, write):
    calls.append(target)
    if len(calls) == 2:
        def half(p):
            write(p)
            os.kill(os.getpid(), signal.SIGKILL)  # the power goes while the 2nd file is being written
        return real(target, half)
    return real(target, write)
K.recorder.atomic_write = A.atomic_write = dying
case.save()
print("not killed")
"""


def test_killed_mid_save_leaves_the_previous_case(saved_case, models_root: Path) -> None:
    case, _ = saved_case
    before = _state(K.open_case(case.folder))
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", KILL_SCRIPT, str(models_root), str(case.folder)], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == -signal.SIGKILL, out.stderr
    reopened = K.open_case(case.folder)
    assert _state(reopened) == before and reopened.audit_check.ok and reopened.warnings == []


# -- autosave and recovery --------------------------------------------------------------------------------
def test_autosave_and_recovery(saved_case) -> None:
    case, _ = saved_case
    assert not case.needs_autosave()
    _more_work(case)
    assert case.needs_autosave()
    case.autosave()
    assert (case.folder / K.AUTOSAVE).is_file() and not case.needs_autosave()
    # the app "crashes" here; the saved case is unchanged, the unsaved work is offered
    plain = K.open_case(case.folder)
    assert plain.recovery is not None and plain.recovery.usable and plain.recovery.pending_entries > 0
    assert len(plain.session.candidates) < len(case.session.candidates)
    rec = K.open_case(case.folder, recover=True)
    assert _state(rec) == _state(case) and rec.recovered and rec.audit_check.ok
    assert rec.has_unsaved_changes()
    assert any(e["action"] == "note_set" and e["details"]["note"] == "added after the first save"
               for e in rec.log.entries())
    rec.save()
    assert not (case.folder / K.AUTOSAVE).exists()
    again = K.open_case(case.folder)
    assert again.recovery is None and again.audit_check.ok and _state(again) == _state(case)


def test_stale_autosave_is_not_offered(saved_case) -> None:
    case, _ = saved_case
    _more_work(case)
    case.autosave()
    data = json.loads((case.folder / K.AUTOSAVE).read_text())
    data["autosaved_utc"] = "2000-01-01T00:00:00.000+00:00"
    (case.folder / K.AUTOSAVE).write_text(json.dumps(data))
    opened = K.open_case(case.folder)
    assert opened.recovery is not None and not opened.recovery.usable
    with pytest.raises(CaseError, match="no usable unsaved work"):
        K.open_case(case.folder, recover=True)


# -- what opening refuses ---------------------------------------------------------------------------------
def _edit_manifest(folder: Path, fn) -> None:
    p = folder / K.MANIFEST
    m = json.loads(p.read_text())
    fn(m)
    p.write_text(json.dumps(m))


@pytest.mark.parametrize("bad", ["../outside.png", "originals/../../outside.png", "/etc/passwd", "C:\\x\\y.png"])
def test_paths_outside_the_case_are_refused(saved_case, bad: str) -> None:
    case, _ = saved_case
    _edit_manifest(case.folder, lambda m: m["originals"][0].update(file=bad))
    with pytest.raises(CaseError, match="outside|absolute"):
        K.open_case(case.folder)


def test_symlink_leading_outside_is_refused(saved_case, tmp_path: Path) -> None:
    case, _ = saved_case
    secret = tmp_path / "secret.safetensors"
    secret.write_bytes(b"x")
    link = case.folder / "candidates" / "link.safetensors"
    link.symlink_to(secret)
    _edit_manifest(case.folder, lambda m: m["sets"][0].update(file="candidates/link.safetensors"))
    with pytest.raises(CaseError, match="link that leads outside"):
        K.open_case(case.folder)


def test_newer_format_is_refused(saved_case) -> None:
    case, _ = saved_case
    _edit_manifest(case.folder, lambda m: m.update(format_version=K.FORMAT_VERSION + 1))
    with pytest.raises(CaseError, match="newer VarSR Studio"):
        K.open_case(case.folder)


def test_not_a_case(tmp_path: Path) -> None:
    with pytest.raises(CaseError, match="not a case folder"):
        K.open_case(tmp_path)
    (tmp_path / K.MANIFEST).write_text("{broken")
    with pytest.raises(CaseError, match="not readable JSON"):
        K.open_case(tmp_path)


def test_failed_open_leaves_the_session_alone(saved_case, models_root: Path, evidence_png: Path) -> None:
    case, _ = saved_case
    _edit_manifest(case.folder, lambda m: m.update(format_version=99))
    s = S.Session(models_root)
    s.open_file(evidence_png)
    with pytest.raises(CaseError):
        K.open_case(case.folder, s)
    assert s.evidence is not None and s.evidence.path == evidence_png.resolve()


def test_changed_original_is_reported(saved_case) -> None:
    case, _ = saved_case
    o = next(o for o in case.originals.values() if o.role == "evidence")
    p = case.folder / o.file
    os.chmod(p, 0o644)
    img = Image.open(p).convert("RGB")
    img.putpixel((0, 0), (0, 0, 0))
    img.save(p)
    opened = K.open_case(case.folder)
    assert any("no longer matches its SHA-256" in w for w in opened.warnings)
    assert any("no longer matches" in w for w in opened.check_originals())
