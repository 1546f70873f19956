"""The generation controller: models loaded into the shared cache, Generate, steering with the
sliders, more like this, a plate row's per-cell choices; torch work runs in the workers."""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import partial
from typing import Any

from PIL import Image
from PySide6.QtWidgets import QLabel, QSpinBox

from core.errors import VarSRError
from core.model.varsr import VarSR
from core.workbench import session as S
from varsr_gui.workers import TaskContext

#: Said when the face detector finds no face in the region: a face model draws faces from anything.
NO_FACE_WARNING = ("\u26a0 No face found in the region (the face detector, on the enlarged crop): a face model "
                   "draws face-shaped candidates from any region, a blank wall included, and they can agree with "
                   "the evidence as well as real ones. Check that the box holds a face before using them.")


def region_has_face(crop: Image.Image) -> bool | None:
    """Whether the project's face detector (MTCNN, :func:`core.search.face_detect.find_face`, which enlarges a small
    image first) finds a face in the crop; None when the detector cannot run."""
    try:
        from core.search.face_detect import find_face

        return find_face(crop.convert("RGB"), min_probability=0.6) is not None
    except Exception:  # no detector is no verdict
        return None


class Generation:
    """Generation, steering and the per-cell chooser (a mixin of :class:`~varsr_gui.main_window.MainWindow`)."""

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
            if model.config.domain == "face":
                self.check_region_for_face()
                self.check_crop_fit(model, lrs[0])  # the encoder's out-of-distribution check
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

    def check_region_for_face(self) -> None:
        """Look for a face in the region with the face detector, beside the generation (a thread of its own,
        once per evidence and region); none found gives :data:`NO_FACE_WARNING`."""
        s = self.session
        key = (s.evidence.sha256 if s.evidence else "", repr(s.region))
        crop = s.crop_or_none()
        if crop is None:
            return
        if key in self.face_checks:
            self._face_checked(key, self.face_checks[key])
            return
        self.face_checks[key] = None

        def check() -> None:
            found = region_has_face(crop)
            try:
                self.face_check_done.emit(key, found)
            except RuntimeError:  # the window closed meanwhile
                pass

        threading.Thread(target=check, daemon=True, name="region-face-check").start()

    def _face_checked(self, key: tuple[str, str], face: bool | None) -> None:
        self.face_checks[key] = face
        s = self.session
        if face is False and key == (s.evidence.sha256 if s.evidence else "", repr(s.region)) \
                and not self.message_label.isVisible():  # never over a newer message, nor the status bar
            self.message_label.setText(NO_FACE_WARNING)
            self.message_label.show()

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

    def _on_sliders(self, values: dict[str, float]) -> None:
        c = self.session.current
        if c is None or c.z is None:
            return
        if not any(values.values()):
            self.session.set_preview(None)
            self._show_compare()
            return
        model = self.models.get(c.model_name)
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
        parent = p.parent_id or "?"
        vals = ", ".join(f"{k} {v:+.2f}" for k, v in p.slider_values.items())
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
        model = self.models.get(c.model_name)
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
        model = self.models.get(c.model_name)
        if model is None:
            self.with_model(c.model_name, lambda _m: self.more_like_this())
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
        model = self.models.get(base.model_name)
        if model is None or self.session.current is not base:
            return
        row = S.assemble_row(model, cells, [s.value() for s in spins])
        row.recipe["parent"] = base.id
        self.session.set_preview(row if row.recipe["choices"] != base.recipe.get("choices") else None)
        self._show_compare()
