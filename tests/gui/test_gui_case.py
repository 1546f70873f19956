"""Case files in the app (varsr_gui/case_actions.py): new, save, close, reopen, crash recovery,
the audit log viewer, the hash warning, verify regeneration in a worker, and the report (HTML + PDF)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image
from PySide6.QtCore import Qt

from core import case as K
from core.case.report import STATEMENT
from core.workbench import session as S
from tests.gui.helpers import WAIT_MS, generate


def _start(make_window, qtbot, gui_models: Path, evidence_png: Path, folder: Path):
    w = make_window(gui_models)
    assert w.open_path(evidence_png)
    w.session.set_region(S.Region.from_box(16, 10, 32, 30))
    case = w.case_actions.new_case(folder, "Examiner B")
    assert case is not None and (folder / K.MANIFEST).is_file()
    assert "Examiner B" in w.case_actions.case_label.text()
    return w, case


def test_case_survives_close_reopen_and_regenerates(make_window, qtbot, gui_models: Path, tmp_path: Path,
                                                    evidence_png: Path) -> None:
    folder = tmp_path / "cases" / "CASE-7"
    w, case = _start(make_window, qtbot, gui_models, evidence_png, folder)
    ids = generate(qtbot, w, 4)
    w.session.star(ids[1])
    w.session.set_note(ids[1], "matches the witness's description of the hair")
    # the optional consistency step, in a worker, recorded as a new set
    w.grid.select(ids[2])
    w.case_actions.enforce_consistency()
    qtbot.waitUntil(lambda: len(w.grid.candidate_ids()) == 5 and not w.runner.busy, timeout=WAIT_MS)
    enforced = w.grid.candidate_ids()[-1]
    assert w.session.candidates[enforced].recipe["kind"] == "consistent"
    assert w.session.candidates[enforced].lr_psnr > 99
    w.session.star(enforced)
    assert w.case_actions.save_case()

    # the read-only audit log viewer
    dlg = w.case_actions.show_audit_log()
    assert dlg.table.rowCount() == len(case.log) and "intact" in dlg.status.text()
    steps = [dlg.table.item(r, 3).text() for r in range(dlg.table.rowCount())]
    assert any("adopted" in t for t in steps) and any("copied byte for byte" in t for t in steps)
    assert any("sample from face-8" in t for t in steps) and any("consistent" in t for t in steps)
    assert not dlg.table.item(0, 3).flags() & Qt.ItemFlag.ItemIsEditable

    # verify regeneration: a worker, then a result box
    w.case_actions.verify_regeneration()
    qtbot.waitUntil(lambda: w.case_actions.last_verification is not None and not w.runner.busy, timeout=WAIT_MS)
    results = w.case_actions.last_verification
    assert [r.candidate for r in results] == [ids[1], enforced] and all(r.identical for r in results)
    assert "bit-identically" in w.case_actions.result_box.text()

    # the report, HTML and PDF
    html, pdf = w.case_actions.export_report(tmp_path / "out" / "report.html")
    text = html.read_text(encoding="utf-8")
    assert STATEMENT in text and w.session.evidence.sha256 in text and "bit-identically" in text
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF") and len(data) > 5000
    if shutil.which("pdftoppm"):
        subprocess.run(["pdftoppm", "-png", "-r", "50", "-f", "1", "-l", "1", str(pdf), str(tmp_path / "page")],
                       check=True, timeout=60)
        page = Image.open(next(tmp_path.glob("page*.png"))).convert("L")
        assert page.height > page.width and len(page.getcolors(1 << 16) or []) > 10  # text and pictures drawn
    assert case.log.entries()[-1]["action"] == "report_exported"
    assert w.case_actions.save_case()
    saved = {cid: c.image.clone() for cid, c in w.session.candidates.items()}
    w.close()

    # a new window (the app restarted) opens the case as it was
    w2 = make_window(gui_models, tmp_path / "settings2.ini")
    case2 = w2.case_actions.open_case(folder, recover=False)
    assert case2 is not None and case2.audit_check.ok and not w2.message_label.isVisible()
    assert w2.grid.candidate_ids() == list(saved) and w2.shortlist_dock.ids() == [ids[1], enforced]
    assert all((w2.session.candidates[c].image == t).all() for c, t in saved.items())
    assert w2.session.note(ids[1]) == "matches the witness's description of the hair"
    assert w2.session.region.box == (16, 10, 32, 30) and case2.examiner == "Examiner B"


def test_crash_then_recover(make_window, qtbot, gui_models: Path, tmp_path: Path, evidence_png: Path) -> None:
    folder = tmp_path / "CASE-crash"
    w, case = _start(make_window, qtbot, gui_models, evidence_png, folder)
    generate(qtbot, w, 4)
    assert w.case_actions.save_case()
    later = generate(qtbot, w, 4)
    w.session.star(later[0])
    assert w.case_actions.autosave_now() == folder / K.AUTOSAVE
    w.case_actions.timer.stop()  # the app dies here: no save, no close
    w.case_actions.case.detach()

    w2 = make_window(gui_models, tmp_path / "settings2.ini")
    assert w2.case_actions.open_case(folder, recover=False) is not None
    assert len(w2.grid.candidate_ids()) == 4  # as last saved
    case3 = w2.case_actions.open_case(folder, recover=True)
    assert case3.recovered and len(w2.grid.candidate_ids()) == 8 and w2.shortlist_dock.ids() == [later[0]]
    assert w2.case_actions.save_case() and not (folder / K.AUTOSAVE).exists()


def test_changed_original_is_warned_about(make_window, qtbot, gui_models: Path, tmp_path: Path,
                                          evidence_png: Path) -> None:
    folder = tmp_path / "CASE-hash"
    w, case = _start(make_window, qtbot, gui_models, evidence_png, folder)
    o = next(iter(case.originals.values()))
    copy = folder / o.file
    copy.chmod(0o644)
    copy.write_bytes(copy.read_bytes() + b"\0")
    # the watcher notices; Case > Check the originals says the same
    qtbot.waitUntil(lambda: "no longer matches" in w.message_label.text(), timeout=5000)
    assert w.error_dialog is not None and "no longer matches" in w.error_dialog.text()
    assert case.log.entries()[-1]["action"] == "original_mismatch"
    w.case_actions.save_case()
    w2 = make_window(gui_models, tmp_path / "settings2.ini")
    w2.case_actions.open_case(folder, recover=False)
    assert "no longer matches" in w2.message_label.text() and w2.error_dialog.isVisible()


def test_bad_case_folder_changes_nothing(make_window, gui_models: Path, tmp_path: Path, evidence_png: Path) -> None:
    w = make_window(gui_models)
    w.open_path(evidence_png)
    (tmp_path / "fake").mkdir()
    (tmp_path / "fake" / K.MANIFEST).write_text('{"format": "varsr-case", "format_version": 99}')
    assert w.case_actions.open_case(tmp_path / "fake") is None
    assert "newer VarSR Studio" in w.message_label.text() and w.session.evidence is not None
    assert w.case_actions.case is None


@pytest.mark.parametrize("action", ["show_audit_log", "export_report_dialog", "verify_regeneration"])
def test_case_menu_without_a_case_says_so(make_window, gui_models: Path, action: str) -> None:
    w = make_window(gui_models)
    getattr(w.case_actions, action)()
    assert "case first" in w.message_label.text()


def test_reopened_case_shows_its_domain(make_window, gui_models: Path, tmp_path: Path, evidence_png: Path) -> None:
    w = make_window(gui_models)
    w.open_path(evidence_png)
    w.input_panel.domain.setCurrentIndex(w.input_panel.domain.findData("plate"))
    assert w.session.domain == "plate"
    w.case_actions.new_case(tmp_path / "PLATE", "E")
    w2 = make_window(gui_models, tmp_path / "settings2.ini")
    assert w2.input_panel.domain.currentData() == "face"
    w2.case_actions.open_case(tmp_path / "PLATE", recover=False)
    assert w2.session.domain == "plate" and w2.input_panel.domain.currentData() == "plate"
    assert w2.session.n_cells == w.session.n_cells


def test_report_dialog_starts_in_the_case_folder(make_window, qtbot, gui_models: Path, tmp_path: Path,
                                                 evidence_png: Path, monkeypatch) -> None:
    folder = tmp_path / "cases" / "CASE-9"
    w, case = _start(make_window, qtbot, gui_models, evidence_png, folder)
    asked: list[str] = []
    monkeypatch.setattr(w.case_actions.shell, "ask_path", lambda title, start, f=None: asked.append(start) or "")
    w.case_actions.export_report_dialog()
    assert asked and Path(asked[0]).parent == folder / "reports" and asked[0].endswith("_report.html")
