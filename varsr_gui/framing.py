"""Framing and the crop's fit to the model, in the window: the face frame's eye marks on the evidence, the
encoder's out-of-distribution check at Generate, and the eye-shift (jitter ensemble) test in a worker.

A mixin of :class:`~varsr_gui.main_window.MainWindow`; the numbers come from :mod:`core.workbench.framing`
and :mod:`core.workbench.ood`.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import torch

from core.errors import VarSRError
from core.model.varsr import VarSR
from core.workbench import framing, ood
from varsr_gui.workers import TaskContext

#: Candidates drawn per shift by the eye-shift test.
SHIFT_TEST_N = 8


class Framing:
    """The face frame, the encoder check and the eye-shift test (mixin of the main window)."""

    def init_framing(self) -> None:
        p = self.input_panel
        p.eyes_clicked.connect(lambda: self.view.set_mode("eyes"))
        p.detect_clicked.connect(self.detect_faces)
        p.shift_test_clicked.connect(self.eye_shift_test)
        ev = self.session.events
        for event in (ev.evidence_changed, ev.region_changed, ev.settings_changed):
            event.connect(lambda *_a: self._framing_changed())
        self._lpips: Any = None
        self._framing_changed()

    def _key(self) -> tuple[str, str, str, str]:
        s = self.session
        return (s.evidence.sha256 if s.evidence else "", repr(s.region), s.domain, s.chosen_model())

    def _framing_changed(self) -> None:
        """A new crop, domain or model: the frame marks follow, the old verdicts go."""
        s = self.session
        face = s.domain == "face"
        p = self.input_panel
        for b in (p.eyes_button, p.detect_button, p.shift_button):
            b.setVisible(face)
        eyes = None
        if face and s.evidence is not None and s.crop_or_none() is not None:
            eyes = framing.expected_eyes(s.region, s.evidence.image.size)
        self.view.show_frame(eyes)
        if getattr(self, "_checked_key", None) != self._key():
            p.show_check("", False)
            p.framing_result.hide()

    # -- the encoder's check -------------------------------------------------------------------------
    def check_crop_fit(self, model: VarSR, lr: torch.Tensor) -> None:
        """Score the input with the model's encoder (a worker) and show the verdict in the input panel;
        nothing when the model's bundle has no reference (``ood.json``)."""
        key = self._key()
        self.runner.submit("Checking the crop", partial(self._fit_work, model, lr),
                           partial(self._fit_done, key), lambda _e: None)

    @staticmethod
    def _fit_work(model: VarSR, lr: torch.Tensor, ctx: TaskContext) -> ood.OODScore | None:
        ref = ood.load_reference(model)
        return ood.score_lr(model, ref, lr) if ref is not None else None

    def _fit_done(self, key: tuple[str, str, str, str], result: ood.OODScore | None) -> None:
        if key != self._key():  # the crop changed meanwhile
            return
        self._checked_key = key
        if result is None:
            self.input_panel.show_check("Encoder check: this model's bundle has no reference (ood.json).", False)
        else:
            self.input_panel.show_check(result.text(), result.unusual)
            self.input_panel.crop_check.setToolTip(result.detail())
        self.last_crop_score = result

    # -- the eye-shift test ----------------------------------------------------------------------------
    def eye_shift_test(self) -> None:
        """Draw the candidates again from the region moved by +-1 px and report the change (a worker)."""
        s = self.session
        if s.evidence is None or s.crop_or_none() is None:
            self.show_message("Open an image and choose the face first.", error=False)
            return
        if s.domain != "face":
            self.show_message("The eye-shift test is for faces.", error=False)
            return
        if self.runner.busy:
            self.statusBar().showMessage("Busy: run the eye-shift test when the current task is done.", 5000)
            return
        self.with_model(s.chosen_model(), self._shift_with)

    def _shift_with(self, model: VarSR) -> None:
        s = self.session
        try:
            lrs, _notes = s.prepare(model.config)
        except VarSRError as e:
            self.show_message(str(e))
            return
        p = self.input_panel
        key = self._key()
        image, region = s.evidence.image, s.region
        seed, t = p.seed.value(), round(p.temperature.value(), 3)
        self.submit("Eye-shift test", partial(self._shift_work, model, image, region, lrs[0], seed, t),
                    partial(self._shift_done, key))

    def _shift_work(self, model: VarSR, image: Any, region: Any, lr: torch.Tensor, seed: int, t: float,
                    ctx: TaskContext) -> framing.Sensitivity:
        if self._lpips is None:
            try:
                from core.nets.lpips import load_lpips

                self._lpips = load_lpips()
            except VarSRError:
                self._lpips = False  # no weights: pixel change only
        shifted = framing.jitter_inputs(image, region, model)
        return framing.eye_shift_sensitivity(model, lr, shifted, SHIFT_TEST_N, seed, t, self._lpips or None,
                                             progress=ctx.progress, cancelled=ctx.cancelled)

    def _shift_done(self, key: tuple[str, str, str, str], result: framing.Sensitivity) -> None:
        self.last_sensitivity = result
        if key != self._key():
            return
        self._checked_key = key
        label = self.input_panel.framing_result
        label.setText(result.text())
        label.setToolTip(result.detail())
        label.setStyleSheet("color:#e67e22;" if result.sensitive else "color:#9aa4b1; font-size:11px;")
        label.show()
