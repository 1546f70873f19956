"""Cell edges as data (core/workbench/cell_geometry.py): recorded in plate-row recipes and cases, replayed
bit-identically; old recipes without them mean equal cells; Fit cells on an unevenly spaced row."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import core
from core import case as K
from core.case.regenerate import verify_case
from core.errors import RecipeError
from core.workbench import session as S
from core.workbench.cell_geometry import CellGeometry, fit_cells
from core.workbench.recipes import check_recipe
from tests.helpers.cases import generate

UNEVEN = (0.04, 0.2, 0.33, 0.5, 0.71, 0.83)  # left edge, 4 interior edges, right edge of 5 cells


def test_equal_cells_write_the_recipe_they_always_did() -> None:
    g = CellGeometry.equal(7)
    assert g.to_info() == {"n": 7, "bounds": S.equal_cells(7)}
    assert CellGeometry.from_info({"n": 7, "bounds": S.equal_cells(7)}) == g
    assert CellGeometry.from_info({"n": 7}) == g  # an old recipe without bounds: equal cells
    assert CellGeometry.from_info({"n": 1}).cut(Image.new("RGB", (9, 4))) != []


def test_edges_and_polarity_round_trip_through_a_recipe() -> None:
    g = CellGeometry(UNEVEN, inverted=True)
    info = g.to_info()
    assert info["edges"] == list(UNEVEN) and info["bounds"] == list(UNEVEN[1:-1]) and info["inverted"] is True
    assert CellGeometry.from_info(info) == g
    check_recipe({"kind": "sample", "model": "plate-char", "source": {"cells": info}})
    with pytest.raises(RecipeError):
        check_recipe({"kind": "sample", "model": "plate-char", "source": {"cells": {**info, "edges": [0.5, 0.2]}}})
    with pytest.raises(RecipeError):
        CellGeometry.from_info({"n": 5, "edges": list(UNEVEN[:-1])})


def test_cut_at_edges_and_inverted() -> None:
    row = Image.fromarray(np.tile(np.arange(100, dtype=np.uint8), (8, 1)), "L").convert("RGB")
    cells = CellGeometry((0.1, 0.5, 0.9)).cut(row)
    assert [c.size for c in cells] == [(40, 8), (40, 8)]
    assert np.asarray(cells[0])[0, 0, 0] == 10
    inv = CellGeometry((0.1, 0.5, 0.9), inverted=True).cut(row)
    assert np.asarray(inv[0])[0, 0, 0] == 245
    moved = CellGeometry((0.1, 0.5, 0.9)).moved(1, 0.95)
    assert moved.edges[1] == pytest.approx(0.89)


def _plate_row_case(models_root: Path, evidence_png: Path, tmp_path: Path, geometry: CellGeometry | None):
    session = S.Session(models_root)
    case = K.Case.create(tmp_path / "cases" / "CASE-cells", session, "Examiner A")
    session.open_file(evidence_png)
    session.set_region(S.Region.from_box(4, 8, 44, 32))
    session.set_domain("plate")
    session.set_cells(5)
    if geometry is not None:
        session.set_cell_geometry(geometry)
    rows = generate(session, core.load_model(models_root / "plate-char"), 4, seed=5)
    for cid in rows.candidate_ids:
        session.star(cid)
    case.save()
    return case, rows


def test_uneven_inverted_rows_regenerate_bit_identically(models_root: Path, evidence_png: Path,
                                                         tmp_path: Path, one_thread: None) -> None:
    case, rows = _plate_row_case(models_root, evidence_png, tmp_path, CellGeometry(UNEVEN, inverted=True))
    row = case.session.candidates[rows.candidate_ids[0]]
    cells = row.recipe["source"]["cells"]
    assert cells["edges"] == list(UNEVEN) and cells["inverted"] is True
    assert all(p["source"]["cells"] == cells for p in row.recipe["cells"])
    opened = K.open_case(case.folder, models_root=models_root)
    assert opened.session.cell_edges == list(UNEVEN) and opened.session.cell_inverted
    results = verify_case(opened, list(opened.session.candidates))
    assert results and all(r.identical for r in results), [r.line() for r in results if not r.identical]


def test_recipes_without_bounds_replay_as_equal_cells(models_root: Path, evidence_png: Path,
                                                      tmp_path: Path, one_thread: None) -> None:
    case, rows = _plate_row_case(models_root, evidence_png, tmp_path, None)
    row = case.session.candidates[rows.candidate_ids[0]]
    assert row.recipe["source"]["cells"] == {"n": 5, "bounds": S.equal_cells(5)}  # as before
    for c in [row.recipe, *row.recipe["cells"]]:
        c["source"]["cells"].pop("bounds", None)  # an old recipe that did not write them
    from core.case.regenerate import Regenerator

    again = Regenerator(case).build(row.recipe)
    assert np.array_equal(again.image.numpy(), row.image.numpy())


def test_fit_cells_moves_the_edges_of_an_unevenly_spaced_row() -> None:
    from tests.test_plates_eval import _plate, _row

    plate = _plate("AB12CD7", spacing=0.1, jitter=0.15, seed=4)
    row = _row(plate)
    wide = np.pad(row, ((0, 0), (row.shape[1] // 14, 0)), constant_values=int(np.median(row)))
    fit = fit_cells(Image.fromarray(wide), 7)
    assert fit.score >= fit.equal_score and fit.geometry.n == 7
    assert fit.geometry.edges != CellGeometry.equal(7).edges and fit.geometry.edges[0] > 0
    assert not fit.geometry.inverted


def test_fit_cells_asks_the_analyst_to_check_the_polarity_of_a_tiny_row() -> None:
    from tests.test_plates_eval import _plate, _row

    row = Image.fromarray(_row(_plate("AB12CD7")))
    big = fit_cells(row, 7)
    assert big.px_per_char == row.size[0] / 7 and not big.polarity_unsure
    tiny = fit_cells(row.resize((14, 4), Image.Resampling.BOX), 7)  # 2x4 px per character
    assert tiny.px_per_char == 2.0 and tiny.polarity_unsure
