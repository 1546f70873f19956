"""The shortlist export runs in the worker with progress and Cancel; a cancelled export leaves nothing.
A case that cannot be opened is never written to, even when the analyst saves afterwards."""

from __future__ import annotations

import threading
from pathlib import Path

from PySide6.QtCore import Qt

import core.workbench.export as E
from core import case as K
from tests.gui.helpers import WAIT_MS, generate


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_export_in_the_worker_cancelled_half_way_leaves_nothing(make_window, qtbot, gui_models: Path,
                                                                evidence_png: Path, tmp_path: Path,
                                                                monkeypatch) -> None:
    w = make_window(gui_models)
    w.open_path(evidence_png)
    case = w.case_actions.new_case(tmp_path / "cases" / "C-1", "Examiner E")
    ids = generate(qtbot, w, 4)
    for cid in ids[:3]:
        w.session.star(cid)
    reached, release = threading.Event(), threading.Event()
    real_save, calls = E.save_png, []

    def slow_save(img, path, extra=None):  # the worker stops in the second lead until the test lets it go
        calls.append(Path(path).name)
        if len(calls) == 3:
            reached.set()
            release.wait(WAIT_MS / 1000)
        real_save(img, path, extra)

    monkeypatch.setattr(E, "save_png", slow_save)
    out = tmp_path / "exports" / "leads"
    task = w.start_export(out)
    assert task is not None and w.runner.busy
    qtbot.waitUntil(reached.is_set, timeout=WAIT_MS)
    # the GUI thread is free while the worker writes: progress shows, Cancel is offered
    qtbot.waitUntil(lambda: w.input_panel.progress.value() >= 1, timeout=WAIT_MS)
    assert w.input_panel.progress.maximum() == 4 and w.input_panel.cancel.isEnabled()
    assert "Esc cancels" in w.statusBar().currentMessage()
    qtbot.mouseClick(w.input_panel.cancel, Qt.MouseButton.LeftButton)
    release.set()
    qtbot.waitUntil(lambda: not w.runner.busy, timeout=WAIT_MS)

    assert "Export cancelled: nothing was exported" in w.statusBar().currentMessage()
    assert w.error_dialog is None or not w.error_dialog.isVisible()
    assert not out.exists() and list(out.parent.iterdir()) == []  # no target, no hidden partial folder
    assert not any(e["action"] == "shortlist_exported" for e in case.log.entries())
    assert len(calls) >= 3

    monkeypatch.setattr(E, "save_png", real_save)
    assert w.export_to(out) == out and (out / "manifest.json").is_file()  # the same folder works afterwards
    assert case.log.entries()[-1]["action"] == "shortlist_exported"
    assert case.log.entries()[-1]["details"]["leads"] == ids[:3]


def test_escape_cancels_an_export_like_a_generation(make_window, qtbot, gui_models: Path, evidence_png: Path,
                                                   tmp_path: Path, monkeypatch) -> None:
    w = make_window(gui_models)
    w.open_path(evidence_png)
    ids = generate(qtbot, w, 4)
    w.session.star(ids[0])
    reached, release = threading.Event(), threading.Event()
    real_save = E.save_png

    def slow_save(img, path, extra=None):
        reached.set()
        release.wait(WAIT_MS / 1000)
        real_save(img, path, extra)

    monkeypatch.setattr(E, "save_png", slow_save)
    out = tmp_path / "leads"
    w.start_export(out)
    qtbot.waitUntil(reached.is_set, timeout=WAIT_MS)
    w.cancel()  # what Esc (Generate > Cancel) does
    release.set()
    qtbot.waitUntil(lambda: not w.runner.busy, timeout=WAIT_MS)
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".leads")]
    assert "cancelled" in w.statusBar().currentMessage()


def test_a_case_that_cannot_be_opened_is_never_written(make_window, qtbot, gui_models: Path, evidence_png: Path,
                                                        tmp_path: Path) -> None:
    w = make_window(gui_models)
    w.open_path(evidence_png)
    broken = tmp_path / "cases" / "BROKEN"
    w.case_actions.new_case(broken, "Examiner E")
    generate(qtbot, w, 4)
    assert w.case_actions.save_case()
    current = w.case_actions.new_case(tmp_path / "cases" / "CURRENT", "Examiner E")  # closes BROKEN
    text = (broken / K.MANIFEST).read_bytes()
    for damage in (text[: len(text) // 2], text.replace(b'"format_version": 1', b'"format_version": 99')):
        (broken / K.MANIFEST).write_bytes(damage)
        before = _files(broken)
        assert w.case_actions.open_case(broken) is None
        assert w.error_dialog is not None and w.error_dialog.windowTitle() == "The case could not be opened"
        assert "Nothing was changed" in w.error_dialog.informativeText()
        assert w.case_actions.case is current  # the open case stays open
        generate(qtbot, w, 4)
        assert w.case_actions.save_case()  # saves the open case, in its own folder
        w.case_actions.autosave_now()
        assert _files(broken) == before


def test_opening_a_large_case_loads_only_the_newest_sets(make_window, qtbot, gui_models: Path, evidence_png: Path,
                                                         tmp_path: Path) -> None:
    w = make_window(gui_models)
    w.open_path(evidence_png)
    folder = tmp_path / "cases" / "BIG"
    w.case_actions.new_case(folder, "Examiner E")
    first = generate(qtbot, w, 4)
    generate(qtbot, w, 4)
    newest = generate(qtbot, w, 4)
    w.session.star(first[1])
    assert w.case_actions.save_case()
    manifest = (folder / K.MANIFEST).read_bytes()
    w.session.max_candidates = 6  # as if the case held more than the app's bound (1024)
    w.case_actions.new_case(tmp_path / "cases" / "OTHER", "Examiner E")
    case = w.case_actions.open_case(folder)
    assert case is not None and w.grid.candidate_ids() == newest
    assert set(w.session.candidates) == {*newest, first[1]} and w.shortlist_dock.ids() == [first[1]]
    assert "left on disk" in w.statusBar().currentMessage()
    assert w.case_actions.save_case()
    after = K.read_case(folder)  # every set is still in the case
    assert sum(len(c) for _, c in after.sets) == 12 and (folder / K.MANIFEST).read_bytes() != manifest
