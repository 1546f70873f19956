"""Conversions between PIL / torch images and Qt images, and the candidate thumbnails.

Candidates are turned into QImages in the worker that made them (:func:`render_candidates`; a
QImage, unlike a QPixmap, may be built and painted in any thread) and kept in a
:class:`CandidateImages` cache, so the GUI thread runs no torch code per candidate: on a CPU
shared with other work each tiny torch call there can wait milliseconds for its thread team, and
256 thumbnails built in one go stalled the event loop.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image
from PySide6.QtCore import QRect, QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics, QIcon, QImage, QPainter, QPixmap

from core.images import tensor_to_pil, to_uint8
from core.model.degrade import upsample_bicubic
from core.workbench.export import MARK

if TYPE_CHECKING:
    from core.workbench.session import Candidate

SYNTHETIC_COLOUR = QColor(230, 126, 34)
MARK_BAND_COLOUR = QColor(122, 31, 31)
#: Side of the grid's thumbnails (the shortlist scales them down).
THUMB = 88


def pil_to_qimage(img: Image.Image) -> QImage:
    """A deep-copied QImage of an RGB or L PIL image."""
    if img.mode not in ("RGB", "L"):
        img = img.convert("RGB")
    fmt = QImage.Format.Format_RGB888 if img.mode == "RGB" else QImage.Format.Format_Grayscale8
    data = img.tobytes()
    bpl = img.width * (3 if img.mode == "RGB" else 1)
    return QImage(data, img.width, img.height, bpl, fmt).copy()


def tensor_to_qimage(t: torch.Tensor) -> QImage:
    return pil_to_qimage(tensor_to_pil(t))


def qimage_to_pil(q: QImage) -> Image.Image:
    """An RGB PIL image of any QImage (clipboard and drops)."""
    q = q.convertToFormat(QImage.Format.Format_RGB888)
    w, h, bpl = q.width(), q.height(), q.bytesPerLine()
    raw = bytes(q.constBits())[: bpl * h]
    return Image.frombuffer("RGB", (w, h), raw, "raw", "RGB", bpl, 1).copy()


def scaled_nearest(q: QImage, w: int, h: int) -> QImage:
    """Blocks, not blur: how a tiny image really is."""
    return q.scaled(w, h, Qt.AspectRatioMode.IgnoreAspectRatio, Qt.TransformationMode.FastTransformation)


def array_to_qimage(a: np.ndarray) -> QImage:
    """A deep-copied QImage of a uint8 ``(H, W, 3)`` or ``(H, W, 1)`` array."""
    a = np.ascontiguousarray(a)
    h, w, c = a.shape
    fmt = QImage.Format.Format_RGB888 if c == 3 else QImage.Format.Format_Grayscale8
    return QImage(a.tobytes(), w, h, w * c, fmt).copy()


THUMB_BACKGROUND = QColor(38, 38, 42)


def thumbnail(q: QImage, size: int) -> QImage:
    """``q`` scaled to fit a ``size`` x ``size`` square, centred on a dark background (every thumbnail
    has the same size, so plates and faces line up in one grid)."""
    scaled = q.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
    if scaled.width() == size and scaled.height() == size:
        return scaled
    out = QImage(size, size, QImage.Format.Format_RGB32)
    out.fill(THUMB_BACKGROUND)
    p = QPainter(out)
    p.drawImage((size - scaled.width()) // 2, (size - scaled.height()) // 2, scaled)
    p.end()
    return out


#: The mark's short forms, for thumbnails too narrow for :data:`MARK` on one line (the tooltip has it all).
SHORT_MARKS = ("SYNTHETIC \u00b7 NOT EVIDENCE", "NOT EVIDENCE")
MIN_MARK_PX = 7


def _mark_font(width: int) -> tuple[QFont, str]:
    """The largest font (at most width / 11 px) that fits the mark on one line of a ``width``-wide band,
    and the text (:data:`MARK`, or a short form of it when even the smallest size is too wide)."""
    font = QFont()
    font.setBold(True)
    font.setStretch(QFont.Stretch.SemiCondensed)
    for text in (MARK, *SHORT_MARKS):
        for px in range(max(MIN_MARK_PX, round(width / 11)), MIN_MARK_PX - 1, -1):
            font.setPixelSize(px)
            if QFontMetrics(font).horizontalAdvance(text) <= width - 4:
                return font, text
    return font, SHORT_MARKS[-1]


MARK_FLAGS = Qt.AlignmentFlag.AlignCenter


def mark_band_height(width: int) -> int:
    """Height of the slim one-line band under a ``width``-wide thumbnail that carries the mark."""
    return QFontMetrics(_mark_font(width)[0]).height() + 2


def marked_size(size: int) -> QSize:
    """The size of a marked ``size`` x ``size`` thumbnail (the band is added below it)."""
    return QSize(size, size + mark_band_height(size))


def mark_thumbnail(thumb: QImage, starred: bool = False) -> QImage:
    """A copy of ``thumb`` with a slim band below it carrying the mark (the candidate's pixels are not
    covered; exports and the large view carry the full banner), and a star when shortlisted; any thread."""
    w, h = thumb.width(), thumb.height()
    band = mark_band_height(w)
    out = QImage(w, h + band, QImage.Format.Format_RGB32)
    out.fill(MARK_BAND_COLOUR)
    p = QPainter(out)
    p.drawImage(0, 0, thumb)
    font, text = _mark_font(w)
    p.setFont(font)
    p.setPen(QColor(255, 255, 255))
    p.drawText(QRect(0, h, w, band), MARK_FLAGS, text)
    if starred:
        size = max(w, h)
        font.setPixelSize(max(12, size // 5))
        p.setFont(font)
        p.setPen(QColor(255, 215, 0))
        p.drawText(QRect(0, 0, w - 3, font.pixelSize() + 4),
                   Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop, "\u2605")
    p.end()
    return out


def candidate_icon(t: torch.Tensor, size: int, starred: bool = False) -> QIcon:
    """A thumbnail with the mark band (and a star when shortlisted), built on the spot."""
    return true_colour_icon(mark_thumbnail(thumbnail(tensor_to_qimage(t), size), starred))


@dataclass(frozen=True)
class Rendered:
    """A candidate's pictures as QImages: itself, its input, the bicubic baseline, its thumbnail."""

    image: QImage
    lr: QImage
    bicubic: QImage
    thumb: QImage  # THUMB-sized, unmarked
    icon_image: QImage  # ``thumb`` with the mark band below it


def _qimages(ts: list[torch.Tensor]) -> list[QImage]:
    """QImages of ``(C, H, W)`` tensors, quantised in one torch call per distinct shape."""
    out: list[QImage | None] = [None] * len(ts)
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for i, t in enumerate(ts):
        by_shape.setdefault(tuple(t.shape), []).append(i)
    for idx in by_shape.values():
        arr = to_uint8(torch.stack([ts[i] for i in idx])).permute(0, 2, 3, 1).numpy()
        for k, i in enumerate(idx):
            out[i] = array_to_qimage(arr[k])
    return out  # type: ignore[return-value]


def render_candidates(cands: Iterable[Candidate], thumb: int = THUMB) -> list[Rendered]:
    """The candidates' QImages; meant for worker threads (no QPixmap, no widget)."""
    cands = list(cands)
    if not cands:
        return []
    images = _qimages([c.image for c in cands])
    inputs: dict[int, tuple[QImage, QImage]] = {}  # candidates of one set share their input tensor
    for c in cands:
        if id(c.lr) not in inputs:
            scale = int(c.recipe.get("scale", c.image.shape[-1] // max(1, c.lr.shape[-1])))
            lr_q, bic_q = _qimages([c.lr, upsample_bicubic(c.lr, scale)])
            inputs[id(c.lr)] = (lr_q, bic_q)
    out = []
    for c, q in zip(cands, images, strict=True):
        t = thumbnail(q, thumb)
        lr_q, bic_q = inputs[id(c.lr)]
        out.append(Rendered(image=q, lr=lr_q, bicubic=bic_q, thumb=t, icon_image=mark_thumbnail(t)))
    return out


class CandidateImages:
    """Rendered candidates, looked up by the candidate object (thread-safe to fill).

    :meth:`render` is called in the worker that made the candidates; :meth:`get` on the GUI
    thread renders on the spot only what was not rendered before (a single candidate).
    """

    def __init__(self, thumb: int = THUMB) -> None:
        self.thumb = thumb
        self._lock = threading.Lock()
        self._items: dict[int, tuple[Candidate, Rendered]] = {}

    def render(self, cands: Iterable[Candidate]) -> list[Rendered]:
        cands = list(cands)
        rendered = render_candidates(cands, self.thumb)
        with self._lock:
            for c, r in zip(cands, rendered, strict=True):
                self._items[id(c)] = (c, r)
        return rendered

    def get(self, c: Candidate) -> Rendered:
        with self._lock:
            hit = self._items.get(id(c))
        if hit is not None and hit[0] is c:
            return hit[1]
        return self.render([c])[0]

    def discard(self, c: Candidate | None) -> None:
        if c is None:
            return
        with self._lock:
            hit = self._items.get(id(c))
            if hit is not None and hit[0] is c:
                del self._items[id(c)]

    def __contains__(self, c: Candidate) -> bool:
        hit = self._items.get(id(c))
        return hit is not None and hit[0] is c

    def icon(self, c: Candidate, size: int | None = None, starred: bool = False) -> QIcon:
        """The candidate's thumbnail icon (GUI thread: it makes a QPixmap)."""
        r = self.get(c)
        size = size or self.thumb
        if size == self.thumb and not starred:
            return true_colour_icon(r.icon_image)
        t = r.thumb if size == self.thumb else thumbnail(r.thumb, size)
        return true_colour_icon(mark_thumbnail(t, starred))


def true_colour_icon(q: QImage) -> QIcon:
    """An icon drawn the same when selected: Qt's default tints a selected icon (blue in most styles),
    and colour is exactly what an analyst compares between candidates."""
    pm = QPixmap.fromImage(q)
    icon = QIcon()
    for mode in (QIcon.Mode.Normal, QIcon.Mode.Selected, QIcon.Mode.Active):
        icon.addPixmap(pm, mode)
    return icon
