"""Candidates > Reference transfer: G(I_L, E_H(reference)) from a high-resolution reference face,
aligned by its eyes (MTCNN) when one is found."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QFileDialog

from core.errors import VarSRError
from core.model.varsr import VarSR
from core.workbench import session as S
from varsr_gui.evidence_input import IMAGE_FILTER
from varsr_gui.workers import TaskContext


def reference_eyes(image: Any, cfg: Any) -> tuple[S.Point, S.Point] | None:
    """The eyes of the reference's most likely (then largest) face, found by MTCNN; None when there
    is none, the reference is not larger than the model's frame, or the model is not a face model."""
    w, h = cfg.hr_size
    if cfg.domain != "face" or (image.width <= w and image.height <= h):
        return None
    from core.search.face_detect import detect_faces

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


class ReferenceActions:
    """Reference transfer (a mixin of :class:`~varsr_gui.main_window.MainWindow`)."""

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
        name = c.model_name if c is not None else self.session.chosen_model()
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
