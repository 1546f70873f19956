"""The synthetic plate renderer: every class, glyph boxes that hold the glyphs, both polarities."""

from __future__ import annotations

import numpy as np
import pytest

from core.data.plates import CLASSES
from core.plates.prep import is_light_on_dark, otsu, prepare_char, stretch
from core.plates.render import (
    PlateStyle,
    random_style,
    random_text,
    render_chars,
    render_plate,
    shipped_fonts,
)


def test_fonts_ship_with_their_licences():
    fonts = shipped_fonts()
    assert len(fonts) >= 5
    folder = fonts[0].parent
    assert (folder / "README.md").is_file()
    assert len(list(folder.glob("LICENSE-*.txt"))) >= 4


def _flat_style(font, fg=(0, 0, 0), bg=(255, 255, 255)) -> PlateStyle:
    return PlateStyle(font=str(font), fg=fg, bg=bg, condense=0.8, spacing=0.3, spacing_jitter=0.0,
                      surround=bg, perspective=0.0, rotation=0.0)


@pytest.mark.parametrize("font", shipped_fonts(), ids=lambda p: p.stem)
def test_every_class_renders_inside_its_box(font):
    plate = render_plate("".join(CLASSES), _flat_style(font), np.random.default_rng(0), finish=False)
    assert plate.text == "".join(CLASSES)
    grey = plate.image.mean(-1)
    x_prev = -1.0
    for c, (x0, y0, x1, y1) in zip(plate.text, plate.boxes, strict=True):
        assert x1 > x0 and y1 > y0 and x0 >= x_prev - 1, c  # left to right
        x_prev = x1
        inside = grey[int(y0) : int(np.ceil(y1)), int(x0) : int(np.ceil(x1))]
        assert (inside < 100).mean() > 0.15, f"{c}: its box holds too little ink"
    # Outside every box the plate is background: all ink lies in the boxes (1 px of antialiasing aside).
    mask = np.zeros(grey.shape, bool)
    for x0, y0, x1, y1 in plate.boxes:
        mask[max(0, int(y0) - 1) : int(np.ceil(y1)) + 1, max(0, int(x0) - 1) : int(np.ceil(x1)) + 1] = True
    assert (grey[~mask] < 100).sum() == 0


def test_random_plates_keep_boxes_inside_the_image_and_cover_both_polarities():
    rng = np.random.default_rng(1)
    light = 0
    for _ in range(40):
        style = random_style(rng)
        plate = render_plate(random_text(rng), style, rng)
        h, w = plate.image.shape[:2]
        assert len(plate.boxes) == len(plate.text) >= 5
        for x0, y0, x1, y1 in plate.boxes:
            assert -1 <= x0 < x1 <= w + 1 and -1 <= y0 < y1 <= h + 1
        light += style.light_on_dark
    assert 0 < light < 40


def test_light_on_dark_row_is_recognised():
    font = shipped_fonts()[0]
    dark = render_plate("AB1234", _flat_style(font), np.random.default_rng(0), finish=False)
    light = render_plate("AB1234", _flat_style(font, fg=(250, 250, 250), bg=(10, 30, 90)),
                         np.random.default_rng(0), finish=False)
    for plate, expect in ((dark, False), (light, True)):
        x0, y0, x1, y1 = (int(v) for v in plate.row_box())
        row = stretch(plate.image.mean(-1)[max(0, y0 - 5) : y1 + 5, max(0, x0 - 5) : x1 + 5])
        assert is_light_on_dark(row) is expect


def test_render_chars_is_deterministic_and_labelled():
    x, y = render_chars(60, (8, 16), seed=3)
    x2, y2 = render_chars(60, (8, 16), seed=3)
    assert x.shape == (60, 16, 8) and x.dtype == np.uint8
    assert np.array_equal(x, x2) and np.array_equal(y, y2)
    assert y.min() >= 0 and y.max() < len(CLASSES)
    # prepared dark-on-light: the background (border median) is light
    assert np.median(np.concatenate([x[:, 0], x[:, -1]])) > 128


def test_prepare_char_pads_inverts_and_resizes():
    a = np.full((40, 10), 255, np.uint8)
    a[5:35, 3:7] = 0  # a dark "1"
    out = prepare_char(a, (8, 16))
    assert out.shape == (16, 8) and out[8, 3:5].mean() < 110 and out[0, 0] > 200
    inv = prepare_char(255 - a, (8, 16), invert=True)
    assert np.abs(inv.astype(int) - out.astype(int)).max() <= 2
    assert 0 < otsu(a) < 255
