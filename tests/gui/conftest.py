"""GUI fixtures: a models folder with tiny untrained bundles, a window with private settings."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from PIL import Image

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(scope="session")
def gui_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """resources/models stand-in: tiny face-8 (with attributes) and plate-char bundles."""
    from core.model.bundle import save_bundle
    from core.model.varsr import VarSR
    from tests.conftest import tiny_config

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    face = VarSR(tiny_config("face-8"))
    face.attributes = {"mean/Male": torch.randn(16), "diff/Smiling": torch.randn(16)}
    save_bundle(face, root / "face-8")
    save_bundle(VarSR(tiny_config("plate-char")), root / "plate-char")
    return root


@pytest.fixture
def evidence_png(tmp_path: Path) -> Path:
    img = Image.new("RGB", (48, 40), (70, 90, 110))
    img.paste((220, 180, 150), (16, 10, 32, 30))
    img.paste((30, 30, 30), (19, 16, 22, 18))
    img.paste((30, 30, 30), (26, 16, 29, 18))
    p = tmp_path / "evidence.png"
    img.save(p)
    return p


@pytest.fixture
def make_window(qtbot, tmp_path: Path):
    """``make_window(models_root)`` -> a shown MainWindow; workers are stopped at teardown."""
    from PySide6.QtCore import QSettings

    from varsr_gui.main_window import MainWindow

    made = []

    def make(models_root: Path, settings_file: Path | None = None) -> MainWindow:
        settings = QSettings(str(settings_file or tmp_path / "settings.ini"), QSettings.Format.IniFormat)
        w = MainWindow(models_root=models_root, settings=settings)
        assert w.confirm_quit  # the app asks before closing with unsaved work ...
        w.confirm_quit = False  # ... but pytest-qt closes windows before fixtures end: no modal question then
        qtbot.addWidget(w)
        w.show()
        made.append(w)
        return w

    yield make
    for w in made:
        w.confirm_quit = False
        w.runner.shutdown()


@pytest.fixture
def dialogs(monkeypatch) -> list:
    """QMessageBoxes the window opens, captured instead of shown."""
    from PySide6.QtWidgets import QMessageBox

    from varsr_gui import main_window

    shown: list[QMessageBox] = []

    class CapturingBox(QMessageBox):
        def open(self) -> None:
            shown.append(self)

        def exec(self) -> int:
            shown.append(self)
            return int(QMessageBox.StandardButton.Ok.value)

    monkeypatch.setattr(main_window, "QMessageBox", CapturingBox)
    return shown
