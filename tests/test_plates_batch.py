"""Batch reading: one JSON line per row, >= 10 strings and registry plates, errors do not stop it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from core.plates.batch import AUTO, auto_model, plate_models, run_batch
from core.plates.render import PlateStyle, render_plate, shipped_fonts


def _row(text: str, path, px_h: int, light: bool = False) -> None:
    fg, bg = ((240, 240, 240), (20, 20, 60)) if light else ((10, 10, 10), (235, 235, 225))
    style = PlateStyle(font=str(shipped_fonts()[0]), fg=fg, bg=bg, spacing=0.25, spacing_jitter=0.0, surround=bg)
    plate = render_plate(text, style, np.random.default_rng(0), finish=False)
    x0, y0, x1, y1 = plate.row_box()
    m = 0.05 * (y1 - y0)
    img = Image.fromarray(plate.image).crop((int(x0 - m), int(y0 - m), int(x1 + m) + 1, int(y1 + m) + 1))
    img.convert("L").resize((len(text) * px_h // 2, px_h), Image.Resampling.BOX).save(path)


@pytest.fixture
def batch_dir(tmp_path):
    _row("AB1234", tmp_path / "a.png", 16)
    _row("XY987", tmp_path / "b.png", 8, light=True)
    (tmp_path / "broken.png").write_bytes(b"not a png")
    (tmp_path / "rows.csv").write_text("image,cells\na.png,6\nmissing.png,6\nb.png,5\nbroken.png,6\na.png,x\n",
                                       encoding="utf-8")
    rng = np.random.default_rng(0)
    plates = ["AB1234", "XY987"] + ["".join(rng.choice(list("ABCDEFGH0123456789"), n)) for n in [6, 5] * 20]
    (tmp_path / "registry.csv").write_text("plate,owner\n" + "".join(f"{p},o{i}\n" for i, p in enumerate(plates)),
                                           encoding="utf-8")
    return tmp_path


def test_batch_writes_one_line_per_row_and_errors_for_unreadable_rows(batch_dir):
    out = batch_dir / "out" / "read.jsonl"
    counts = run_batch(batch_dir / "registry.csv", batch_dir / "rows.csv", out, model="plate-char", k=4)
    lines = [json.loads(t) for t in out.read_text(encoding="utf-8").splitlines()]
    assert counts == {"rows": 5, "read": 2, "errors": 3}
    assert [x["image"] for x in lines] == ["a.png", "missing.png", "b.png", "broken.png", "a.png"]
    for i in (1, 3, 4):
        assert "error" in lines[i] and "strings" not in lines[i]
    for i, n in ((0, 6), (2, 5)):
        line = lines[i]
        assert len(line["strings"]) >= 10 and len(set(line["strings"])) == len(line["strings"])
        assert all(len(s) == n for s in line["strings"])
        assert len(line["registry"]) >= 10 and all(len(p) == n for p in line["registry"])
        assert len(line["positions"]) == n and all(p["top"][0][1] >= p["top"][-1][1] for p in line["positions"])
        assert line["string_log_probs"] == sorted(line["string_log_probs"], reverse=True)
    # the light-on-dark row is read inverted; the dark-on-light one may be read either way: the row-cell
    # reader reads most glyphs in both polarities, and on 708 held-out real plates letting its surer
    # reading decide ranked the registry better than deciding by the background (4x8: 88.3 against 87.3 %)
    assert lines[2]["inverted"] is True and isinstance(lines[0]["inverted"], bool)
    # the candidates are read beside the bicubic upscale, and the line says so
    assert lines[0]["reading"] == "varsr+bicubic" and lines[0]["position_temperature"] > 0


def test_candidates_only_reads_without_the_bicubic_upscale(batch_dir):
    (batch_dir / "one.csv").write_text("image,cells\na.png,6\n", encoding="utf-8")
    fused, alone = batch_dir / "fused.jsonl", batch_dir / "alone.jsonl"
    run_batch(None, batch_dir / "one.csv", fused, model="plate-char", k=4)
    run_batch(None, batch_dir / "one.csv", alone, model="plate-char", k=4, fuse=False)
    f, a = (json.loads(p.read_text(encoding="utf-8")) for p in (fused, alone))
    assert (f["reading"], a["reading"]) == ("varsr+bicubic", "varsr")
    assert f["positions"] != a["positions"]  # another distribution, not a relabelled one


def test_batch_reads_clean_rows_with_the_bicubic_reader(batch_dir):
    out = batch_dir / "bicubic.jsonl"
    run_batch(batch_dir / "registry.csv", batch_dir / "rows.csv", out, model="bicubic")
    first = json.loads(out.read_text(encoding="utf-8").splitlines()[0])
    # 8 px per character height 16: the reader must find the true plate among the first registry hits
    assert "AB1234" in first["registry"][:3]


def test_auto_picks_the_largest_model_not_above_the_row():
    models = [("p2", (2, 4)), ("p3", (3, 6)), ("p4", (4, 8))]
    assert auto_model((2.2, 4), models) == "p2"
    assert auto_model((3.5, 7), models) == "p3"
    assert auto_model((9, 20), models) == "p4"
    assert auto_model((1, 2), models) == "p2"
    assert "plate-char" in [m[0] for m in plate_models()]
    assert AUTO == "auto"


def test_varsr_search_plates_batch_cli(batch_dir, capsys):
    from core.cli.search import main

    out = batch_dir / "cli.jsonl"
    rc = main(["plates", "batch", str(batch_dir / "registry.csv"), "--rows", str(batch_dir / "rows.csv"),
               "--out", str(out), "--model", "plate-char-det", "--equal-cells"])
    assert rc == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["errors"] == 3
    lines = [json.loads(t) for t in out.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == 5 and lines[0]["reading"] == "det"  # a det output is not averaged with bicubic
