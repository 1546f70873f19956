"""The main window: wires the session model, the widgets that observe it, and the workers."""

from __future__ import annotations

import errno
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import torch
from PySide6.QtCore import QEventLoop, QSettings, Qt
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QGuiApplication, QImage
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

import core
from core import attribute_edits
from core import session as S
from core.errors import VarSRError
from core.model import VarSR
from varsr_gui import none_guard
from varsr_gui.about_dialog import AboutDialog
from varsr_gui.actions import build_menus
from varsr_gui.candidate_grid import CandidateGrid
from varsr_gui.case_actions import CaseActions
from varsr_gui.compare_view import CompareView, Panel
from varsr_gui.evidence_view import EvidenceView
from varsr_gui.export_dialog import ExportDialog
from varsr_gui.input_panel import InputPanel
from varsr_gui.plate_search_panel import PlateSearchDock
from varsr_gui.qt_images import CandidateImages, pil_to_qimage, qimage_to_pil, tensor_to_qimage
from varsr_gui.search_dock import FaceSearchDock
from varsr_gui.shortlist_dock import ShortlistDock
from varsr_gui.slider_dock import SliderDock
from varsr_gui.workers import Task, TaskContext, TaskRunner

MAX_RECENT = 10
IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.bmp *.tif *.tiff *.webp *.gif);;All files (*)"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif"}
BANNER_STYLE = "background:#7a1f1f; color:white; font-weight:bold; padding:6px; font-size:14px;"
INFO_STYLE = "background:#4a3b12; color:#ffd27a; padding:4px;"
ERROR_STYLE = "background:#3a1414; color:#ff9b9b; padding:4px;"


def export_error_text(folder: Path, e: OSError) -> tuple[str, str]:
    """What to tell the analyst when writing an export fails: the cause in words, then what to do."""
    where = str(folder)
    after = ("Nothing was exported: the partly written files were removed, so no incomplete export "
             "is left behind.")
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return (f"The disk is full: the shortlist could not be exported to {where}.",
                f"{after} Free some space or choose a folder on another disk, then export again.")
    if e.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return (f"The folder {where} is read-only (or you may not write there): the shortlist could not "
                "be exported.", f"{after} Choose a folder you can write to, then export again.")
    reason = e.strerror or e.__class__.__name__
    return (f"The shortlist could not be exported to {where}: {reason}.",
            f"{after} Check the folder and the disk, then export again.")


def reference_eyes(image: Any, cfg: Any) -> tuple[S.Point, S.Point] | None:
    """The eyes of the reference's most likely (then largest) face, found by MTCNN; None when there
    is none, the reference is not larger than the model's frame, or the model is not a face model."""
    w, h = cfg.hr_size
    if cfg.domain != "face" or (image.width <= w and image.height <= h):
        return None
    from core.face_detect import detect_faces

    try:
        faces = detect_faces(image)
    except Exception:  # no detector is not an error: fall back to the centre
        return None
    if not faces:
        return None
    best = max(faces, key=lambda f: (round(f.probability, 2), (f.box[2] - f.box[0]) * (f.box[3] - f.box[1])))
    return best.left_eye, best.right_eye


def reference_status(how: dict[str, Any], cfg: Any) -> str:
    """The status-bar line saying how the reference was put into the model's frame."""
    w, h = cfg.hr_size
    method = how.get("method")
    if method == "eyes":
        return f"Reference transfer: the reference face was aligned by its eyes (MTCNN) to the {w}x{h} frame."
    if method == "centre":
        return (f"Reference transfer: no face found in the reference (MTCNN), so it was not aligned: its "
                f"centre was resized to {w}x{h} instead; the result may be poor. Crop the reference "
                "closer to the face for a better one.")
    if method == "as given":
        return f"Reference transfer: the reference is already {w}x{h} and was used as given."
    return f"Reference transfer: the reference was resized to {w}x{h}."


class MainWindow(QMainWindow):
    """VarSR Studio: evidence in, candidates out, shortlist exported; the GUI thread never runs torch."""

    def __init__(self, models_root: str | Path | None = None, settings: QSettings | None = None) -> None:
        super().__init__()
        none_guard.install(QGuiApplication.instance())  # PySide6 6.12 + Python 3.11 would crash long sessions
        self.session = S.Session(models_root)
        self.settings = settings if settings is not None else QSettings("VarSR Studio", "varsr-gui")
        self.runner = TaskRunner(self)
        self.models = self.session.models  # one cache of loaded models with the case's regeneration
        self.images = CandidateImages()  # QImages of the candidates, rendered in the workers
        self.cell_spins: list[QSpinBox] = []  # the per-cell sample choosers of the selected plate
        self._faces: list[Any] = []
        self._task = None
        self.about_dialog: AboutDialog | None = None
        self.error_dialog: QMessageBox | None = None
        self.export_options: ExportDialog | None = None
        self.setWindowTitle("VarSR Studio \u2014 synthetic leads, not evidence")
        self.setAcceptDrops(True)
        self._build_ui()
        self.case_actions = CaseActions(self.session, self.images, self.settings, self, self)  # File > case, Case
        self.statusBar().addPermanentWidget(self.case_actions.case_label)
        self.face_search_dock.hits_found.connect(self.case_actions.record_face_search)
        self.plate_dock.describe_cells = self.case_actions.plate_rows
        self.plate_dock.hits_found.connect(self.case_actions.record_plate_search)
        self.menu_actions = build_menus(self, {"window": self, "case": self.case_actions, "view": self.view,
                                          "session": self.session, "sliders": self.slider_dock},
                                   {"recent": self._make_recent_menu, "docks": self._add_dock_toggles})
        ev = self.session.events
        ev.evidence_changed.connect(self._on_evidence)
        ev.region_changed.connect(lambda _r: self._on_input_changed())
        ev.settings_changed.connect(self._on_input_changed)
        ev.candidates_added.connect(self._on_set_added)
        ev.shortlist_changed.connect(self._on_shortlist)
        ev.sets_dropped.connect(self._on_sets_dropped)
        ev.current_changed.connect(self._on_current)
        ev.preview_changed.connect(self._on_preview)
        self._restore_settings()
        self.refresh_models()
        self.refresh()

    def _on_current(self, c: S.Candidate | None) -> None:
        if c is None:  # nothing selected (a case closed, the selection's set dropped)
            self.compare.set_panels([])
            self._show_cell_chooser()

    def _on_preview(self, new: S.Candidate | None, old: S.Candidate | None) -> None:
        if old is not None and old is not new and old.id not in self.session.candidates:
            self.images.discard(old)  # a preview that was never kept

    # -- layout --------------------------------------------------------------------------------
    def _build_ui(self) -> None:
        central = QWidget()
        lay = QVBoxLayout(central)
        lay.setContentsMargins(4, 4, 4, 4)
        self.banner = QLabel("\u26a0  " + S.BANNER + "  Every candidate is generated, not recovered.")
        self.banner.setObjectName("lead_banner")
        self.banner.setStyleSheet(BANNER_STYLE)
        self.banner.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.banner.setToolTip(core.LEAD_NOTICE)
        lay.addWidget(self.banner)
        self.models_label = QLabel()
        self.models_label.setStyleSheet(INFO_STYLE)
        self.models_label.setWordWrap(True)
        lay.addWidget(self.models_label)
        self.message_label = QLabel()
        self.message_label.setStyleSheet(ERROR_STYLE)
        self.message_label.setWordWrap(True)
        self.message_label.hide()
        lay.addWidget(self.message_label)

        self.view = EvidenceView()
        self.input_panel = InputPanel()
        self.grid = CandidateGrid(self.images)
        self.compare = CompareView()
        self.cell_chooser = QWidget()
        self.cell_chooser_layout = QHBoxLayout(self.cell_chooser)
        self.cell_chooser_layout.setContentsMargins(0, 0, 0, 0)
        self.cell_chooser.hide()
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.addWidget(self.compare, 1)
        rl.addWidget(self.cell_chooser)
        top = QSplitter(Qt.Orientation.Horizontal)
        top.addWidget(self.view)
        top.addWidget(self.input_panel)
        top.setStretchFactor(0, 3)
        top.setStretchFactor(1, 1)
        top.setSizes([1000, 430])
        self.input_panel.setMaximumWidth(520)
        bottom = QSplitter(Qt.Orientation.Horizontal)
        bottom.addWidget(self.grid)
        bottom.addWidget(right)
        bottom.setStretchFactor(0, 1)
        bottom.setStretchFactor(1, 1)
        bottom.setSizes([540, 660])
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.addWidget(top)
        self.splitter.addWidget(bottom)
        self.splitter.setSizes([460, 440])
        lay.addWidget(self.splitter, 1)
        self.setCentralWidget(central)

        self.slider_dock = SliderDock(self)
        self.shortlist_dock = ShortlistDock(self.session, self, self.images)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.slider_dock)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.shortlist_dock)
        self.plate_dock = PlateSearchDock(  # reads the selected plate row's per-cell candidates
            self.runner, lambda: self.session.cells_of(self.session.current.id if self.session.current else None),
            self)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.plate_dock)
        self.tabifyDockWidget(self.shortlist_dock, self.plate_dock)
        self.face_search_dock = FaceSearchDock(self.runner, self.session, self.images, self)  # shortlist -> gallery
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.face_search_dock)
        self.tabifyDockWidget(self.shortlist_dock, self.face_search_dock)
        self.face_search_dock.candidate_selected.connect(self.show_candidate)
        self.shortlist_dock.raise_()
        device = "GPU" if torch.cuda.is_available() else "CPU"
        self.statusBar().addPermanentWidget(QLabel(f"Runs on the {device} \u00b7 synthetic leads only"))

        self.view.region_picked.connect(self.session.set_region)
        self.view.cells_moved.connect(lambda b: self.session.set_cells(self.session.n_cells, b))
        self.view.face_clicked.connect(self._use_face)
        self.input_panel.domain_changed.connect(self.session.set_domain)
        self.input_panel.model_changed.connect(self.session.set_model_override)
        self.input_panel.cells_changed.connect(lambda n: self.session.set_cells(n))
        self.input_panel.generate_clicked.connect(self.generate)
        self.input_panel.cancel_clicked.connect(self.cancel)
        self.runner.busy_changed.connect(self.input_panel.set_busy)
        self.grid.candidate_selected.connect(self.show_candidate)
        self.grid.candidate_activated.connect(lambda cid: (self.show_candidate(cid), self.compare.fit()))
        self.slider_dock.values_changed.connect(self._on_sliders)
        self.slider_dock.keep_clicked.connect(self.keep_preview)
        self.slider_dock.apply_all_clicked.connect(self.apply_sliders_to_set)
        self.shortlist_dock.candidate_selected.connect(self.show_candidate)
        self.shortlist_dock.compare_clicked.connect(self.compare_two)
        self.shortlist_dock.export_clicked.connect(self.export_dialog)

    def _make_recent_menu(self, file_menu: QMenu) -> None:
        self.recent_menu = file_menu.addMenu("Open &recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        self._fill_recent_menu()

    def _add_dock_toggles(self, view_menu: QMenu) -> None:
        for dock in (self.slider_dock, self.shortlist_dock, self.plate_dock, self.face_search_dock):
            view_menu.addAction(dock.toggleViewAction())

    # -- the shell the case actions see -----------------------------------------------------------
    def status(self, text: str, ms: int = 0) -> None:
        self.statusBar().showMessage(text, ms)

    def confirm(self, title: str, text: str, detail: str = "") -> bool:
        box = QMessageBox(QMessageBox.Icon.Question, title, text,
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, self)
        if detail:
            box.setInformativeText(detail)
        return box.exec() == QMessageBox.StandardButton.Yes

    def ask_path(self, title: str, start: str, name_filter: str | None = None) -> str:
        if name_filter is None:
            return QFileDialog.getExistingDirectory(self, title, start)
        return QFileDialog.getSaveFileName(self, title, start, name_filter)[0]

    def ask_text(self, title: str, label: str, text: str = "") -> str | None:
        value, ok = QInputDialog.getText(self, title, label, text=text)
        return value if ok else None

    def dialog_parent(self) -> QWidget:
        return self

    def refresh(self) -> None:
        """Show the session's domain in the input panel (without re-applying it), its input, and which
        actions are enabled."""
        combo = self.input_panel.domain
        idx = combo.findData(self.session.domain)
        if idx >= 0 and idx != combo.currentIndex():
            combo.blockSignals(True)
            combo.setCurrentIndex(idx)
            combo.blockSignals(False)
        self._on_input_changed()
        if hasattr(self, "menu_actions"):  # not yet while the case actions are being made
            self.menu_actions.refresh({"case_open": lambda: self.case_actions.case is not None})

    def reset_view(self) -> None:
        self.grid.remove_all()
        self.compare.set_panels([])

    def show_lead_notice(self) -> None:
        """Help > About the candidates."""
        self.show_message(core.LEAD_NOTICE, error=False)

    # -- messages ------------------------------------------------------------------------------
    def show_message(self, text: str, error: bool = True) -> None:
        """A non-modal message: the status bar and the strip under the banner."""
        self.message_label.setStyleSheet(ERROR_STYLE if error else INFO_STYLE)
        self.message_label.setText(text)
        self.message_label.show()
        self.statusBar().showMessage(text, 15000)

    def show_about(self) -> AboutDialog:
        """Help > About: the notice, and each installed bundle with its card (non-modal)."""
        if self.about_dialog is not None:
            self.about_dialog.close()
        self.about_dialog = AboutDialog(self.session.models_root, self.session.missing_models(), self)
        self.about_dialog.show()
        return self.about_dialog

    def show_error_dialog(self, title: str, text: str, detail: str = "") -> QMessageBox:
        """A window-modal error box (opened, not exec'd: the event loop keeps running)."""
        if self.error_dialog is not None:
            self.error_dialog.close()
        box = QMessageBox(QMessageBox.Icon.Critical, title, text, QMessageBox.StandardButton.Ok, self)
        box.setWindowModality(Qt.WindowModality.WindowModal)
        if detail:
            box.setInformativeText(detail)
        box.open()
        self.error_dialog = box
        return box

    def clear_message(self) -> None:
        self.message_label.hide()

    def refresh_models(self) -> None:
        self.session.refresh_models()
        missing = self.session.missing_models()
        self.models_label.setText(" \u00b7 ".join(missing))
        self.models_label.setToolTip("\n".join(missing))
        self.models_label.setVisible(bool(missing))
        if missing:
            self.statusBar().showMessage(missing[0], 15000)
        for gone in [k for k in self.models if k not in self.session.installed]:
            del self.models[gone]  # the cache is shared with the case's regeneration: prune it in place
        self._on_input_changed()

    # -- evidence ------------------------------------------------------------------------------
    def open_dialog(self) -> None:
        start = str(self.settings.value("last_dir", ""))
        path, _ = QFileDialog.getOpenFileName(self, "Open evidence image", start, IMAGE_FILTER)
        if path:
            self.open_path(path)

    def open_path(self, path: str | Path) -> bool:
        """Load evidence (read-only); a bad file gives a message and leaves everything as it was."""
        try:
            ev = self.session.open_file(path)
        except (VarSRError, OSError) as e:
            self.show_message(f"Could not open the image: {e}")
            self.show_error_dialog("Could not open the image",
                                   f"The image {Path(path).name} could not be opened: it is not a readable "
                                   "image (PNG, JPEG, BMP, TIFF, WebP or GIF), or it is damaged or missing.",
                                   f"{e}\n\nNothing was changed: the file was only read, never modified. "
                                   "Choose another file.")
            return False
        self.settings.setValue("last_dir", str(Path(path).resolve().parent))
        self.add_recent(Path(path).resolve())
        if ev.notes:  # first frame only, EXIF rotation applied, bit depth reduced...: say so
            self.show_message(f"{ev.label}: " + "; ".join(ev.notes) + " (recorded with every candidate).",
                              error=False)
        self.statusBar().showMessage(f"Opened {ev.label} ({ev.image.width}x{ev.image.height}, "
                                     f"SHA-256 {ev.sha256[:12]}\u2026); the file is never modified", 10000)
        return True

    # -- recent files ----------------------------------------------------------------------------
    def recent_files(self) -> list[str]:
        """Most recent first, from QSettings (an INI file gives one entry back as a plain string)."""
        v = self.settings.value("recent_files", [])
        if v is None:
            return []
        items = [v] if isinstance(v, str) else list(v)
        return [str(x) for x in items if x][:MAX_RECENT]

    def add_recent(self, path: Path) -> None:
        p = str(path)
        self._set_recent([p, *(x for x in self.recent_files() if x != p)])

    def _set_recent(self, items: list[str]) -> None:
        self.settings.setValue("recent_files", items[:MAX_RECENT])
        self.settings.sync()
        self._fill_recent_menu()

    def clear_recent(self) -> None:
        self._set_recent([])

    def _fill_recent_menu(self) -> None:
        m = self.recent_menu
        m.clear()
        items = self.recent_files()
        for i, p in enumerate(items, start=1):
            a = m.addAction(f"&{i % 10} {Path(p).name}")
            a.setToolTip(p)
            a.setStatusTip(p)
            a.setData(p)
            a.triggered.connect(lambda _c=False, p=p: self.open_recent(p))
        if items:
            m.addSeparator()
        clear = m.addAction("&Clear the list")
        clear.setEnabled(bool(items))
        clear.triggered.connect(lambda _c=False: self.clear_recent())

    def open_recent(self, path: str) -> bool:
        if not Path(path).is_file():
            self._set_recent([x for x in self.recent_files() if x != path])
            self.show_message(f"{path} is no longer there (removed from the recent files).")
            return False
        return self.open_path(path)

    def paste(self) -> None:
        md = QGuiApplication.clipboard().mimeData()
        if md is not None and md.hasUrls():
            for url in md.urls():
                if url.isLocalFile():
                    self.open_path(url.toLocalFile())
                    return
        img = QGuiApplication.clipboard().image()
        if img.isNull():
            self.show_message("The clipboard holds no image.")
            return
        self.open_image(img, "clipboard")

    def open_image(self, img: QImage, source: str) -> None:
        self.session.set_evidence(S.evidence_from_image(qimage_to_pil(img), source))

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt override
        md = event.mimeData()
        if md.hasImage() or any(u.isLocalFile() for u in md.urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt override
        md = event.mimeData()
        for url in md.urls():
            if url.isLocalFile():
                self.open_path(url.toLocalFile())
                event.acceptProposedAction()
                return
        if md.hasImage():
            self.open_image(QImage(md.imageData()), "drop")
            event.acceptProposedAction()

    def _on_evidence(self, ev: S.Evidence) -> None:
        self.clear_message()
        self._faces = []
        self.view.show_faces([])
        self.view.set_image(pil_to_qimage(ev.image))
        self.setWindowTitle(f"VarSR Studio \u2014 {ev.label} \u2014 synthetic leads, not evidence")

    # -- region and input preview ----------------------------------------------------------------
    def _on_input_changed(self) -> None:
        s = self.session
        self.view.show_region(s.region, s.cell_bounds if s.domain != "face" else None)
        self.input_panel.cells.setVisible(s.domain != "face")
        self.input_panel.cells_label.setVisible(s.domain != "face")
        self.input_panel.cells.blockSignals(True)
        self.input_panel.cells.setValue(s.n_cells)
        self.input_panel.cells.blockSignals(False)
        name = s.chosen_model()
        want = S.CONFIG_DOMAIN[s.domain]
        names = sorted(set(S.DOMAIN_MODELS[s.domain])
                       | {n for n, c in s.installed.items() if c.domain == want})
        auto = S.suggest_model(s.domain, self._cell_size(), s.installed)
        self.input_panel.set_models(names, set(s.installed), auto, s.model_override)
        crop = s.crop_or_none()
        self.input_panel.crop_tile.set_image(pil_to_qimage(crop) if crop else None,
                                             f"{crop.width}x{crop.height} px" if crop else "")
        notes: list[str] = []
        lr_img = None
        cfg = s.installed.get(name)
        if crop is None and s.evidence is not None and s.region is not None:
            try:  # say why the region cannot be used (outside the image, empty, invalid)
                s.crop()
            except VarSRError as e:
                notes.append(f"{e}: drag a new box.")
        elif crop is None:
            notes.append("Open an image (Ctrl+O, drop or paste) and drag a box around the face, "
                         "plate or digits.")
        elif cfg is None:
            notes.append(next((m for m in s.missing_models() if f"'{name}'" in m),
                              f"Model '{name}' is not installed."))
        else:
            try:
                lrs, notes = s.prepare(cfg)
                lr_img = tensor_to_qimage(torch.cat(lrs, dim=2))
            except VarSRError as e:
                notes = [str(e)]
        detail = f"{name}: {cfg.lr_size[0]}x{cfg.lr_size[1]} (after degrade)" if cfg else name
        self.input_panel.lr_tile.set_image(lr_img, detail)
        if s.region and s.region.kind == "eyes" and S.faces_module() is None:
            notes.append("Eye alignment is unavailable (core.faces missing): use a box.")
        self.input_panel.notes.setText("\n".join(f"\u26a0 {n}" for n in notes))

    def _cell_size(self) -> tuple[int, int]:
        crop = self.session.crop_or_none()
        if crop is None:
            return (8, 8)
        if self.session.domain != "face" and self.session.n_cells > 1:
            return (max(1, crop.width // self.session.n_cells), crop.height)
        return crop.size

    def detect_faces(self) -> None:
        ev = self.session.evidence
        if ev is None:
            self.show_message("Open an evidence image first.")
            return
        from core.face_detect import detect_faces

        image = ev.image
        self.statusBar().showMessage("Looking for faces (MTCNN)\u2026")
        self.runner.submit("Face detection", lambda ctx: detect_faces(image), self._on_faces,
                           self.show_message)

    def _on_faces(self, faces: list[Any]) -> None:
        self._faces = faces
        self.view.show_faces([f.box for f in faces])
        if faces:
            self.statusBar().showMessage(f"{len(faces)} face(s) proposed: click one to use it", 10000)
        else:
            self.show_message("No face found (MTCNN needs about 12 px or more): press E and click the two "
                              "eye centres, or drag a box.", error=False)

    def _use_face(self, i: int) -> None:
        f = self._faces[i]
        if S.faces_module() is not None:
            self.session.set_region(S.Region("eyes", eyes=(f.left_eye, f.right_eye)))
        else:
            self.session.set_region(S.Region.from_box(*f.box))

    # -- models and generation -------------------------------------------------------------------
    def with_model(self, name: str, then: Callable[[VarSR], None]) -> None:
        """Call ``then(model)`` once the model is loaded (in a worker the first time, into the shared cache)."""
        if name in self.models:
            then(self.models[name])
            return
        if name not in self.session.installed:
            self.refresh_models()
        if name not in self.session.installed:
            msg = next((m for m in self.session.missing_models() if f"'{name}'" in m),
                       f"No model '{name}' installed.")
            self.show_message(msg)
            self.show_error_dialog("Model missing",
                                   f"Cannot generate: the model '{name}' is not installed.",
                                   f"{msg}.\nInstall its bundle (see the README), then use File > Reload "
                                   "models (F5), or pick an installed model in the model list.")
            return
        self.statusBar().showMessage(f"Loading model {name}\u2026")
        self.runner.submit(f"Loading {name}", lambda ctx: self.session.model(name), partial(self._loaded, name, then),
                           partial(self._load_failed, name))

    def _loaded(self, name: str, then: Callable[[VarSR], None], model: VarSR) -> None:
        self.statusBar().showMessage(f"Model {name} loaded", 5000)
        then(model)

    def _load_failed(self, name: str, text: str) -> None:
        self.show_message(text)
        self.show_error_dialog("Model could not be loaded",
                               f"Cannot generate: the model '{name}' could not be loaded.",
                               f"{text}\nReinstall its bundle (see the README), then use File > Reload models (F5).")

    def generate(self) -> None:
        if self.session.evidence is None:
            self.show_message("Open an evidence image first (Ctrl+O, drop a file or paste).")
            return
        if self.runner.busy:
            return
        self.clear_message()
        self.with_model(self.session.chosen_model(), self._generate_with)

    def _generate_with(self, model: VarSR) -> None:
        try:
            lrs, notes = self.session.prepare(model.config)
        except VarSRError as e:
            self.show_message(str(e))
            return
        p = self.input_panel
        n, seed, t = p.n.value(), p.seed.value(), round(p.temperature.value(), 3)
        source = {**self.session.source(), "notes": notes}
        title = f"{model.config.name} \u00b7 seed {seed} \u00b7 T {t:g}"
        if len(lrs) == 1:
            self.submit("Generating", partial(self._sample_work, model, lrs[0], n, seed, t, source),
                        partial(self._add_set, title))
        else:
            self.submit("Generating", partial(self._rows_work, model, lrs, n, seed, t, source),
                        partial(self._rows_done, f"{title} \u00b7 {len(lrs)} cells"))

    def _sample_work(self, model: VarSR, lr: Any, n: int, seed: int, t: float, source: dict[str, Any],
                     ctx: TaskContext) -> list[S.Candidate]:
        cands = S.generate_candidates(model, lr, n, seed, t, source=source, progress=ctx.progress,
                                      cancelled=ctx.cancelled)
        self.images.render(cands)
        return cands

    def _rows_work(self, model: VarSR, lrs: list[Any], n: int, seed: int, t: float, source: dict[str, Any],
                   ctx: TaskContext) -> tuple[list[list[S.Candidate]], list[S.Candidate]]:
        cells = S.generate_cells(model, lrs, n, seed, t, source=source, progress=ctx.progress, cancelled=ctx.cancelled)
        rows = [S.assemble_row(model, cells, [k] * len(cells)) for k in range(len(cells[0]))]
        self.images.render(rows)
        return cells, rows

    def _rows_done(self, title: str, result: tuple[list[list[S.Candidate]], list[S.Candidate]]) -> None:
        cells, rows = result
        cset = self.session.add_set(title, rows)
        self.session.set_row_cells(cset.candidate_ids, cells)
        self._show_cell_chooser()

    def _add_set(self, title: str, cands: list[S.Candidate]) -> S.CandidateSet:
        return self.session.add_set(title, cands)

    def submit(self, what: str, fn: Callable[[TaskContext], Any], done: Callable[[Any], None]) -> None:
        """Run ``fn`` in a worker with progress in the input panel and Esc to cancel; ``done(result)`` after."""
        self.statusBar().showMessage(f"{what}\u2026 (Esc cancels)")
        self.input_panel.set_progress(0, 1)
        self._task = self.runner.submit(what, fn, partial(self._submitted, what, done), self.show_message,
                                        self.input_panel.set_progress,
                                        lambda: self.statusBar().showMessage(f"{what}: cancelled", 5000))

    def _submitted(self, what: str, done: Callable[[Any], None], result: Any) -> None:
        self.statusBar().showMessage(f"{what}: done", 5000)
        done(result)

    def cancel(self) -> None:
        if self.runner.busy:
            self.runner.cancel_all()
            self.statusBar().showMessage("Cancelling\u2026")

    def _on_set_added(self, cset: S.CandidateSet) -> None:
        starred = {e.candidate_id for e in self.session.shortlist}
        self.grid.add_set(cset, self.session.candidates, starred)
        if cset.candidate_ids:
            self.grid.select(cset.candidate_ids[0])

    def _on_sets_dropped(self, sets: list[S.CandidateSet], freed: list[S.Candidate]) -> None:
        """The session dropped its oldest sets (bounded memory): clear them from the grid and caches."""
        for cset in sets:
            self.grid.remove_set(cset)
        for c in freed:
            self.images.discard(c)  # re-rendered on demand if still shown
        names = ", ".join(s.id for s in sets)
        self.statusBar().showMessage(
            f"Cleared the oldest candidate set(s) {names} to keep memory bounded (at most "
            f"{self.session.max_candidates} candidates are kept; starred ones always stay).", 10000)

    # -- the selected candidate ------------------------------------------------------------------
    def show_candidate(self, cid: str) -> None:
        c = self.session.candidates.get(cid)
        if c is None:
            return
        self.session.set_current(c)  # drops the preview
        self.slider_dock.reset(emit=False)
        model = self.models.get(c.recipe.get("model", ""))
        steerable = c.z is not None and model is not None and bool(model.attributes)
        self.slider_dock.target.setText(f"Steering {cid} ({c.kind}); values are recorded with each derived "
                                        "candidate" if steerable else f"{cid} ({c.kind})")
        if c.z is None:
            why = ("This candidate has no latent code to steer (a whole plate or digit string is assembled "
                   "from its cells; a deterministic model has none).")
            self.slider_dock.set_attributes([], why)
        elif model is None or not model.attributes:
            self.slider_dock.set_attributes([], f"Model '{c.recipe.get('model', '?')}' has no attribute "
                                                "directions.")
        else:
            report = attribute_edits.load_report(model.bundle_path)
            self.slider_dock.set_attributes(attribute_edits.slider_order(list(model.attributes), report),
                                            notes=attribute_edits.slider_notes(report))
        self._show_compare()
        self._show_cell_chooser()

    def _show_compare(self) -> None:
        c = self.session.current
        if c is None:
            self.compare.set_panels([])
            return
        scale = int(c.recipe.get("scale", c.image.shape[-1] // c.lr.shape[-1]))
        size = f"{c.lr.shape[2]}x{c.lr.shape[1]}"
        r = self.images.get(c)
        panels = [Panel(f"Input as the model sees it ({size})", r.lr), Panel(f"Bicubic x{scale}", r.bicubic)]
        pv = self.session.preview
        if pv is not None:
            vals = ", ".join(f"{k} {v:+.2f}" for k, v in pv.recipe.get("sliders", {}).items())
            panels.append(Panel(f"{c.id}<br>{c.scores}", r.image, True))
            label = "derived from " + c.id + (f" ({vals})" if vals else "")
            panels.append(Panel(f"{label}<br>{pv.scores}", self.images.get(pv).image, True))
        else:
            star = " \u2605" if self.session.is_starred(c.id) else ""
            panels.append(Panel(f"{c.id}{star}<br>{c.scores}", r.image, True))
        self.compare.set_panels(panels)

    def compare_two(self, a: str, b: str) -> None:
        ca, cb = self.session.candidates[a], self.session.candidates[b]
        ra, rb = self.images.get(ca), self.images.get(cb)
        self.compare.set_panels([
            Panel(f"Input of {a}", ra.lr),
            Panel(f"{a}<br>{ca.scores}", ra.image, True),
            Panel(f"{b}<br>{cb.scores}", rb.image, True),
        ])

    def step_candidate(self, d: int) -> None:
        ids = self.grid.candidate_ids()
        if not ids:
            return
        cur = self.grid.current_id()
        i = ids.index(cur) + d if cur in ids else 0
        self.grid.select(ids[max(0, min(len(ids) - 1, i))])

    # -- sliders, more like this, reference --------------------------------------------------------
    def _on_sliders(self, values: dict[str, float]) -> None:
        c = self.session.current
        if c is None or c.z is None:
            return
        if not any(values.values()):
            self.session.set_preview(None)
            self._show_compare()
            return
        model = self.models.get(c.recipe.get("model", ""))
        if model is not None:
            self.runner.submit("Steering", partial(self._steer_work, model, c, values), partial(self._steered, c),
                               self.show_message)

    def _steer_work(self, model: VarSR, base: S.Candidate, values: dict[str, float], ctx: TaskContext) -> S.Candidate:
        d = S.derive_with_sliders(model, base, values)
        self.images.render([d])
        return d

    def _steered(self, base: S.Candidate, d: S.Candidate) -> None:
        if self.session.current is base:
            self.session.set_preview(d)
            self._show_compare()

    def keep_preview(self) -> S.Candidate | None:
        """Add the steered (or re-chosen) candidate to the grid; returns it."""
        p = self.session.preview
        if p is None:
            return None
        parent = p.recipe.get("parent") or "?"
        vals = ", ".join(f"{k} {v:+.2f}" for k, v in p.recipe.get("sliders", {}).items())
        title = f"{parent} with {vals}" if vals else f"row choices {p.recipe.get('choices')}"
        cur = self.session.current
        cells = self.session.cells_of(cur.id if cur else None)
        self.session.add_candidate(p)  # gives it an id, so its rendering stays cached
        self.session.set_preview(None)
        cset = self.session.add_set(title, [p])
        if cells is not None:
            self.session.set_row_cells(cset.candidate_ids[:1], cells)
        return p

    def apply_sliders_to_set(self) -> None:
        c = self.session.current
        values = self.slider_dock.values()
        if c is None or c.z is None or not any(values.values()):
            self.show_message("Select a candidate and move a slider first.", error=False)
            return
        model = self.models.get(c.recipe.get("model", ""))
        cset = next((s for s in self.session.sets if c.id in s.candidate_ids), None)
        if model is None or cset is None:
            return
        bases = [b for b in (self.session.candidates[i] for i in cset.candidate_ids) if b.z is not None]
        vals = ", ".join(f"{k} {v:+.2f}" for k, v in values.items() if v)
        self.submit("Applying sliders", partial(self._sliders_work, model, bases, values),
                    partial(self._add_set, f"{cset.id} with {vals}"))

    def _sliders_work(self, model: VarSR, bases: list[S.Candidate], values: dict[str, float],
                      ctx: TaskContext) -> list[S.Candidate]:
        out = []
        for i, b in enumerate(bases):
            if ctx.cancelled():
                raise S.GenerationCancelled("cancelled")
            out.append(S.derive_with_sliders(model, b, values))
            ctx.progress(i + 1, len(bases))
        self.images.render(out)
        return out

    def more_like_this(self) -> None:
        c = self.session.current
        if c is None or c.z is None:
            self.show_message("Select a candidate with a latent code first.", error=False)
            return
        model = self.models.get(c.recipe.get("model", ""))
        if model is None:
            self.with_model(c.recipe.get("model", ""), lambda _m: self.more_like_this())
            return
        n, seed = self.input_panel.n.value(), self.input_panel.seed.value()
        t = round(max(0.05, 0.3 * self.input_panel.temperature.value()), 3)
        self.submit("More like this", partial(self._more_work, model, c, n, seed, t),
                    partial(self._add_set, f"more like {c.id} \u00b7 T {t:g}"))

    def _more_work(self, model: VarSR, base: S.Candidate, n: int, seed: int, t: float,
                   ctx: TaskContext) -> list[S.Candidate]:
        cands = S.more_like_this(model, base, n, seed, t, progress=ctx.progress, cancelled=ctx.cancelled)
        self.images.render(cands)
        return cands

    def reference_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "High-resolution reference face",
                                              str(self.settings.value("last_dir", "")), IMAGE_FILTER)
        if path:
            self.reference_transfer(path)

    def reference_transfer(self, path: str | Path) -> None:
        """G(I_L, E_H(reference)) for the selected candidate's input (or the current crop)."""
        try:
            ref = S.load_evidence(path)
        except (VarSRError, OSError) as e:
            self.show_message(f"Could not open the reference: {e}")
            self.show_error_dialog("Could not open the reference",
                                   f"The reference image {Path(path).name} could not be opened.",
                                   f"{e}\n\nChoose another file.")
            return
        c = self.session.current
        name = c.recipe.get("model", "") if c is not None else self.session.chosen_model()
        self.with_model(name, partial(self._reference_with, ref, c))

    def _reference_with(self, ref: S.Evidence, c: S.Candidate | None, model: VarSR) -> None:
        if c is not None and c.kind != "row":
            lr, source = c.lr, c.recipe.get("source", {})
        else:
            try:
                lrs, _ = self.session.prepare(model.config)
            except VarSRError as e:
                self.show_message(str(e))
                return
            lr, source = lrs[0], self.session.source()
        source = {**source, "reference": ref.to_dict()}
        self.submit("Reference transfer", partial(self._reference_work, model, lr, ref, source),
                    partial(self._referenced, ref, model))

    def _reference_work(self, model: VarSR, lr: Any, ref: S.Evidence, source: dict[str, Any],
                        ctx: TaskContext) -> list[S.Candidate]:
        eyes = reference_eyes(ref.image, model.config)
        cand = S.reference_transfer(model, lr, ref.image, ref.sha256, source=source, eyes=eyes)
        self.images.render([cand])
        return [cand]

    def _referenced(self, ref: S.Evidence, model: VarSR, cands: list[S.Candidate]) -> None:
        self.session.add_set(f"reference {ref.label}", cands)
        how = cands[0].recipe.get("reference_alignment", {})
        self.statusBar().showMessage(reference_status(how, model.config), 30000)

    # -- plates: per-cell choices ------------------------------------------------------------------
    def _show_cell_chooser(self) -> None:
        while self.cell_chooser_layout.count():
            w = self.cell_chooser_layout.takeAt(0).widget()
            if w is not None:
                w.hide()
                w.setParent(None)  # gone from findChildren now, not only once deleted
                w.deleteLater()
        self.cell_spins = []
        c = self.session.current
        cells = self.session.cells_of(c.id if c is not None else None)
        if c is None or cells is None:
            self.cell_chooser.hide()
            return
        self.cell_chooser_layout.addWidget(QLabel("Sample per cell:"))
        spins = []
        for i, choice in enumerate(c.recipe.get("choices", [0] * len(cells))):
            sp = QSpinBox()
            sp.setRange(0, len(cells[i]) - 1)
            sp.setValue(choice)
            sp.setPrefix(f"#{i + 1}: ")
            sp.setToolTip(f"Which of the {len(cells[i])} samples of cell {i + 1} to use")
            spins.append(sp)
            self.cell_chooser_layout.addWidget(sp)
        self.cell_spins = spins
        self.cell_chooser_layout.addStretch(1)
        for sp in spins:
            sp.valueChanged.connect(partial(self._cells_chosen, c, cells, spins))
        self.cell_chooser.show()

    def _cells_chosen(self, base: S.Candidate, cells: list[list[S.Candidate]], spins: list[QSpinBox],
                      _value: int) -> None:
        """A cell's sample was re-chosen: the row it makes is previewed beside the selected one."""
        model = self.models.get(base.recipe.get("model", ""))
        if model is None or self.session.current is not base:
            return
        row = S.assemble_row(model, cells, [s.value() for s in spins])
        row.recipe["parent"] = base.id
        self.session.set_preview(row if row.recipe["choices"] != base.recipe.get("choices") else None)
        self._show_compare()

    # -- shortlist and export ----------------------------------------------------------------------
    def toggle_star(self) -> None:
        if self.session.preview is not None:
            kept = self.keep_preview()
            if kept is not None:
                self.session.star(kept.id)
            return
        if self.session.current is not None:
            self.session.toggle_star(self.session.current.id)

    def _on_shortlist(self) -> None:
        self.grid.set_starred({e.candidate_id for e in self.session.shortlist}, self.session.candidates)
        if self.session.current is not None and self.session.preview is None:
            self._show_compare()

    def export_dialog(self) -> ExportDialog | None:
        """Ask for the folder and whether to add unmarked copies (off by default); non-modal-blocking."""
        if not self.session.shortlist:
            self.show_message("The shortlist is empty: star candidates (S) first.", error=False)
            return None
        start = str(self.settings.value("export_dir", self.settings.value("last_dir", "")))
        if self.export_options is not None:
            self.export_options.close()
        dlg = ExportDialog(start, len(self.session.shortlist), self)
        dlg.setWindowModality(Qt.WindowModality.WindowModal)
        dlg.accepted.connect(lambda: self.start_export(dlg.chosen_folder(), unmarked_copies=dlg.unmarked_copies()))
        dlg.open()
        self.export_options = dlg
        return dlg

    def start_export(self, folder: str | Path, unmarked_copies: bool = False,
                     on_over: Callable[[Path | None], None] | None = None) -> Task | None:
        """Export the shortlist in the worker, with progress and Cancel (Esc); any failure or a cancel gives
        a message (never a traceback) and leaves nothing. ``on_over(folder or None)`` is called at the end.

        ``unmarked_copies``: the examiner's explicit request for unmarked copies (recorded in the manifest).
        """
        if not self.session.shortlist:
            self.show_message("The shortlist is empty: star candidates (S) first.", error=False)
            return None
        leads = [(self.session.candidates[e.candidate_id], e.note) for e in self.session.shortlist]
        ids, folder = [c.id for c, _ in leads], Path(folder)
        complete: list[Path] = []  # a Cancel that comes after the export's last step cannot undo it

        def work(ctx: TaskContext) -> Any:
            try:
                out = S.export_shortlist(leads, folder, unmarked_copies=unmarked_copies, progress=ctx.progress,
                                         cancelled=ctx.cancelled)
            except S.ExportCancelled:
                return None  # the task reports it as cancelled
            except OSError as e:
                return e  # worded on the GUI thread
            complete.append(out)
            return out

        def finished(result: Any) -> None:
            if isinstance(result, OSError):
                text, detail = export_error_text(folder, result)
                self.show_message(f"Export failed: {text}")
                self.show_error_dialog("Export failed", text, detail)
                result = None
            else:
                self._exported(result, ids, unmarked_copies)
            if on_over is not None:
                on_over(result)

        def failed(text: str) -> None:
            self.show_message(f"Export failed: {text}")
            self.show_error_dialog("Export failed", f"The shortlist was not exported: {text}")
            if on_over is not None:
                on_over(None)

        def cancelled() -> None:
            if complete:
                finished(complete[0])
                return
            self.statusBar().showMessage("Export cancelled: nothing was exported (the partly written files were "
                                         "removed)", 10000)
            if on_over is not None:
                on_over(None)

        self.statusBar().showMessage(f"Exporting {len(leads)} lead(s) to {folder}\u2026 (Esc cancels)")
        self.input_panel.set_progress(0, len(leads) + 1)
        return self.runner.submit("Exporting the shortlist", work, finished, failed, self.input_panel.set_progress,
                                  cancelled)

    def _exported(self, out: Path, ids: list[str], unmarked_copies: bool) -> None:
        self.settings.setValue("export_dir", str(Path(out).parent))
        self.case_actions.record("shortlist_exported", folder=Path(out).name, unmarked_copies=unmarked_copies,
                                 leads=ids)
        extra = " plus unmarked copies, on your request (recorded in the manifest)" if unmarked_copies else ""
        self.statusBar().showMessage(f"Exported {len(ids)} lead(s) and a contact sheet to {out} "
                                     f"(each marked: {S.MARK}){extra}", 10000)

    def export_to(self, folder: str | Path, unmarked_copies: bool = False) -> Path | None:
        """:meth:`start_export` and wait for it to end (scripts and tests): the exported folder, or None."""
        result: list[Path | None] = []
        loop = QEventLoop()

        def over(out: Path | None) -> None:
            result.append(out)
            loop.quit()

        if self.start_export(folder, unmarked_copies, on_over=over) is None:
            return None
        if not result:
            loop.exec()
        return result[0]

    # -- settings ------------------------------------------------------------------------------------
    def _restore_settings(self) -> None:
        st = self.settings
        geom = st.value("geometry")
        if geom is not None:
            self.restoreGeometry(geom)
        else:
            self.resize(1500, 950)
        state = st.value("window_state")
        if state is None or not self.restoreState(state):
            # first start: the sliders get most of the right-hand column
            self.resizeDocks([self.slider_dock, self.shortlist_dock], [560, 400], Qt.Orientation.Vertical)
        p = self.input_panel
        p.n.setValue(int(st.value("n", 16)))
        p.seed.setValue(int(st.value("seed", 0)))
        p.temperature.setValue(float(st.value("temperature", 1.0)))
        domain = str(st.value("domain", "face"))
        idx = p.domain.findData(domain)
        if idx >= 0:
            p.domain.setCurrentIndex(idx)

    def save_settings(self) -> None:
        st = self.settings
        st.setValue("geometry", self.saveGeometry())
        st.setValue("window_state", self.saveState())
        st.setValue("n", self.input_panel.n.value())
        st.setValue("seed", self.input_panel.seed.value())
        st.setValue("temperature", self.input_panel.temperature.value())
        st.setValue("domain", self.session.domain)
        st.sync()

    def closeEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        self.save_settings()
        self.case_actions.shutdown()  # unsaved case work goes to its recovery file
        self.runner.shutdown()
        super().closeEvent(event)
