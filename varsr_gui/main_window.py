"""The main window: wires the session model, the widgets that observe it, and the workers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from PySide6.QtCore import QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QActionGroup, QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
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
from core.evaluation import attribute_edits
from core.workbench import session as S
from varsr_gui import none_guard
from varsr_gui.about_dialog import AboutDialog
from varsr_gui.actions import build_menus
from varsr_gui.candidate_grid import CandidateGrid
from varsr_gui.case_actions import CaseActions
from varsr_gui.cell_editing import CellEditing
from varsr_gui.compare_view import CompareView, Panel
from varsr_gui.consistency_choice import ConsistencyChoice
from varsr_gui.dock_layout import DockLayout
from varsr_gui.evidence_input import EvidenceInput
from varsr_gui.evidence_view import EvidenceView
from varsr_gui.export_actions import ExportActions, export_error_text  # noqa: F401 - re-exported for callers
from varsr_gui.export_dialog import ExportDialog
from varsr_gui.framing import Framing
from varsr_gui.generation import Generation
from varsr_gui.guide import guide_dialog
from varsr_gui.input_panel import InputPanel
from varsr_gui.plate_search_panel import PlateSearchDock
from varsr_gui.qt_images import CandidateImages
from varsr_gui.recent_files import RecentFiles
from varsr_gui.reference import ReferenceActions
from varsr_gui.search_dock import FaceSearchDock
from varsr_gui.shortlist_dock import ShortlistDock
from varsr_gui.slider_dock import SliderDock
from varsr_gui.undo import UndoController
from varsr_gui.wording import STEER_MIN_DB, agreement, steer_flag
from varsr_gui.workers import TaskRunner

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif"}
BANNER_STYLE = "background:#7a1f1f; color:white; font-weight:bold; padding:6px; font-size:14px;"
INFO_STYLE = "background:#4a3b12; color:#ffd27a; padding:4px;"
ERROR_STYLE = "background:#3a1414; color:#ff9b9b; padding:4px;"


class MainWindow(EvidenceInput, Generation, Framing, CellEditing, ReferenceActions, ExportActions, RecentFiles,
                 QMainWindow):
    """VarSR Studio: evidence in, candidates out, shortlist exported; the GUI thread never runs torch."""

    face_check_done = Signal(object, object)  # (evidence, region) key, a face found there (None: unknown)

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
        self.face_checks: dict[tuple[str, str], bool | None] = {}  # (evidence, region) -> a face found there
        self.face_check_done.connect(self._face_checked)
        self._task = None
        self.about_dialog: AboutDialog | None = None
        self.error_dialog: QMessageBox | None = None
        self.export_options: ExportDialog | None = None
        self.steer_min_db = STEER_MIN_DB  # a steered candidate under this LR-PSNR is flagged
        self.confirm_quit = True  # ask before closing with unsaved work (scripts may turn it off)
        self.guide_dialog: QDialog | None = None
        self.set_title(None)
        self.setAcceptDrops(True)
        self._build_ui()
        self.case_actions = CaseActions(self.session, self.images, self.settings, self, self)  # File > case, Case
        self.statusBar().addPermanentWidget(self.case_actions.case_label)
        self.face_search_dock.hits_found.connect(self.case_actions.record_face_search)
        self.plate_dock.describe_cells = self.case_actions.plate_rows
        self.plate_dock.hits_found.connect(self.case_actions.record_plate_search)
        self.undo = UndoController(self.session, self.show_candidate, self.slider_dock, self)
        self.slider_dock.values_changed.connect(self.undo.sliders_changed)
        self.consistency_choice = ConsistencyChoice(self)  # what consistency is scored under
        self.menu_actions = build_menus(self, {"window": self, "case": self.case_actions, "view": self.view,
                                               "session": self.session, "sliders": self.slider_dock,
                                               "undo": self.undo.stack},
                                        {"recent": self._make_recent_menu, "docks": self._add_dock_toggles,
                                         "recent_cases": self.case_actions.make_recent_menu})
        for name, signal in (("undo", self.undo.stack.canUndoChanged), ("redo", self.undo.stack.canRedoChanged)):
            self.menu_actions[name].setEnabled(False)
            signal.connect(self.menu_actions[name].setEnabled)
        self._show_select_mode()
        ev = self.session.events
        for event in (ev.candidates_added, ev.shortlist_changed, ev.sets_dropped, ev.region_changed,
                      ev.evidence_changed, ev.note_changed):  # after the case has logged the step
            event.connect(lambda *_a: QTimer.singleShot(0, self.update_modified))
        ev.evidence_changed.connect(self._on_evidence)
        ev.region_changed.connect(lambda _r: self._on_input_changed())
        ev.settings_changed.connect(self._on_input_changed)
        ev.candidates_added.connect(self._on_set_added)
        ev.shortlist_changed.connect(self._on_shortlist)
        ev.sets_dropped.connect(self._on_sets_dropped)
        ev.current_changed.connect(self._on_current)
        ev.preview_changed.connect(self._on_preview)
        self.init_framing()  # the face frame's marks, the encoder check, the eye-shift test
        self.init_cell_editing()  # dragged cell edges, Fit cells, the row's polarity (undoable)
        self._restore_settings()
        self.refresh_models()
        self.refresh()

    def _on_current(self, c: S.Candidate | None) -> None:
        if c is None:  # nothing selected (a case closed, the selection's set dropped)
            self.compare.set_panels([])
            self._show_cell_chooser()
        else:  # the grid highlights the session's current candidate, however it was chosen
            self.grid.follow(c.id)

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
        bottom.setSizes([430, 770])  # the large view gets the larger half
        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.addWidget(top)
        self.splitter.addWidget(bottom)
        self.splitter.setSizes([400, 500])
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
        self.view.face_clicked.connect(self._use_face)
        self.input_panel.domain_changed.connect(self.session.set_domain)
        self.docks = DockLayout(self, self.settings, self.slider_dock, self.shortlist_dock)
        self.input_panel.domain_changed.connect(self.docks.switch)
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

    #: Select-menu action of each selection mode of the evidence view.
    MODE_ACTIONS = {"select": "box", "pan": "pan", "eyes": "eyes", "quad": "quad"}

    def _show_select_mode(self) -> None:
        """The Select menu shows the active mode: its modes are exclusive, checkable actions that follow
        the view (a shortcut or a mode set in code ticks the right one)."""
        group = QActionGroup(self)
        for name in self.MODE_ACTIONS.values():
            action = self.menu_actions[name]
            action.setCheckable(True)
            group.addAction(action)

        def follow(mode: str) -> None:
            name = self.MODE_ACTIONS.get(mode)
            if name is not None:
                self.menu_actions[name].setChecked(True)

        self.view.mode_changed.connect(follow)
        follow(self.view.mode)

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
            self.update_modified()

    def reset_view(self) -> None:
        self.grid.remove_all()
        self.compare.set_panels([])
        if hasattr(self, "undo"):
            self.undo.rebase_later()

    # -- unsaved work ------------------------------------------------------------------------------
    def set_title(self, label: str | None) -> None:
        """The title names the evidence; ``*`` marks unsaved work (Qt's ``[*]`` placeholder)."""
        what = f" \u2014 {label}" if label else ""
        self.setWindowTitle(f"VarSR Studio{what}[*] \u2014 synthetic leads, not evidence")

    def has_unsaved_work(self) -> bool:
        """Steps not saved in the open case, or, without a case, any candidates or stars."""
        case = self.case_actions.case
        if case is not None:
            return case.has_unsaved_changes()
        return bool(self.session.candidates or self.session.shortlist)

    def update_modified(self) -> None:
        self.setWindowModified(self.has_unsaved_work())

    def ask_unsaved(self) -> str:
        """Before quitting: save, discard or cancel; "save", "discard" or "cancel"."""
        case = self.case_actions.case
        where = f"the case {case.name}" if case is not None else "no case yet (File > New case keeps it)"
        return self.ask_save(f"There are unsaved candidates, stars or steps in {where}.")

    def ask_save(self, text: str) -> str:
        """Save, discard or cancel (a modal question); "save", "discard" or "cancel"."""
        box = QMessageBox(QMessageBox.Icon.Warning, "Unsaved work", text,
                          QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
                          | QMessageBox.StandardButton.Cancel, self)
        box.setInformativeText("Save them before closing?")
        box.setDefaultButton(QMessageBox.StandardButton.Save)
        answer = box.exec()
        return {int(QMessageBox.StandardButton.Save.value): "save",
                int(QMessageBox.StandardButton.Discard.value): "discard"}.get(int(answer), "cancel")

    def show_guide(self) -> QDialog:
        """Help > Guide: the workflow and every shortcut (non-modal)."""
        if self.guide_dialog is not None:
            self.guide_dialog.close()
        self.guide_dialog = guide_dialog(self)
        self.guide_dialog.show()
        return self.guide_dialog

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
    # -- the selected candidate ------------------------------------------------------------------
    def show_candidate(self, cid: str) -> None:
        c = self.session.candidates.get(cid)
        if c is None:
            return
        self.session.set_current(c)  # drops the preview
        self.slider_dock.reset(emit=False)
        model = self.models.get(c.model_name)
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
            vals = ", ".join(f"{k} {v:+.2f}" for k, v in pv.slider_values.items())
            panels.append(Panel(f"{c.id}<br>{agreement(c)}", r.image, True))
            label = "derived from " + c.id + (f" ({vals})" if vals else "")
            flag = steer_flag(c, pv, self.steer_min_db) if pv.slider_values else ""
            self.slider_dock.show_warning(flag)
            warn = "<br><b style='color:#ff6b6b'>\u26a0 agrees much less with the evidence</b>" if flag else ""
            panels.append(Panel(f"{label}<br>{agreement(pv)}{warn}", self.images.get(pv).image, True))
        else:
            star = " \u2605" if self.session.is_starred(c.id) else ""
            self.slider_dock.show_warning("")
            panels.append(Panel(f"{c.id}{star}<br>{agreement(c)}", r.image, True))
        self.compare.set_panels(panels)

    def compare_two(self, a: str, b: str) -> None:
        """``a`` beside ``b``; ``a`` becomes the current candidate (highlighted, steered by the sliders)."""
        self.show_candidate(a)
        ca, cb = self.session.candidates[a], self.session.candidates[b]
        ra, rb = self.images.get(ca), self.images.get(cb)
        self.compare.set_panels([
            Panel(f"Input of {a}", ra.lr),
            Panel(f"{a}<br>{agreement(ca)}", ra.image, True),
            Panel(f"{b}<br>{agreement(cb)}", rb.image, True),
        ])

    def step_candidate(self, d: int) -> None:
        ids = self.grid.candidate_ids()
        if not ids:
            return
        cur = self.grid.current_id()
        i = ids.index(cur) + d if cur in ids else 0
        self.grid.select(ids[max(0, min(len(ids) - 1, i))])
    # -- shortlist ---------------------------------------------------------------------------------
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

    # -- settings ------------------------------------------------------------------------------------
    def _restore_settings(self) -> None:
        st = self.settings
        geom = st.value("geometry")
        if geom is not None:
            self.restoreGeometry(geom)
        else:
            self.resize(1500, 950)
        p = self.input_panel
        p.n.setValue(int(st.value("n", 16)))
        p.seed.setValue(int(st.value("seed", 0)))
        p.temperature.setValue(float(st.value("temperature", 1.0)))
        domain = str(st.value("domain", "face"))
        idx = p.domain.findData(domain)
        if idx >= 0:
            p.domain.setCurrentIndex(idx)
        self.docks.switch(self.session.domain)  # that domain's remembered dock sizes, or its defaults

    def save_settings(self) -> None:
        st = self.settings
        st.setValue("geometry", self.saveGeometry())
        self.docks.remember()
        st.setValue("n", self.input_panel.n.value())
        st.setValue("seed", self.input_panel.seed.value())
        st.setValue("temperature", self.input_panel.temperature.value())
        st.setValue("domain", self.session.domain)
        st.sync()

    def closeEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        if self.confirm_quit and self.has_unsaved_work():
            answer = self.ask_unsaved()
            # a save that first copies a clip in the worker returns False at once, then closes the window
            if answer == "cancel" or (answer == "save" and not self.case_actions.save_case(then=self.close)):
                event.ignore()
                return
        self.save_settings()
        self.case_actions.shutdown()  # unsaved case work goes to its recovery file
        self.runner.shutdown()
        super().closeEvent(event)
