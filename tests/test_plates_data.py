"""Real plate loaders and the shipped plate reader on held-out real plates (needs ../shared/data)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.nets.classifier import default_path
from core.plates.heldout import accuracy, read_chars
from core.plates.reading import load_reader
from core.plates.real import exclude_compatible, load_uc3m

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
UC3M = SHARED_DATA / "plates" / "uc3m-lp"
pytestmark = [pytest.mark.data,
              pytest.mark.skipif(not (UC3M / "labels.csv").is_file(), reason="../shared/data/plates/uc3m-lp absent")]


def test_uc3m_rows_have_a_box_for_every_visible_character():
    val = load_uc3m(UC3M, "val", limit=50)
    assert len(val) == 50
    for row in val:
        assert row.text.count("*") == 2 and len(row.known) == len(row.text) - 2
        h, w = row.image.shape
        for i in row.known:
            x0, y0, x1, y1 = row.boxes[i]
            assert 0 <= x0 < x1 <= w + 1 and 0 <= y0 < y1 <= h + 1


def test_training_rows_compatible_with_a_held_out_plate_are_removed():
    val = load_uc3m(UC3M, "val", limit=20)
    assert exclude_compatible(val, val) == []


def test_shipped_reader_reads_held_out_uc3m_plates():
    meta = json.loads(default_path("plate-reader").with_suffix(".json").read_text(encoding="utf-8"))
    # exact boxes (the issue asks 98 %) and rows cut into equal cells as the app cuts them
    assert meta["extra"]["heldout"]["uc3m-val"]["char"] >= 0.98
    assert meta["extra"]["heldout"]["uc3m-val-equal-cells"]["char"] >= 0.95
    val = load_uc3m(UC3M, "val", limit=120)
    probs, labels, owner, _ = read_chars(load_reader(), val)
    acc = accuracy(probs.argmax(1), labels, owner)
    assert acc.n_plates == 120 and acc.char >= 0.96, str(acc)
