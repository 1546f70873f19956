"""Conversions between PIL / torch images and Qt images, and the candidate thumbnails."""

from __future__ import annotations

import torch
from PIL import Image
from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QColor, QFont, QIcon, QImage, QPainter, QPixmap

from core.images import tensor_to_pil

SYNTHETIC_COLOUR = QColor(230, 126, 34)


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


def candidate_icon(t: torch.Tensor, size: int, starred: bool = False) -> QIcon:
    """A thumbnail with a 'SYNTHETIC' tag (and a star when shortlisted)."""
    q = tensor_to_qimage(t)
    pm = QPixmap.fromImage(q.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio,
                                    Qt.TransformationMode.SmoothTransformation))
    p = QPainter(pm)
    font = QFont()
    font.setPixelSize(max(8, size // 10))
    font.setBold(True)
    p.setFont(font)
    band = QRect(0, pm.height() - font.pixelSize() - 3, pm.width(), font.pixelSize() + 3)
    p.fillRect(band, QColor(0, 0, 0, 150))
    p.setPen(SYNTHETIC_COLOUR)
    p.drawText(band, Qt.AlignmentFlag.AlignCenter, "SYNTHETIC")
    if starred:
        font.setPixelSize(max(12, size // 5))
        p.setFont(font)
        p.setPen(QColor(255, 215, 0))
        p.drawText(QRect(0, 0, pm.width() - 3, font.pixelSize() + 4),
                   Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop, "\u2605")
    p.end()
    return QIcon(pm)
