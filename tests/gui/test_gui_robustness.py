"""The app with hostile inputs and long sessions: a dialog for every unreadable kind (nothing changed),
a note for files read with a caveat (first frame, EXIF rotation), and a bounded candidate grid."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt

from core.workbench import session as S
from tests.gui.helpers import WAIT_MS
from tests.helpers.inputs import make_inputs


def test_every_unreadable_kind_gives_a_dialog_and_changes_nothing(make_window, gui_models: Path, tmp_path: Path,
                                                                  evidence_png: Path, dialogs) -> None:
    w = make_window(gui_models)
    assert w.open_path(evidence_png)
    good = w.session.evidence
    bad = {n: k for n, k in make_inputs(tmp_path / "in").items() if not k.ok}
    for name, k in bad.items():
        before = len(dialogs)
        assert not w.open_path(k.path), name
        assert len(dialogs) == before + 1, name
        box = dialogs[-1]
        assert box.windowTitle() == "Could not open the image"
        assert k.path.name in box.text() and k.words in box.informativeText(), (name, box.informativeText())
        assert "Traceback" not in box.text() + box.informativeText()
        assert w.session.evidence is good, name
    assert w.recent_files()[0] == str(evidence_png.resolve())  # bad files never enter the recent list


def test_caveats_are_shown_and_recorded(make_window, gui_models: Path, tmp_path: Path, dialogs) -> None:
    w = make_window(gui_models)
    kinds = make_inputs(tmp_path / "in")
    assert w.open_path(kinds["animated.gif"].path)
    assert w.message_label.isVisible() and "only the first" in w.message_label.text()
    assert w.session.source()["evidence"]["load"]["frames"] == 3
    assert w.open_path(kinds["exif_orientation_6.jpg"].path)
    assert "EXIF orientation" in w.message_label.text()
    assert w.session.evidence.image.size == (24, 32)
    assert w.open_path(kinds["plain.bmp"].path)
    assert not w.message_label.isVisible()  # a plain file: no caveat left over from the last one
    assert dialogs == []


def test_old_sets_leave_the_grid_when_the_history_is_full(make_window, qtbot, gui_models: Path,
                                                          evidence_png: Path) -> None:
    w = make_window(gui_models)
    w.session.max_candidates = 8
    w.open_path(evidence_png)
    w.session.set_region(S.Region.from_box(16, 10, 32, 30))
    sets = []
    for seed in range(4):
        w.input_panel.seed.setValue(seed)
        w.input_panel.n.setValue(4)
        before = w.session.sets[-1].id if w.session.sets else None
        qtbot.mouseClick(w.input_panel.generate, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda b=before: bool(w.session.sets) and w.session.sets[-1].id != b
                        and not w.runner.busy, timeout=WAIT_MS)
        sets.append(w.session.sets[-1])
        if seed == 0:
            w.grid.select(sets[0].candidate_ids[2])
            w.toggle_star()
    kept = [s.id for s in w.session.sets]
    assert kept == [sets[2].id, sets[3].id]
    assert w.grid.candidate_ids() == sets[2].candidate_ids + sets[3].candidate_ids
    assert w.grid.count() == 2 + 8  # two headers, eight thumbnails
    starred = sets[0].candidate_ids[2]
    assert starred in w.session.candidates and w.shortlist_dock.ids() == [starred]
    assert "Cleared the oldest candidate set" in w.statusBar().currentMessage()
    assert all(w.session.candidates.get(c) is None for c in sets[1].candidate_ids)


_VOID_CALLS = """
import sys
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QGuiApplication, QImage
app = QGuiApplication([])
if sys.argv[1] == "guard":
    from varsr_gui import none_guard
    none_guard.install(app)
class Obj(QObject):
    changed = Signal(bool)
obj = Obj()
obj.changed.connect(lambda flag: None)
img = QImage(1, 1, QImage.Format.Format_RGB888)
for i in range(300_000):
    img.fill(0)  # a Qt call that returns nothing
    obj.changed.emit(i % 2 == 0)  # a signal from Python to a Python slot
    if i % 50_000 == 0 and sys.argv[1] == "guard":
        none_guard.top_up()  # what the guard's timer does every second in the app
print("survived")
"""


def test_none_guard_survives_many_void_qt_calls(tmp_path: Path) -> None:
    """PySide6 6.12.0 on Python 3.11 loses a reference to None per void Qt call and to True per emit;
    300,000 of each (a long session's worth) must not abort the process once the app's guard is in."""
    import os
    import subprocess
    import sys

    from tests.conftest import REPO
    from varsr_gui import none_guard

    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(REPO)}
    script = tmp_path / "void_calls.py"
    script.write_text(_VOID_CALLS)
    guarded = subprocess.run([sys.executable, str(script), "guard"], capture_output=True, text=True, env=env,
                             timeout=120)
    assert guarded.returncode == 0 and "survived" in guarded.stdout, guarded.stderr[-500:]
    if none_guard.leaks_none():  # the bug is present here: show that it is fatal without the guard
        bare = subprocess.run([sys.executable, str(script), "bare"], capture_output=True, text=True, env=env,
                              timeout=120)
        assert bare.returncode != 0 and "_dealloc: deallocating" in bare.stderr


def test_finished_tasks_and_what_they_hold_are_released(qtbot) -> None:
    """A long session must not keep every finished task (and the candidates its closures hold)."""
    import gc
    import weakref

    from varsr_gui.workers import TaskRunner

    class Payload:
        pass

    runner = TaskRunner()
    refs = []
    for i in range(5):
        payload = Payload()
        refs.append(weakref.ref(payload))
        results = []
        runner.submit(f"t{i}", lambda ctx, p=payload: [p], results.append)
        qtbot.waitUntil(lambda r=results: bool(r) and not runner.busy, timeout=WAIT_MS)
        del payload, results
    runner.shutdown()
    qtbot.wait(10)
    gc.collect()
    assert [r() for r in refs] == [None] * 5


def test_a_region_outside_the_image_says_why(make_window, gui_models: Path, evidence_png: Path) -> None:
    w = make_window(gui_models)
    w.open_path(evidence_png)
    w.session.set_region(S.Region.from_box(100, 100, 140, 140))
    assert "outside the image" in w.input_panel.notes.text()
    w.session.set_region(S.Region.from_box(-10, -10, 20, 20))
    assert "clipped to the image" in w.input_panel.notes.text()
