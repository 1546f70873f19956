"""Screenshots of VarSR Studio's main states, for the docs (run it under Xvfb, then look at them).

    xvfb-run -s "-screen 0 1600x1000x24" .venv/bin/python tools/screenshots.py [--out docs/screenshots]

Drives the real main window with the installed bundles (``resources/models``) through the states
an investigator goes through, and saves:

  01_open.png              evidence loaded, the face selected by its eye centres (the ROI)
  02_candidates.png        a grid of candidates and the large view (input, bicubic, candidate)
  03_sliders.png           an attribute slider moved, the derived candidate beside its parent
  04_plate.png             a licence plate cut into character cells, whole-plate candidates
  05_shortlist_export.png  starred leads with a note, two compared, the shortlist exported

The evidence is made from real images in ``../shared/data`` (a CelebA face shrunk until the face
is about 16 px wide; a plate crop from ``plates/lprnet-cn-crops``); without them the script says
so and stops. Settings go to a temporary file, exports to a temporary folder.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
CELEBA = DATA / "celeba" / "img_align_celeba"
PLATES = DATA / "plates" / "lprnet-cn-crops"
SIZE = (1600, 1000)
FACE_PX = 16  # width of the face in the evidence, pixels
FACES = ("000004.jpg", "000001.jpg", "000009.jpg")  # a row of people; the middle one is the subject
PLATE = "浙D9594H.jpg"
#: The characters' row in that 94x24 crop (x0, y0, x1, y1), and the interior cell boundaries (2
#: characters, the dot, 5 characters) as fractions of its width, measured on the crop.
PLATE_ROW = (3.0, 3.5, 91.0, 20.5)
PLATE_BOUNDS = [0.136, 0.307, 0.483, 0.625, 0.75, 0.875]
PLATE_SCALE = 0.29  # characters about 3 px wide, 5 px tall


def _need_data() -> list[str]:
    missing = [str(p) for p in (CELEBA / FACES[1], PLATES) if not p.exists()]
    if PLATES.is_dir() and not (PLATES / PLATE).exists() and not any(PLATES.glob("*.jpg")):
        missing.append(str(PLATES / "*.jpg"))
    return missing


def face_scene(tmp: Path) -> tuple[Path, tuple[tuple[float, float], tuple[float, float]]]:
    """A row of CelebA photos shrunk so each face is ~FACE_PX wide; the middle one's eye centres."""
    from PIL import Image

    from core.search.face_detect import detect_faces

    photos = []
    for name in FACES:
        path = CELEBA / name
        if not path.exists():
            path = sorted(CELEBA.glob("*.jpg"))[len(photos)]
        with Image.open(path) as im:
            photos.append(im.convert("RGB"))
    subject = photos[1]
    found = detect_faces(subject)
    if not found:
        raise SystemExit(f"MTCNN found no face in {FACES[1]}: pick another image")
    f = max(found, key=lambda p: p.probability)
    k = FACE_PX / (f.box[2] - f.box[0])
    small = [p.resize((max(1, round(p.width * k)), max(1, round(p.height * k))), Image.Resampling.LANCZOS)
             for p in photos]
    w = sum(p.width for p in small)
    h = max(p.height for p in small)
    scene = Image.new("RGB", (w, h), (60, 60, 60))
    x = 0
    for i, p in enumerate(small):
        scene.paste(p, (x, 0))
        if i == 1:
            x1 = x
        x += p.width
    out = tmp / "evidence_group.png"
    scene.save(out)
    sx, sy = small[1].width / subject.width, small[1].height / subject.height
    eyes = ((x1 + f.left_eye[0] * sx, f.left_eye[1] * sy), (x1 + f.right_eye[0] * sx, f.right_eye[1] * sy))
    return out, eyes


def plate_scene(tmp: Path) -> tuple[Path, tuple[float, float, float, float]]:
    """The plate shrunk until each character is a few pixels wide, on a car-grey background."""
    from PIL import Image

    path = PLATES / PLATE
    if not path.exists():
        path = sorted(PLATES.glob("*.jpg"))[0]
    with Image.open(path) as im:
        plate = im.convert("RGB")
    k = PLATE_SCALE
    small = plate.resize((round(plate.width * k), round(plate.height * k)), Image.Resampling.LANCZOS)
    scene = Image.new("RGB", (64, 40), (48, 52, 58))
    scene.paste((28, 30, 34), (0, 26, 64, 40))  # bumper
    x0, y0 = 18, 22
    scene.paste(small, (x0, y0))
    out = tmp / "evidence_plate.png"
    scene.save(out)
    sx, sy = small.width / plate.width, small.height / plate.height
    a, b, c, d = PLATE_ROW
    return out, (x0 + a * sx, y0 + b * sy, x0 + c * sx, y0 + d * sy)


class Driver:
    """Runs the event loop until something holds, and saves window grabs."""

    def __init__(self, app, win, out: Path) -> None:
        self.app, self.win, self.out = app, win, out

    def wait(self, cond, timeout_s: float = 300.0, what: str = "") -> None:
        end = time.monotonic() + timeout_s
        while not cond():
            if time.monotonic() > end:
                raise TimeoutError(f"timed out waiting for {what or cond}")
            self.app.processEvents()
            time.sleep(0.01)

    def settle(self, ms: int = 400) -> None:
        end = time.monotonic() + ms / 1000
        while time.monotonic() < end:
            self.app.processEvents()
            time.sleep(0.01)

    def generate(self, n: int) -> list[str]:
        before = len(self.win.grid.candidate_ids())
        self.win.input_panel.n.setValue(n)
        self.win.input_panel.generate.click()
        self.wait(lambda: len(self.win.grid.candidate_ids()) >= before + 1 and not self.win.runner.busy,
                  what="candidates")
        if self.win.message_label.isVisible() and len(self.win.grid.candidate_ids()) == before:
            raise SystemExit(f"generation failed: {self.win.message_label.text()}")
        return self.win.grid.candidate_ids()[before:]

    def shot(self, name: str) -> Path:
        self.settle()
        path = self.out / name
        self.win.grab().save(str(path), "PNG")
        print(f"saved {path.relative_to(REPO) if path.is_relative_to(REPO) else path}")
        return path


def run(out: Path) -> int:
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from core.perf import tune_cpu
    from core.workbench import session as S
    from varsr_gui.main_window import MainWindow

    tune_cpu()
    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setApplicationName("VarSR Studio")
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="varsr_shots_") as d:
        tmp = Path(d)
        settings = QSettings(str(tmp / "settings.ini"), QSettings.Format.IniFormat)
        win = MainWindow(settings=settings)
        win.resize(*SIZE)
        win.show()
        drv = Driver(app, win, out)
        drv.settle(300)
        if not win.session.installed:
            print("no model bundles in resources/models: the screenshots would show an empty app")
            return 1

        # 1. evidence, the subject's face selected by its eye centres
        evidence, eyes = face_scene(tmp)
        win.open_path(evidence)
        win.session.set_region(S.Region("eyes", eyes=eyes))
        win.view.fit()
        drv.shot("01_open.png")

        # 2. candidates and the large view
        win.input_panel.seed.setValue(7)
        ids = drv.generate(16)
        win.grid.select(ids[5])
        win.compare.fit()
        drv.shot("02_candidates.png")

        # 3. a slider moved: the derived candidate beside its parent (two leads already starred)
        for cid in (ids[2], ids[9]):
            win.session.star(cid)
        win.grid.select(ids[5])
        key = next((k for k in ("diff/Smiling", "mean/Smiling") if k in win.slider_dock.sliders),
                   next(iter(win.slider_dock.sliders), None))
        if key is not None:
            win.slider_dock.set_value(key, 1.6)
            win.slider_dock.scroll.ensureWidgetVisible(win.slider_dock.sliders[key], 0, 80)
            win.slider_dock.flush()
            drv.wait(lambda: win.session.preview is not None and not win.runner.busy, what="the steered candidate")
        drv.shot("03_sliders.png")

        # 5. shortlist: the steered one kept and starred, two more, a note, compare two, export
        if win.session.preview is not None:
            win.toggle_star()
        win.shortlist_dock.list.setCurrentRow(2)
        win.shortlist_dock.note.setPlainText("Smile matches the witness statement; hair length unknown.")
        first = win.shortlist_dock.ids()[0]
        win.compare_two(win.shortlist_dock.ids()[2], first)
        win.compare.fit()
        exported = win.export_to(tmp / "case-0417-leads")
        if exported is None:
            print(f"export failed: {win.message_label.text()}")
        drv.shot("05_shortlist_export.png")

        # 4. a licence plate in character cells
        plate, box = plate_scene(tmp)
        win.open_path(plate)
        win.input_panel.domain.setCurrentIndex(win.input_panel.domain.findData("plate"))
        win.input_panel.cells.setValue(7)
        win.session.set_region(S.Region.from_box(*box))
        win.session.set_cells(7, PLATE_BOUNDS)
        win.view.fit()
        pids = drv.generate(16)
        win.grid.select(pids[3])
        if len(win.cell_spins) > 2:
            win.cell_spins[2].setValue(8)  # another sample for the third character
        win.compare.fit()
        drv.shot("04_plate.png")

        win.runner.shutdown()
        win.confirm_quit = False  # a script: no question about unsaved work
        win.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Save screenshots of VarSR Studio's main states.")
    p.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots", help="folder for the PNGs")
    p.add_argument("--readme", type=str, default="03_sliders.png",
                   help="which screenshot to copy to docs/screenshot.png ('' for none)")
    args = p.parse_args(argv)
    missing = _need_data()
    if missing:
        print("skipping the screenshots: the example data is not here:\n  " + "\n  ".join(missing))
        return 0
    if not os.environ.get("DISPLAY") and not os.environ.get("QT_QPA_PLATFORM"):
        print('no display: run it under xvfb-run -s "-screen 0 1600x1000x24"; using offscreen instead')
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    sys.path.insert(0, str(REPO))
    from varsr_gui.app import prepare_environment

    prepare_environment()
    rc = run(args.out)
    if rc == 0 and args.readme:
        shutil.copyfile(args.out / args.readme, REPO / "docs" / "screenshot.png")
        print(f"copied {args.readme} to docs/screenshot.png")
    return rc


if __name__ == "__main__":
    sys.exit(main())
