"""Evidence in: open, paste, drop, the region and what the model sees in the input panel, and face
detection to propose regions."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import torch
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QGuiApplication, QImage
from PySide6.QtWidgets import QFileDialog

from core.errors import ImageTooLarge, VarSRError
from core.images import MAX_PIXELS
from core.video.frames import VIDEO_PATTERNS, is_video
from core.workbench import session as S
from varsr_gui.evidence_loading import Decoded, decode_work, is_large
from varsr_gui.qt_images import pil_to_qimage, qimage_to_pil, tensor_to_qimage

#: The crop tile is drawn from at most about this many pixels a side (a whole 8000 px frame is reduced first).
TILE_SOURCE = 512
IMAGE_FILTER = (f"Images and clips (*.png *.jpg *.jpeg *.bmp *.tif *.tiff *.webp *.gif {VIDEO_PATTERNS});;"
                "Images (*.png *.jpg *.jpeg *.bmp *.tif *.tiff *.webp *.gif);;"
                f"Clips ({VIDEO_PATTERNS});;All files (*)")


class EvidenceInput:
    """Opening evidence and choosing the region (a mixin of :class:`~varsr_gui.main_window.MainWindow`)."""

    def open_dialog(self) -> None:
        start = str(self.settings.value("last_dir", ""))
        path, _ = QFileDialog.getOpenFileName(self, "Open evidence image or clip", start, IMAGE_FILTER)
        if path:
            self.open_path(path)

    def video(self) -> Any:
        """The frame browser (:class:`~varsr_gui.video_dock.VideoDock`), made when it is first needed."""
        if getattr(self, "video_dock", None) is None:
            from PySide6.QtCore import Qt

            from varsr_gui.video_dock import VideoDock

            self.video_dock = VideoDock(self)
            self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self.video_dock)
            self.video_dock.hide()  # shown when a clip is opened (or by Video > Frame browser)
        return self.video_dock

    def combined_reading(self) -> Any:
        """The plate search's reading of the selected candidate when it combines a clip's frames, else None."""
        cur = self.session.current
        return self.video().current_reading() if cur is not None and cur.kind == "video-plate" else None

    def video_action(self, name: str, *args: Any) -> None:
        """A Video menu item: the frame browser's method ``name``."""
        getattr(self.video(), name)(*args)

    def open_path(self, path: str | Path) -> bool:
        """Load evidence (read-only); a bad file gives a message and leaves everything as it was. A clip
        (MP4, AVI, MKV, MOV...) opens in the frame browser, in the worker. A large image is decoded, hashed and
        made into a display pyramid in a worker, with progress (True: it is opening)."""
        if is_video(path):
            self.settings.setValue("last_dir", str(Path(path).resolve().parent))
            self.video().open_clip(path)
            return True
        if is_large(path):
            self.submit(f"Opening {Path(path).name}", partial(decode_work, path), partial(self._decoded, path))
            return True
        try:
            ev = S.load_evidence(path)
        except (VarSRError, OSError) as e:
            return self._open_failed(path, e)
        return self._show_opened(path, ev)

    def _decoded(self, path: str | Path, d: Decoded) -> None:
        if d.evidence is None:
            self._open_failed(path, d.error or VarSRError("unknown error"))
        else:
            self._show_opened(path, d.evidence, d.levels)

    def _open_failed(self, path: str | Path, e: Exception) -> bool:
        self.show_message(f"Could not open the image: {e}")
        if isinstance(e, ImageTooLarge):
            self.show_error_dialog("Could not open the image",
                                   f"The image {Path(path).name} is too large to open: it has more pixels than "
                                   f"this program opens safely ({MAX_PIXELS // 1_000_000} megapixels).",
                                   f"{e}\n\nNothing was changed: the file was only read, never modified. Crop "
                                   "the frame around the face or plate (or reduce it) in another program, then "
                                   "open that copy.")
        else:
            self.show_error_dialog("Could not open the image",
                                   f"The image {Path(path).name} could not be opened: it is not a readable "
                                   "image (PNG, JPEG, BMP, TIFF, WebP or GIF), or it is damaged or missing.",
                                   f"{e}\n\nNothing was changed: the file was only read, never modified. "
                                   "Choose another file.")
        return False

    def _show_opened(self, path: str | Path, ev: S.Evidence, levels: list[QImage] | None = None) -> bool:
        if not self.admit_evidence(ev):
            return False
        self._pyramid = (ev.sha256, levels) if levels else None  # shown by _on_evidence
        self.session.set_evidence(ev)
        self.settings.setValue("last_dir", str(Path(path).resolve().parent))
        self.add_recent(Path(path).resolve())
        if ev.notes:  # first frame only, EXIF rotation applied, bit depth reduced...: say so
            self.show_message(f"{ev.label}: " + "; ".join(ev.notes) + " (recorded with every candidate).",
                              error=False)
        self.statusBar().showMessage(f"Opened {ev.label} ({ev.image.width}x{ev.image.height}, "
                                     f"SHA-256 {ev.sha256[:12]}\u2026); the file is never modified", 10000)
        return True

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
        ev = S.evidence_from_image(qimage_to_pil(img), source)
        if self.admit_evidence(ev):
            self.session.set_evidence(ev)

    def admit_evidence(self, ev: S.Evidence) -> bool:
        """With a case open, ask before new evidence is copied into the case's originals; True to go on."""
        case = self.case_actions.case
        if case is None or self.session.evidence is None or ev.sha256 in case.originals:
            return True
        return self.confirm("Add this image to the case?",
                            f"A case is open ({case.name}). Opening {ev.label} copies it into the case's "
                            "originals (hashed, recorded in the audit log) as further evidence of this case.",
                            "Choose No to leave the case as it is: the image is not opened.")

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
        self.plate_dock.combined_reading = self.combined_reading  # frames of a clip, combined
        self.clear_message()
        self._faces = []
        self.view.show_faces([])
        pyramid, self._pyramid = getattr(self, "_pyramid", None), None
        if pyramid is not None and pyramid[0] == ev.sha256:
            self.view.set_pyramid(pyramid[1])  # made in the worker
        else:
            self.view.set_image(pil_to_qimage(ev.image))
        self.set_title(ev.label)
        self.session.set_current(None)  # the compare view shows no candidate of the previous evidence
        self.grid.setCurrentItem(None)
        self.compare.set_panels([])

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
        auto = s.suggestion()
        self.input_panel.set_models(names, set(s.installed), auto.name, s.model_override)
        self.input_panel.set_model_reason(self._model_reason(auto))
        used = s.installed.get(name)
        self.input_panel.set_default_temperature(name, used.sample_temperature if used is not None else 1.0)
        crop = s.crop_or_none()
        tile = crop.reduce(max(1, max(crop.size) // TILE_SOURCE)) if crop else None  # never a full frame
        self.input_panel.crop_tile.set_image(pil_to_qimage(tile) if tile else None,
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
            notes.append("Eye alignment is unavailable (core.model.faces missing): use a box.")
        if crop is not None and not s.model_override and auto.enlarges:
            notes.append(auto.reason)
        self.input_panel.notes.setText("\n".join(f"\u26a0 {n}" for n in notes))

    def _model_reason(self, auto: S.Suggestion) -> str:
        """Why this model: the suggestion's reason, or the analyst's choice and what Auto would take."""
        s = self.session
        if not s.model_override or s.model_override == auto.name:
            return ("Auto \u2014 " if not s.model_override else "") + auto.reason
        cfg = s.installed.get(s.model_override)
        w, h = s.model_input_size()
        text = f"Your choice: {s.model_override}. Auto would take {auto.name}."
        if cfg is not None and (cfg.lr_size[0] > w or cfg.lr_size[1] > h):
            text += (f" \u26a0 {s.model_override} takes {cfg.lr_size[0]}x{cfg.lr_size[1]}, larger than the crop "
                     f"({w}x{h}): the crop is enlarged.")
        return text

    def detect_faces(self) -> None:
        ev = self.session.evidence
        if ev is None:
            self.show_message("Open an evidence image first.")
            return
        from core.search.face_detect import detect_faces

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
