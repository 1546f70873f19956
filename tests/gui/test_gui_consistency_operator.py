"""Issue 12, section 1, in the window: the input panel's Assumed blur picks what consistency is scored and
enforced under; the scores shown change and name it, the step is undoable and the case logs it."""

from __future__ import annotations

import json
from pathlib import Path

from core import case as K
from core.workbench import session as S
from tests.gui.helpers import WAIT_MS, generate


def _pick(w, name: str) -> None:
    """What the analyst's choice in the box does."""
    combo = w.input_panel.consistency
    i = combo.findData(name)
    combo.setCurrentIndex(i)
    combo.activated.emit(i)


def test_assumed_blur_rescores_names_the_operator_and_is_undoable(make_window, qtbot, gui_models: Path,
                                                                  evidence_png: Path, tmp_path: Path) -> None:
    w = make_window(gui_models)
    assert w.open_path(evidence_png)
    w.session.set_region(S.Region.from_box(16, 10, 32, 30))
    case = w.case_actions.new_case(tmp_path / "CASE-B", "Examiner B")
    combo = w.input_panel.consistency
    assert combo.currentData() == "ideal" and "blurred the evidence" in combo.toolTip()
    ids = generate(qtbot, w, 4)
    w.grid.select(ids[0])
    c = w.session.candidates[ids[0]]
    box = (c.l1, c.lr_psnr)
    assert "agrees with the evidence under box filter:" in w.compare.captions[2].text()

    _pick(w, "blur")
    assert w.session.consistency_operator == "blur" and c.scored_under == "blur" and (c.l1, c.lr_psnr) != box
    assert "agrees with the evidence under blur" in w.compare.captions[2].text()
    assert f"{c.lr_psnr:.1f} dB" in w.compare.captions[2].text()
    item = w.grid.item_for(ids[0])
    assert f"agrees {c.lr_psnr:.1f} dB" in item.text() and "under blur" in item.toolTip()
    logged = [json.loads(x)["details"] for x in case.log.lines if '"settings_changed"' in x]
    assert logged[-1]["consistency_operator"] == "blur"

    # Enforce consistency projects under the chosen operator; the enforced candidate says so
    w.case_actions.enforce_consistency()
    qtbot.waitUntil(lambda: len(w.grid.candidate_ids()) == 5 and not w.runner.busy, timeout=WAIT_MS)
    e = w.session.candidates[w.grid.candidate_ids()[-1]]
    assert e.recipe["consistency_operator"] == "blur" and e.scored_under == "blur" and e.lr_psnr > c.lr_psnr
    # this crisp evidence cannot come from a 0.6 px blur of any image in [0, 1]: the app says so
    assert "sharper than that blur allows" in w.message_label.text() and e.id in w.message_label.text()

    # one step of Edit > Undo: back to the box filter, the same scores as before, the box shown again
    w.menu_actions["undo"].trigger()
    assert w.session.consistency_operator == "ideal" and combo.currentData() == "ideal"
    assert (c.l1, c.lr_psnr) == box
    w.menu_actions["redo"].trigger()
    assert w.session.consistency_operator == "blur" and combo.currentData() == "blur"
    assert w.case_actions.save_case()
    m = json.loads((case.folder / K.MANIFEST).read_text(encoding="utf-8"))
    assert m["session"]["consistency_operator"] == "blur" and m["candidates"][ids[0]]["scores_operator"] == "blur"
