"""Issue 14, case side, through the real widgets: removing an original opened by mistake, an export made
before the case carried into it, work before any case recovered after a crash."""

from __future__ import annotations

from pathlib import Path

from PIL import Image
from PySide6.QtCore import Qt

from tests.gui.helpers import WAIT_MS, generate


def test_remove_an_original_that_nothing_derives_from(make_window, qtbot, gui_models: Path, evidence_png: Path,
                                                     tmp_path: Path, monkeypatch):
    w = make_window(gui_models)
    monkeypatch.setattr(w, "confirm", lambda *a, **k: True)  # "Add this image to the case?", "Remove ...?": Yes
    assert w.open_path(evidence_png)
    generate(qtbot, w, 4)
    case = w.case_actions.new_case(tmp_path / "c1", "Examiner A")
    stray = tmp_path / "test-chart.png"
    Image.new("RGB", (30, 20), (200, 0, 0)).save(stray)
    assert w.open_path(stray)
    stray_sha = w.session.evidence.sha256
    assert len(case.originals) == 2
    assert w.menu_actions["remove_original"].isEnabled()

    w.menu_actions["remove_original"].trigger()
    dlg = w.case_actions.originals_dialog
    assert dlg is not None and dlg.list.count() == 2
    by_sha = {dlg.list.item(i).data(Qt.ItemDataRole.UserRole): i for i in range(dlg.list.count())}
    dlg.list.setCurrentRow(by_sha[stray_sha])
    assert not dlg.remove_button.isEnabled() and "evidence on screen" in dlg.reason.text()
    assert w.open_path(evidence_png)  # back to the real evidence: already in the case, not asked again
    dlg.fill()
    good = w.session.evidence.sha256
    dlg.list.setCurrentRow(by_sha[good])
    assert not dlg.remove_button.isEnabled() and "4 candidate(s)" in dlg.reason.text()
    dlg.list.setCurrentRow(by_sha[stray_sha])
    assert dlg.remove_button.isEnabled()
    dlg.why.setText("opened by mistake")
    copy = case.folder / case.originals[stray_sha].file
    qtbot.mouseClick(dlg.remove_button, Qt.MouseButton.LeftButton)
    assert list(case.originals) == [good] and dlg.list.count() == 1
    last = case.log.entries()[-1]
    assert last["action"] == "original_removed" and last["actor"] == "Examiner A"
    assert last["details"]["sha256"] == stray_sha and last["details"]["why"] == "opened by mistake"
    assert w.case_actions.save_case() and not copy.exists()
    assert not w.case_actions.remove_original(good, ask=False)  # refused, with the reason shown
    assert "4 candidate(s)" in w.message_label.text() and good in case.originals


def test_an_export_before_the_case_is_in_its_log_and_report(make_window, qtbot, gui_models: Path,
                                                           evidence_png: Path, tmp_path: Path):
    w = make_window(gui_models)
    assert w.open_path(evidence_png)
    ids = generate(qtbot, w, 4)
    w.session.star(ids[0])
    assert w.export_to(tmp_path / "exports" / "leads") is not None
    assert len(w.session.exports) == 1
    made = w.session.exports[0]["utc"]
    case = w.case_actions.new_case(tmp_path / "c1", "Examiner A")
    entry = next(e for e in case.log.entries() if e["action"] == "shortlist_exported")
    assert entry["details"]["before_case"] and entry["details"]["made_utc"] == made
    assert entry["details"]["leads"] == [ids[0]]
    out = w.case_actions.export_report(tmp_path / "c1" / "reports" / "report.html")
    assert out is not None
    html = out[0].read_text(encoding="utf-8")
    assert "before the case was created" in html and made[:19].replace("T", " ") in html
    assert w.export_to(tmp_path / "exports" / "later") is not None  # with the case open: logged at once
    qtbot.waitUntil(lambda: case.log.entries()[-1]["action"] == "shortlist_exported", timeout=WAIT_MS)
    assert not case.log.entries()[-1]["details"].get("before_case") and w.session.exports == []


def test_work_before_a_case_is_autosaved_and_offered_back_after_a_crash(make_window, qtbot, gui_models: Path,
                                                                        evidence_png: Path, tmp_path: Path):
    from PySide6.QtWidgets import QMessageBox

    from varsr_gui import recovery

    settings = tmp_path / "shared.ini"  # the same user starting the app again
    w1 = make_window(gui_models, settings)
    assert w1.open_path(evidence_png)
    ids = generate(qtbot, w1, 4)
    w1.session.star(ids[2])
    w1.session.star(ids[0])
    w1.session.set_note(ids[2], "closest to the witness account")
    rec1 = w1.case_actions.recovery
    qtbot.waitUntil(lambda: rec1.folder.is_dir(), timeout=WAIT_MS)  # a few seconds after the change
    folder = rec1.autosave_now()  # the note (notes change without an event: the minute timer, or now)
    assert folder == rec1.folder and (folder / "case.json").is_file()
    rec1.timer.stop()
    rec1.soon.stop()
    recovery.LIVE.discard(folder)  # as if w1's process had been killed: its folder is left behind

    w2 = make_window(gui_models, settings)
    rec2 = w2.case_actions.recovery
    qtbot.waitUntil(lambda: rec2.offer_box is not None, timeout=WAIT_MS)
    box = rec2.offer_box
    assert "4 candidate(s), 2 starred" in box.text() and "evidence.png" in box.text()
    qtbot.mouseClick(box.button(QMessageBox.StandardButton.Yes), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: len(w2.grid.candidate_ids()) == 4, timeout=WAIT_MS)
    assert [e.candidate_id for e in w2.session.shortlist] == [ids[2], ids[0]]
    assert w2.session.note(ids[2]) == "closest to the witness account"
    for cid in ids:
        assert (w2.session.candidates[cid].image == w1.session.candidates[cid].image).all()
    assert w2.session.evidence.sha256 == w1.session.evidence.sha256 and w2.isWindowModified()
    assert not folder.exists() and rec2.folder.is_dir()  # now in w2's own recovery folder
    assert rec2.pending() == []

    case = w2.case_actions.new_case(tmp_path / "c1", "Examiner A")  # a case takes the work over
    assert case is not None and len(case.session.candidates) == 4 and not rec2.folder.exists()


def _long_report():
    from core.case.report import Report

    rep = Report(title="rows")
    put = rep.parts.append
    put('<table class="grid" width="100%"><tr><th width="8%">#</th><th width="92%">step</th></tr>')
    for i in range(150):  # audit-log-like rows of 1 to 6 lines
        put(f"<tr><td>{i}</td><td>{'step ' * (5 + (i * 37) % 70)}</td></tr>")
    put("</table>")
    for k in range(6):  # lead-like tables: a picture spanning three rows
        key = rep.add_image(f"lead_{k}", Image.new("RGB", (200, 200), (40 * k, 90, 90)))
        put('<table class="grid"><tr><td rowspan="3">')
        put(rep.img(key, 200, 200))
        put("</td><td>a</td></tr><tr><td>b</td></tr><tr><td>" + "note " * 60 + "</td></tr></table><br/>")
    return rep


def test_no_table_row_of_the_report_is_split_across_pages(qtbot, tmp_path: Path):
    from PySide6.QtCore import QSizeF

    from varsr_gui.report_pdf import cut_before_row, paginate, report_document, split_rows, tables, write_pdf

    rep = _long_report()
    page = QSizeF(600, 800)
    plain = report_document(rep)
    plain.setPageSize(page)
    assert split_rows(plain)  # as Qt lays it out, rows straddle page breaks
    doc, moved = paginate(rep, page)
    assert moved > 0 and split_rows(doc) == []
    assert doc.pageCount() <= plain.pageCount() + 1  # no page left blank
    heads = [t for t in tables(doc) if t.cellAt(0, 0).firstCursorPosition().block().text() == "#"]
    assert len(heads) > 1  # the step table carries on on the next page with its header row

    html = '<table class="grid"><tr><th>h</th></tr><tr><td>1</td></tr><tr><td>2</td></tr></table>'
    assert cut_before_row(html, 0, 2) == ('<table class="grid"><tr><th>h</th></tr><tr><td>1</td></tr></table>'
                                          '<table class="grid" style="page-break-before: always"><tr><th>h</th>'
                                          '</tr><tr><td>2</td></tr></table>')
    assert cut_before_row(html, 0, 0).startswith('<table class="grid" style="page-break-before: always">')

    out = write_pdf(rep, tmp_path / "report.pdf")  # A4 at 150 dpi, laid out the same way
    assert out.read_bytes().startswith(b"%PDF") and out.read_bytes().count(b"/Type /Page\n") >= 2


def test_a_table_header_is_never_left_alone_at_a_pages_foot(qtbot):
    from PySide6.QtCore import QSizeF

    from core.case.report import Report
    from varsr_gui.report_pdf import _extent, paginate, report_document, tables

    page = QSizeF(600, 800)

    def report(filler: int) -> Report:
        rep = Report(title="header")
        key = rep.add_image("filler", Image.new("RGB", (10, 10)))
        rep.parts.append(rep.img(key, 10, filler))
        rep.parts.append('<table class="grid" width="100%"><tr><th>#</th><th>step</th></tr>'
                         + "".join(f"<tr><td>{i}</td><td>{'step ' * 30}</td></tr>" for i in range(5)) + "</table>")
        return rep

    def pages(doc, row: int) -> int:
        return int(_extent(doc, tables(doc)[0], row)[0] // page.height())

    for filler in range(700, 800, 3):  # a filler that leaves room for the header row only
        doc = report_document(report(filler))
        doc.setPageSize(page)
        if pages(doc, 0) != pages(doc, 1):
            break
    else:
        raise AssertionError("no filler height strands the header")
    fixed, moved = paginate(report(filler), page)
    assert moved == 1 and pages(fixed, 0) == pages(fixed, 1) == 1


def test_damaged_unsaved_work_is_reported_and_not_offered_again(make_window, qtbot, gui_models: Path,
                                                                evidence_png: Path, tmp_path: Path):
    from PySide6.QtWidgets import QMessageBox

    from varsr_gui import recovery

    settings = tmp_path / "shared.ini"
    w1 = make_window(gui_models, settings)
    assert w1.open_path(evidence_png)
    generate(qtbot, w1, 4)
    rec1 = w1.case_actions.recovery
    folder = rec1.autosave_now()
    rec1.timer.stop()
    rec1.soon.stop()
    recovery.LIVE.discard(folder)  # killed
    for f in (folder / "candidates").iterdir():  # and its candidate file lost
        f.chmod(0o644)
        f.unlink()

    w2 = make_window(gui_models, settings)
    rec2 = w2.case_actions.recovery
    qtbot.waitUntil(lambda: rec2.offer_box is not None, timeout=WAIT_MS)
    qtbot.mouseClick(rec2.offer_box.button(QMessageBox.StandardButton.Yes), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "could not be recovered" in w2.message_label.text(), timeout=WAIT_MS)
    assert not w2.session.candidates and not folder.exists()
    assert folder.with_name(folder.name + ".damaged").is_dir() and rec2.pending() == []
