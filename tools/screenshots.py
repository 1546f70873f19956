"""Screenshots of VarSR Studio's main states, for the docs (run it under Xvfb, then look at them).

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python tools/screenshots.py [--out docs/screenshots]

Drives the real main window with the installed bundles (``resources/models``) through the states
an investigator goes through, and saves:

  01_open.png              evidence loaded, the face selected by its eye centres (the ROI)
  02_candidates.png        a grid of candidates and the large view (input, bicubic, candidate)
  03_sliders.png           an attribute slider moved, the derived candidate beside its parent
  04_plate.png             a licence plate cut into character cells, whole-plate candidates
  05_shortlist_export.png  starred leads with a note, two compared, the shortlist exported
  06_case_new.png          File > New case: the case details (examiner, number, title, agency)
  07_face_search.png       the face search dock: a gallery indexed, searched with the face candidates
  08_plate_search.png      the plate search dock: each position's alternatives, ranked strings, registry
  09_case_audit.png        the case open (status bar) and Case > Audit log, every step hash-chained
  10_video.png             the video dock: a clip opened, the plate tracked, the frames combined
  11_report_page1.png      the case report (PDF), its first page: the originals, regions of interest outlined
  12_report_shortlist.png  the report's shortlist page: the leads, each with its recipe and scores

The evidence is made from real images in ``../shared/data`` (a CelebA test-split face shrunk until
the face is about 16 px wide; a plate crop from ``plates/lprnet-cn-crops``); the face gallery is
CelebA test-split photos (the subject's other photos among other people's), the plate registry
holds the true plate and near neighbours, the clip is the plate moving a pixel or so per frame
(written with PyAV). Without the data the script says so and stops. Settings, the case, the
gallery, the registry, the clip and exports go to a temporary folder; the report pages are
rendered with ``pdftoppm`` (poppler-utils).
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
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
#: A row of people; the middle one is the subject, a CelebA test-split identity (never trained on) with
#: five more photos in the data, which go into the face search's gallery.
FACES = ("000004.jpg", "000218.jpg", "000009.jpg")
GALLERY_OTHERS = 15  # other test-split people in the gallery, a photo or two each
PLATE = "浙D9594H.jpg"
#: The characters' row in that 94x24 crop (x0, y0, x1, y1), and the interior cell boundaries (2
#: characters, the dot, 5 characters) as fractions of its width, measured on the crop.
PLATE_ROW = (3.0, 3.5, 91.0, 20.5)
PLATE_BOUNDS = [0.136, 0.307, 0.483, 0.625, 0.75, 0.875]
PLATE_SCALE = 0.52  # characters about 6 px wide, 9 px tall: the plate-4x8 model
#: The plate search reads the plate's six Latin characters (the reader knows 0-9 and A-Z, not the province
#: character): the registry holds the true plate, near neighbours (a character or two off) and others.
REGISTRY = [("D9594H", "Silver hatchback"), ("D9594N", "Black SUV"), ("D9S94H", "White van"),
            ("D8594H", "Red saloon"), ("B9594H", "Blue lorry"), ("D9591H", "Silver saloon"),
            ("D6594H", "Black saloon"), ("D95941", "White SUV"), ("A12345", "Taxi"), ("E7K332", "Delivery van"),
            ("DB594H", "Green pickup"), ("D9594B", "Grey estate")]
CLIP_SIZE = (160, 96)  # the video: a street-camera clip, the plate a few pixels tall
CLIP_FRAMES = 30
CLIP_SCALE = 0.5  # the plate in the clip: 47x12 px


def _need_data() -> list[str]:
    missing = [str(p) for p in (CELEBA / FACES[1], CELEBA.parent / "identity_CelebA.txt", PLATES) if not p.exists()]
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


def small_plate(k: float):
    """The demo plate photo (or the first crop there) reduced by ``k``, and the photo's size."""
    from PIL import Image

    path = PLATES / PLATE
    if not path.exists():
        path = sorted(PLATES.glob("*.jpg"))[0]
    with Image.open(path) as im:
        plate = im.convert("RGB")
    return plate.resize((round(plate.width * k), round(plate.height * k)), Image.Resampling.LANCZOS), plate.size


def plate_scene(tmp: Path) -> tuple[Path, tuple[float, float, float, float]]:
    """The plate shrunk until each character is a few pixels wide, on a car-grey background."""
    from PIL import Image

    small, (pw, ph) = small_plate(PLATE_SCALE)
    scene = Image.new("RGB", (80, 48), (48, 52, 58))
    scene.paste((28, 30, 34), (0, 30, 80, 48))  # bumper
    x0, y0 = 18, 25
    scene.paste(small, (x0, y0))
    out = tmp / "evidence_plate.png"
    scene.save(out)
    sx, sy = small.width / pw, small.height / ph
    a, b, c, d = PLATE_ROW
    return out, (x0 + a * sx, y0 + b * sy, x0 + c * sx, y0 + d * sy)


def latin_part(box: tuple[float, float, float, float]) -> tuple[tuple[float, float, float, float], list[float]]:
    """The plate row's six Latin characters (after the province character): their box and cell bounds."""
    f0 = PLATE_BOUNDS[0]
    x0, y0, x1, y1 = box
    return (x0 + f0 * (x1 - x0), y0, x1, y1), [(b - f0) / (1 - f0) for b in PLATE_BOUNDS[1:]]


def face_gallery(tmp: Path) -> tuple[Path, str]:
    """A CSV gallery of CelebA test-split photos: the subject's other photos (one record) among other
    test-split people's; returns the CSV and the subject's record id."""
    from core.data.split import in_split

    have = {p.name for p in CELEBA.glob("*.jpg")}
    ids: dict[str, list[str]] = {}
    for line in (CELEBA.parent / "identity_CelebA.txt").read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] in have:
            ids.setdefault(parts[1], []).append(parts[0])
    who = next((i for i, files in ids.items() if FACES[1] in files), None)
    folder = tmp / "gallery"
    folder.mkdir()
    rows = []
    if who is not None:
        for name in sorted(ids[who]):
            if name != FACES[1]:  # the evidence's own photo is not in the gallery
                rows.append((name, f"P-{who}"))
    others = sorted((i for i in ids if i != who and in_split(f"celeba:{i}", "test")), key=lambda i: ids[i][0])
    for i in others[:GALLERY_OTHERS]:
        for name in sorted(ids[i])[:2]:
            if name not in FACES:
                rows.append((name, f"P-{i}"))
    for name, _ in rows:
        shutil.copyfile(CELEBA / name, folder / name)
    out = folder / "gallery.csv"
    with out.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["path", "record_id"])
        w.writerows(rows)
    return out, f"P-{who}"


def plate_registry(tmp: Path) -> Path:
    """A small registry CSV: the true plate, its near neighbours and a few others."""
    out = tmp / "registry.csv"
    with out.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["plate", "vehicle"])
        w.writerows(REGISTRY)
    return out


def plate_clip(tmp: Path) -> tuple[Path, list[tuple[float, float, float, float]]]:
    """A short clip of the plate on a car-grey background, moving about a pixel per frame (PyAV);
    the character row's box in each frame."""
    import numpy as np
    from PIL import Image

    from core.video.synthetic import write_clip

    k = CLIP_SCALE
    small, _ = small_plate(k)
    w, h = CLIP_SIZE
    rng = np.random.default_rng(3)
    base = Image.new("RGB", (w, h), (70, 74, 80))
    base.paste((40, 42, 48), (0, 56, w, h))  # the bumper
    base = np.asarray(base).astype(np.int16) + rng.integers(-6, 7, (h, w, 3))
    frames, boxes = [], []
    a, b, c, d = PLATE_ROW
    for i in range(CLIP_FRAMES):
        x, y = 30 + round(i * 1.3), 50 + i // 6
        f = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
        f.paste(small, (x, y))
        frames.append(np.asarray(f))
        boxes.append((x + a * k, y + b * k, x + c * k, y + d * k))
    return write_clip(tmp / "street_cam.mp4", frames, fps=25, gop=6), boxes


def render_pdf(pdf: Path, out: Path, names: dict[str, int | str]) -> None:
    """Render report pages to PNG with poppler's pdftoppm: ``names`` maps a file name to a page number,
    or to a text the page must contain (the first page that has it, found with pdftotext)."""
    if shutil.which("pdftoppm") is None:
        print("pdftoppm is missing (apt-get install poppler-utils): the report pages are not rendered")
        return
    pages = int(next(line.split()[-1] for line in subprocess.run(
        ["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout.splitlines()
        if line.startswith("Pages:")))
    for name, want in names.items():
        page = want if isinstance(want, int) else None
        if page is None:
            for n in range(1, pages + 1):
                text = subprocess.run(["pdftotext", "-f", str(n), "-l", str(n), str(pdf), "-"],
                                      capture_output=True, text=True, check=True).stdout
                if str(want).lower() in text.lower():
                    page = n
                    break
        if page is None:
            print(f"no page of the report has {want!r}: {name} not made")
            continue
        stem = out / Path(name).stem
        subprocess.run(["pdftoppm", "-f", str(page), "-l", str(page), "-r", "80", "-png", "-singlefile",
                        str(pdf), str(stem)], check=True)
        print(f"saved {name} (report page {page} of {pages})")


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

    def shot(self, name: str, dialog=None) -> Path:
        """Save the window; with ``dialog``, the dialog drawn over it where it stands on the screen, with a
        title bar (Xvfb has no window manager to draw one, and a window grab leaves top-levels out)."""
        from PySide6.QtCore import QPoint, QRect, Qt
        from PySide6.QtGui import QColor, QFont, QPainter, QPen

        self.settle()
        path = self.out / name
        pm = self.win.grab()
        if dialog is not None:
            bar = 26
            at = dialog.mapToGlobal(QPoint(0, 0)) - self.win.mapToGlobal(QPoint(0, 0))
            top = QRect(at.x(), at.y() - bar, dialog.width(), bar)
            p = QPainter(pm)
            p.fillRect(top.adjusted(-4, -4, 4, 0), QColor(0, 0, 0, 60))  # a shadow
            p.fillRect(top, QColor("#3c3f46"))
            p.setPen(QColor("white"))
            f = QFont(p.font())
            f.setBold(True)
            p.setFont(f)
            p.drawText(top.adjusted(10, 0, 0, 0), int(Qt.AlignmentFlag.AlignVCenter), dialog.windowTitle())
            p.drawPixmap(at, dialog.grab())
            p.setPen(QPen(QColor("#3c3f46"), 2))
            p.drawRect(QRect(at.x(), at.y() - bar, dialog.width(), dialog.height() + bar))
            p.end()
        pm.save(str(path), "PNG")
        print(f"saved {path.relative_to(REPO) if path.is_relative_to(REPO) else path}")
        return path

    def place(self, dialog, x: int, y: int) -> None:
        """Put a dialog at (x, y) of the window (its title bar drawn above by :meth:`shot`)."""
        from PySide6.QtCore import QPoint

        dialog.move(self.win.mapToGlobal(QPoint(x, y)))
        self.settle(200)


def run(out: Path, keep_pdf: Path | None = None) -> int:
    from PySide6.QtCore import QSettings, Qt, QTimer
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
        win.move(0, 0)
        win.show()
        drv = Driver(app, win, out)
        drv.settle(300)
        if not win.session.installed:
            print("no model bundles in resources/models: the screenshots would show an empty app")
            return 1
        # The script answers the file dialogs and questions an analyst would (the real actions run)
        case_dir = tmp / "elm-street-robbery"
        report_html = case_dir / "reports" / "elm-street-robbery_report.html"
        win.ask_path = lambda title, start, name_filter=None: str(report_html if "report" in title else case_dir)
        win.confirm = lambda *a, **k: True  # yes: further evidence goes into the open case

        # 1. evidence, the subject's face selected by its eye centres
        evidence, eyes = face_scene(tmp)
        win.open_path(evidence)
        win.session.set_region(S.Region("eyes", eyes=eyes))
        win.view.fit()
        drv.shot("01_open.png")

        # 2. candidates and the large view
        win.input_panel.seed.setValue(7)
        ids = drv.generate(16)
        win.grid.select(ids[3])
        win.grid.scrollToTop()  # the set's header and its first candidates
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
        win.shortlist_dock.raise_()
        win.shortlist_dock.list.setCurrentRow(2)
        win.shortlist_dock.note.setPlainText("Smile matches the witness statement; hair length unknown.")
        first = win.shortlist_dock.ids()[0]
        win.compare_two(win.shortlist_dock.ids()[2], first)
        win.compare.fit()
        exported = win.export_to(tmp / "case-0417-leads")
        if exported is None:
            print(f"export failed: {win.message_label.text()}")
        drv.shot("05_shortlist_export.png")

        # 6. File > New case (the work so far is adopted): the case details, filled in as an analyst would
        def fill_details() -> None:
            dlg = app.activeModalWidget()
            if dlg is None or not hasattr(dlg, "fields"):
                QTimer.singleShot(100, fill_details)
                return
            dlg.examiner.setText("J. Doe (examiner)")
            for k, v in (("case_number", "CASE-2026-0117"), ("title", "Robbery, Elm Street car park, 14 Nov"),
                         ("agency", "Metro Police, Digital Forensics Unit")):
                dlg.fields[k].setText(v)
            dlg.resize(520, dlg.sizeHint().height())
            drv.place(dlg, 380, 640)
            drv.shot("06_case_new.png", dlg)
            dlg.accept()

        QTimer.singleShot(0, fill_details)
        win.menu_actions["new_case"].trigger()
        case = win.case_actions.case
        if case is None:
            raise SystemExit(f"the case was not created: {win.message_label.text()}")

        # 7. face search: a gallery of test-split photos indexed, searched with every face candidate
        gallery, subject = face_gallery(tmp)
        fs = win.face_search_dock
        fs.raise_()
        win.resizeDocks([win.slider_dock, fs], [150, 800], Qt.Orientation.Vertical)  # room for the hits
        fs.build(gallery, tmp / "gallery-index")
        drv.wait(lambda: fs.index is not None and not win.runner.busy, what="the gallery index")
        fs.source.setCurrentIndex(1)  # all face candidates
        fs.top.setValue(10)
        fs.search_button.click()
        drv.wait(lambda: fs.result is not None and not win.runner.busy, what="the face search")
        rows = [r for r in range(fs.table.rowCount()) if fs.table.item(r, 1).text() == subject]
        print(f"face search: the subject's record {subject} at rows {rows}")
        fs.table.selectRow(rows[0] if rows else 0)
        drv.shot("07_face_search.png")

        # 4. a licence plate in character cells (added to the case as further evidence)
        plate, box = plate_scene(tmp)
        win.open_path(plate)
        win.input_panel.domain.setCurrentIndex(win.input_panel.domain.findData("plate"))
        win.input_panel.cells.setValue(7)
        win.session.set_region(S.Region.from_box(*box))
        win.session.set_cells(7, PLATE_BOUNDS)
        win.light_on_dark.setChecked(True)  # white characters on a blue plate
        win.view.fit()
        pids = drv.generate(16)
        win.grid.select(pids[3])
        if len(win.cell_spins) > 2:
            win.cell_spins[2].setValue(8)  # another sample for the third character
        win.compare.fit()
        win.shortlist_dock.raise_()
        drv.shot("04_plate.png")

        # 8. plate search: the six Latin characters read position by position, matched against a registry
        ps = win.plate_dock
        ps.raise_()
        win.resizeDocks([win.slider_dock, ps], [60, 900], Qt.Orientation.Vertical)
        ps.load_registry_file(plate_registry(tmp))
        drv.wait(lambda: ps.registry is not None and not win.runner.busy, what="the registry")
        latin, bounds = latin_part(box)
        win.input_panel.cells.setValue(6)
        win.session.set_region(S.Region.from_box(*latin))
        win.session.set_cells(6, bounds)
        win.light_on_dark.setChecked(True)
        rids = drv.generate(16)
        win.grid.select(rids[0])
        win.session.star(rids[0])  # a lead: the report marks its region on the original
        win.compare.fit()
        ps.search_button.click()
        drv.wait(lambda: ps.result is not None and not win.runner.busy, what="the plate search")
        drv.shot("08_plate_search.png")

        # 9. the case: saved, its audit log open
        win.case_actions.save_case()
        win.menu_actions["audit_log"].trigger()
        audit = win.case_actions.audit_dialog
        audit.resize(1060, 470)
        drv.place(audit, 8, 500)
        audit.table.scrollToBottom()
        drv.shot("09_case_audit.png", audit)
        audit.close()

        # 10. video: a clip opened, a frame as the evidence, the plate row tracked, the frames combined
        clip, boxes = plate_clip(tmp)
        win.open_path(clip)
        vd = win.video_dock
        idle = lambda: not win.runner.busy and not vd._decoding  # noqa: E731
        drv.wait(lambda: vd.indexed is not None and vd.frame is not None and idle(), what="the clip")
        mid = CLIP_FRAMES // 2
        vd.go_to(mid)
        drv.wait(lambda: vd.frame.index == mid and idle(), what="the middle frame")
        vd.use_frame()
        drv.wait(lambda: getattr(win.session.evidence, "frame_index", None) == mid and idle(), what="the frame")
        latin, bounds = latin_part(boxes[mid])
        win.input_panel.cells.setValue(6)
        win.session.set_region(S.Region.from_box(*latin))
        win.session.set_cells(6, bounds)
        win.light_on_dark.setChecked(True)
        win.view.fit()
        vd.reach.setValue(8)
        vd.track_button.click()
        drv.wait(lambda: vd.result is not None and idle(), what="the track")
        win.input_panel.n.setValue(8)
        before = len(win.grid.candidate_ids())
        # Video > Combine frames (the menu: the dock's button stays disabled after a first Track, see the report)
        win.menu_actions["combine_frames"].trigger()
        try:
            drv.wait(lambda: len(win.grid.candidate_ids()) > before and idle(), timeout_s=400, what="combined frames")
            win.session.star(win.session.current.id)
        except TimeoutError as e:
            print(f"{e}: the video shot shows the track only ({vd.status.text()!r}, {win.message_label.text()!r})")
        vd.go_to(mid)
        drv.wait(lambda: vd.frame.index == mid and idle(), what="the middle frame")
        win.resize(*SIZE)  # the frame browser widens the window: back to the screen's width
        win.resizeDocks([vd], [380], Qt.Orientation.Horizontal)
        win.compare.fit()
        print(f"window {win.width()}x{win.height()}, minimum {win.minimumSizeHint().width()}")
        drv.shot("10_video.png")

        # 11, 12. Case > Verify regeneration, then Export report: HTML and PDF; its first page (the originals
        # with the regions of interest outlined) and the shortlist's page
        win.menu_actions["verify"].trigger()
        drv.wait(lambda: win.case_actions.last_verification is not None and not win.runner.busy, timeout_s=400,
                 what="the regeneration check")
        if win.case_actions.result_box is not None:
            win.case_actions.result_box.close()
        win.menu_actions["report"].trigger()
        pdf = report_html.with_suffix(".pdf")
        if keep_pdf is not None and pdf.exists():
            shutil.copyfile(pdf, keep_pdf)
        if pdf.exists():
            render_pdf(pdf, out, {"11_report_page1.png": 1, "12_report_shortlist.png": "input as the model saw it"})
        else:
            print(f"the report was not written: {win.message_label.text()}")

        win.runner.shutdown()
        win.confirm_quit = False  # a script: no question about unsaved work
        win.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Save screenshots of VarSR Studio's main states.")
    p.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots", help="folder for the PNGs")
    p.add_argument("--report-pdf", type=Path, default=None, help="also keep the case report's PDF here")
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
    rc = run(args.out, args.report_pdf)
    if rc == 0 and args.readme:
        shutil.copyfile(args.out / args.readme, REPO / "docs" / "screenshot.png")
        print(f"copied {args.readme} to docs/screenshot.png")
    return rc


if __name__ == "__main__":
    sys.exit(main())
