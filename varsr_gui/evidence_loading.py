"""Opening a large evidence image without stalling the window: the file is decoded, hashed and turned into a
display pyramid (the image at 1/1, 1/2, 1/4... for the zoomed-out view) in a worker, with progress; small
images open at once, as before."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image
from PySide6.QtGui import QImage

from core.images import MAX_PIXELS
from core.workbench import session as S
from varsr_gui.qt_images import pil_to_qimage
from varsr_gui.workers import TaskContext

#: Images with more pixels than this are decoded in a worker (a 4 MP frame opens in well under 0.2 s).
LARGE_PIXELS = 4_000_000
#: The pyramid stops once a level's longer side is at most this.
PYRAMID_MIN_SIDE = 1024


def declared_pixels(path: str | Path) -> int | None:
    """Width x height from the file's header (nothing decoded); None when the header cannot be read."""
    try:
        with warnings.catch_warnings():  # a huge header is answered by the full open, not by Pillow's warning
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                w, h = im.size
        return int(w) * int(h)
    except Exception:  # the full open says why, with the right message
        return None


def is_large(path: str | Path) -> bool:
    """Whether opening ``path`` should be done in a worker (large, but not too large to open at all)."""
    n = declared_pixels(path)
    return n is not None and LARGE_PIXELS < n <= MAX_PIXELS


def pyramid(image: Image.Image, min_side: int = PYRAMID_MIN_SIDE) -> list[QImage]:
    """The image as QImages at full size and halved until the longer side is at most ``min_side`` (any thread:
    QImages, not QPixmaps). Each level is the box-filtered half of the one before."""
    levels = [pil_to_qimage(image)]
    im = image
    while max(im.size) > min_side and min(im.size) >= 4:
        im = im.reduce(2)
        levels.append(pil_to_qimage(im))
    return levels


@dataclass
class Decoded:
    """What the worker hands back: the evidence and its display pyramid, or the error that stopped it."""

    evidence: S.Evidence | None
    levels: list[QImage]
    error: Exception | None = None


def decode_work(path: str | Path, ctx: TaskContext) -> Decoded:
    """Decode and hash the file, then build the pyramid; errors are returned, not raised, so the window can
    answer them exactly as for a small image."""
    ctx.progress(0, 3)
    try:
        ev = S.load_evidence(path)
    except Exception as e:  # ImageTooLarge, VarSRError, OSError...: the window words them
        return Decoded(None, [], e)
    if ctx.cancelled():
        raise S.GenerationCancelled("cancelled")
    ctx.progress(1, 3)
    levels = pyramid(ev.image)
    ctx.progress(3, 3)
    return Decoded(ev, levels)
