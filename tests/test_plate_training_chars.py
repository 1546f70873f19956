"""The plate models' training characters: real rows cut at their boxes, held-out plates kept out."""

from __future__ import annotations

import numpy as np

from core.data.plates import CLASSES
from core.plates.real import PlateRow
from core.plates.training_chars import load_plate_training_chars, row_chars
from tests.conftest import SHARED_DATA, requires_shared_data


def _row(text: str) -> PlateRow:
    """A grey row with a dark bar per character at known boxes (UC3M-LP plates are dark on light)."""
    img = np.full((20, 12 * len(text)), 220, np.uint8)
    boxes = []
    for i, c in enumerate(text):
        x0 = 12 * i + 2
        if c != "*":
            img[3:17, x0 + 2 : x0 + 6] = 30
        boxes.append(None if c == "*" else (float(x0), 2.0, float(x0 + 8), 18.0))
    return PlateRow(id=text, text=text, image=img, boxes=boxes, group=f"plate:{text}", source="test")


def test_row_chars_cuts_each_known_character_exactly_and_with_margins():
    rng = np.random.default_rng(0)
    x, y, groups = row_chars([_row("AB*1"), _row("7Z")], (8, 16), rng, copies=2)
    assert x.shape == (5 * 3, 16, 8) and x.dtype == np.uint8  # 5 known characters, exact + 2 copies
    assert [CLASSES[i] for i in y[::3]] == ["A", "B", "1", "7", "Z"]
    assert groups[:9] == ["plate:AB*1"] * 9 and groups[9:] == ["plate:7Z"] * 6
    # the glyph stays dark on its light background
    centre = x[:, 4:12, 3:5].astype(float).mean((1, 2))
    border = x[:, :, 0].astype(float).mean(1)
    assert (centre < border).all()
    # the jittered copies differ from the exact cut, the exact cuts are repeatable
    assert any((x[0] != x[k]).any() for k in (1, 2))
    x2, _, _ = row_chars([_row("AB*1")], (8, 16), np.random.default_rng(5), copies=0)
    assert (x2 == x[[0, 3, 6]]).all()


@requires_shared_data("plates/uc3m-lp")
def test_training_pool_never_holds_a_held_out_plate():
    root = SHARED_DATA / "plates"
    train = load_plate_training_chars(root, "train", (4, 8), rendered_n=50)
    test = load_plate_training_chars(root, "test", (4, 8))
    assert train.images.shape[1:] == (1, 8, 4) and len(test) > 1000
    uc3m_train = {g for i, g in zip(train.ids, train.groups, strict=True) if i.startswith("uc3m:")}
    assert uc3m_train and not (uc3m_train & set(test.groups))
    assert sum(i.startswith("rendered:") for i in train.ids) == 50
    assert train.source.startswith("plate-real-chars:train:")


def test_row_cells_cut_rows_as_the_app_cuts_them():
    from core.plates.prep import stretch
    from core.plates.reading import cut_cells, equal_bounds
    from core.plates.training_chars import cells_of_row, row_cells

    row = _row("AB*1")
    x, y, groups = row_cells([row, _row("7Z")], (8, 16), np.random.default_rng(0), copies=3)
    assert x.shape == (3 * 5, 16, 8) and x.dtype == np.uint8  # 5 known positions, 3 boxings each
    assert [CLASSES[i] for i in y[:3]] == ["A", "B", "1"]  # the masked position gives no cell
    assert groups[:9] == ["plate:AB*1"] * 9
    # a boxing with no margin and no jitter is exactly the app's equal cut of that box
    class Fixed:
        def uniform(self, lo, hi, size=None):
            return np.zeros(size) if size is not None else 0.0

        def random(self):
            return 1.0  # never jitter the cuts

    boxes = [(2.0, 2.0, 10.0, 18.0), (14.0, 2.0, 22.0, 18.0), (26.0, 2.0, 34.0, 18.0), (38.0, 2.0, 46.0, 18.0)]
    cells, labels = cells_of_row(row.image, row.text, boxes, False, (8, 16), Fixed())
    ref = cut_cells(stretch(row.image[2:18, 2:46]), equal_bounds(4), (8, 16))[:, 0].numpy() * 255
    expect = [stretch(ref[i]).round().astype(np.uint8) for i in (0, 1, 3)]
    assert labels == [CLASSES.index(c) for c in "AB1"]
    assert all((a == b).all() for a, b in zip(cells, expect, strict=True))
    # glyphs stay dark on light
    assert all(c[4:12, 2:6].mean() < c[:, 0].mean() for c in cells)
