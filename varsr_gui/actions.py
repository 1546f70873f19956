"""Every menu item, shortcut and toolbar button of the window, declared per menu in one table.

An :class:`Action` names its callback as ``"target.method"`` (targets: ``window``, ``case``, ``view``,
``session``, ``sliders``, ``undo``), so this module imports no widget; :func:`build_menus` makes the QActions,
the menus in :data:`MENUS` order and the toolbar. ``enabled_when`` names a predicate the window
re-evaluates on :meth:`Actions.refresh`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMainWindow, QMenu

Key = str | QKeySequence.StandardKey


@dataclass(frozen=True)
class Action:
    """One menu item: its menu, text, callback (``target.method`` with ``args``) and shortcut."""

    name: str
    menu: str
    text: str
    callback: str
    key: Key | None = None
    tip: str = ""
    args: tuple[Any, ...] = ()
    enabled_when: str | None = None


@dataclass(frozen=True)
class Separator:
    menu: str


@dataclass(frozen=True)
class Slot:
    """Where the window fills in items of its own (the recent files, the docks' toggles)."""

    menu: str
    name: str


Item = Action | Separator | Slot
Std = QKeySequence.StandardKey

#: Menu key -> title, in menu-bar order.
MENUS: dict[str, str] = {"file": "&File", "edit": "&Edit", "select": "&Select", "view": "&View",
                         "video": "V&ideo", "candidates": "&Candidates", "case": "Ca&se", "help": "&Help"}

ITEMS: tuple[Item, ...] = (
    Action("new_case", "file", "New &case\u2026", "case.new_case_dialog", "Ctrl+Shift+N",
           "Start a case folder: the evidence is copied and hashed, every step is logged"),
    Action("open_case", "file", "Open c&ase\u2026", "case.open_case_dialog", "Ctrl+Shift+O"),
    Action("save_case", "file", "&Save case", "case.save_case", "Ctrl+S"),
    Action("save_case_as", "file", "Save case &as\u2026", "case.save_case_as_dialog", "Ctrl+Shift+S",
           "Copy the open case to a new folder and continue there", enabled_when="case_open"),
    Action("close_case", "file", "C&lose case", "case.close_case", "Ctrl+Shift+W",
           "Save or keep the open case's work, then start without a case", enabled_when="case_open"),
    Slot("file", "recent_cases"),
    Separator("file"),
    Action("open", "file", "&Open evidence\u2026", "window.open_dialog", Std.Open),
    Slot("file", "recent"),
    Action("paste", "file", "&Paste image", "window.paste", Std.Paste),
    Action("export", "file", "&Export shortlist\u2026", "window.export_dialog", "Ctrl+E"),
    Action("reload_models", "file", "Reload &models", "window.refresh_models", "F5"),
    Separator("file"),
    Action("quit", "file", "&Quit", "window.close", Std.Quit),

    Action("undo", "edit", "&Undo", "undo.undo", Std.Undo,
           "Undo the last region, eye, slider, star or shortlist-order change"),
    Action("redo", "edit", "&Redo", "undo.redo", Std.Redo),

    Action("box", "select", "&Box (drag a rectangle)", "view.set_mode", "B", args=("select",)),
    Action("pan", "select", "&Pan", "view.set_mode", "H", args=("pan",)),
    Action("eyes", "select", "Click the two &eye centres", "view.set_mode", "E",
           "For tiny faces: click both eye centres; the crop is aligned to the face model's frame", ("eyes",)),
    Action("quad", "select", "Plate &4 corners", "view.set_mode", "Q",
           "Click a tilted plate's corners clockwise from top-left; it is straightened", ("quad",)),
    Action("detect_faces", "select", "Detect &faces (MTCNN)", "window.detect_faces", "F"),
    Action("whole_image", "select", "&Whole image", "session.set_region", "W", args=(None,)),
    Action("fit_cells", "select", "Fit &cells to the characters", "window.fit_cells", "Ctrl+Shift+F",
           "The plate reader places the boxed row's cell edges and chooses its polarity (undoable); "
           "drag any yellow edge to correct it"),

    Action("zoom_in", "view", "Zoom &in", "view.zoom_by", Std.ZoomIn, args=(1.25,)),
    Action("zoom_out", "view", "Zoom &out", "view.zoom_by", Std.ZoomOut, args=(0.8,)),
    Action("fit", "view", "&Fit", "view.fit", "0"),
    Slot("view", "docks"),

    Action("show_video", "video", "&Frame browser", "window.video_action", tip="Open a clip with File > Open",
           args=("show",)),
    Action("open_case_clip", "video", "Open the case's &clip", "window.video_action",
           tip="Open the clip the case keeps (read only), e.g. after reopening the case", args=("open_case_clip",),
           enabled_when="case_open"),
    Action("previous_frame", "video", "&Previous frame", "window.video_action", ",", args=("step", -1)),
    Action("next_frame", "video", "&Next frame", "window.video_action", ".", args=("step", 1)),
    Action("use_frame", "video", "&Use this frame as the evidence", "window.video_action", "Ctrl+U",
           args=("use_frame",)),
    Action("track", "video", "&Track the region", "window.video_action", "Ctrl+T",
           "Follow the marked face or plate through the neighbouring frames", ("track",)),
    Action("combine_frames", "video", "&Combine frames", "window.video_action", "Ctrl+Shift+C",
           "Read the tracked plate row in every used frame and combine the readings (recorded in the case)",
           ("combine",)),

    Action("generate", "candidates", "&Generate", "window.generate", "Ctrl+Return"),
    Action("cancel", "candidates", "&Cancel", "window.cancel", "Esc"),
    Action("star", "candidates", "&Star / unstar", "window.toggle_star", "S"),
    Action("more_like_this", "candidates", "&More like this", "window.more_like_this", "M"),
    Action("next", "candidates", "&Next", "window.step_candidate", "]", args=(1,)),
    Action("previous", "candidates", "&Previous", "window.step_candidate", "[", args=(-1,)),
    Action("reset_sliders", "candidates", "&Reset sliders", "sliders.reset", "R"),
    Action("reference", "candidates", "Reference &transfer\u2026", "window.reference_dialog", "Ctrl+R",
           "Generate G(I_L, E_H(reference)) from a high-resolution reference face (paper Fig. 4b)"),
    Action("eye_shift", "candidates", "E&ye-shift test (\u00b11 px)", "window.eye_shift_test",
           tip="Redraw the candidates with the face's framing moved by one pixel; say how much they change"),

    Action("case_details", "case", "Case &details\u2026", "case.edit_details",
           tip="The case number, title and agency beside the examiner", enabled_when="case_open"),
    Action("audit_log", "case", "Audit &log\u2026", "case.show_audit_log", "Ctrl+L", enabled_when="case_open"),
    Action("verify", "case", "&Verify regeneration", "case.verify_regeneration", "Ctrl+Shift+V",
           "Rebuild every shortlisted candidate from the originals; compare pixel by pixel", enabled_when="case_open"),
    Action("enforce", "case", "Enforce &consistency on the selected candidate", "case.enforce_consistency", "Ctrl+K",
           "A new candidate, changed as little as possible so that degrade(candidate) equals the input, degrade being "
           "the Assumed blur of the input panel (recorded in the case)"),
    Action("report", "case", "Export &report\u2026", "case.export_report_dialog", "Ctrl+Shift+R",
           "HTML and PDF: originals and hashes, steps, models, shortlist, the statement", enabled_when="case_open"),
    Action("check_originals", "case", "Check the &originals", "case.check_originals", args=(False,)),  # not quiet
    Action("remove_original", "case", "Re&move an original\u2026", "case.remove_original_dialog",
           tip="Take an image opened into the case by mistake out again (only while nothing derives from it; "
           "recorded in the audit log)", enabled_when="case_open"),

    Action("guide", "help", "&Guide", "window.show_guide", Std.HelpContents,
           "The workflow and every shortcut"),
    Action("about_candidates", "help", "About the &candidates", "window.show_lead_notice"),
    Action("about", "help", "&About VarSR Studio\u2026", "window.show_about",
           tip="The installed model bundles and their cards"),
)

#: The toolbar's buttons by action name; None is a separator.
TOOLBAR: tuple[str | None, ...] = ("open", "generate", "cancel", "more_like_this", "star", "export", None,
                                   "save_case", "verify")


class Actions(dict[str, QAction]):
    """The window's QActions by name, with the menus they sit in and their enabled-when predicates."""

    def __init__(self) -> None:
        super().__init__()
        self.menus: dict[str, QMenu] = {}
        self._when: dict[str, str] = {}

    def refresh(self, predicates: Mapping[str, Callable[[], bool]]) -> None:
        """Enable each action whose ``enabled_when`` predicate holds (the others stay as they are)."""
        for name, pred in self._when.items():
            self[name].setEnabled(bool(predicates[pred]()))


def _slot(targets: Mapping[str, object], spec: Action) -> Callable[[], Any]:
    target, method = spec.callback.split(".", 1)
    fn = getattr(targets[target], method)
    args = spec.args
    return lambda: fn(*args)


def build_menus(window: QMainWindow, targets: Mapping[str, object],
                slots: Mapping[str, Callable[[QMenu], None]], items: tuple[Item, ...] = ITEMS) -> Actions:
    """The menu bar, the toolbar (object name ``main_toolbar``) and every action's shortcut on ``window``."""
    out = Actions()
    bar = window.menuBar()
    for key, title in MENUS.items():
        out.menus[key] = bar.addMenu(title)
    for spec in items:
        menu = out.menus[spec.menu]
        if isinstance(spec, Separator):
            menu.addSeparator()
        elif isinstance(spec, Slot):
            slots[spec.name](menu)
        else:
            a = QAction(spec.text, window)
            if spec.key is not None:
                a.setShortcut(QKeySequence(spec.key))
            a.setStatusTip(spec.tip or spec.text)
            slot = _slot(targets, spec)
            a.triggered.connect(lambda _c=False, slot=slot: slot())
            menu.addAction(a)
            window.addAction(a)
            out[spec.name] = a
            if spec.enabled_when is not None:
                out._when[spec.name] = spec.enabled_when
    toolbar = window.addToolBar("Main")
    toolbar.setObjectName("main_toolbar")  # so saveState() restores it
    for name in TOOLBAR:
        if name is None:
            toolbar.addSeparator()
        else:
            toolbar.addAction(out[name])
    return out
