"""Issue 14, the app for real casework, through the real widgets: the model never enlarges the crop,
work is never lost, honest scores, a readable layout, true messages, the in-app guide."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from tests.gui.helpers import drag


@pytest.fixture(scope="module")
def two_face_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny untrained face-8 and face-16 bundles and a plate-char one."""
    from core.bundle import save_bundle
    from core.model import VarSR
    from tests.conftest import tiny_config

    root = tmp_path_factory.mktemp("models2")
    torch.manual_seed(0)
    for name in ("face-8", "face-16", "plate-char"):
        save_bundle(VarSR(tiny_config(name)), root / name)
    return root


def _frame(tmp_path: Path, size: tuple[int, int] = (64, 48)) -> Path:
    img = Image.new("RGB", size, (70, 90, 110))
    img.paste((220, 180, 150), (20, 10, 40, 34))
    p = tmp_path / "frame.png"
    img.save(p)
    return p


def test_auto_model_never_enlarges_the_crop_and_keeps_a_manual_choice(make_window, two_face_models: Path,
                                                                      tmp_path: Path):
    w = make_window(two_face_models)
    assert w.open_path(_frame(tmp_path))
    drag(w.view, (20, 10), (33, 23))  # a 13x13 face crop
    assert w.session.crop().size == (13, 13)
    panel = w.input_panel
    assert panel.model.itemText(0).startswith("Auto: face-8")
    assert w.session.chosen_model() == "face-8"
    assert "face-16 would enlarge it" in panel.model_reason.text()

    drag(w.view, (20, 10), (26, 16))  # 6x6: smaller than every model: the smallest, with a note
    assert w.session.chosen_model() == "face-8"
    assert "smaller than every model's input" in panel.notes.text()

    panel.model.setCurrentIndex(panel.model.findData("face-16"))  # the analyst's own choice
    panel.model.activated.emit(panel.model.currentIndex())
    assert w.session.chosen_model() == "face-16"
    assert "Your choice: face-16" in panel.model_reason.text() and "enlarged" in panel.model_reason.text()
    panel.domain.setCurrentIndex(panel.domain.findData("plate"))
    assert w.session.chosen_model() == "plate-char"
    panel.domain.setCurrentIndex(panel.domain.findData("face"))
    assert w.session.chosen_model() == "face-16"  # kept, not back to Auto
    assert panel.model.currentData() == "face-16"
