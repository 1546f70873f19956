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


def test_batch_ranks_under_both_polarities_by_default(batch_dir):
    out, chosen = batch_dir / "mix.jsonl", batch_dir / "choose.jsonl"
    run_batch(batch_dir / "registry.csv", batch_dir / "rows.csv", out, model="bicubic")
    run_batch(batch_dir / "registry.csv", batch_dir / "rows.csv", chosen, model="bicubic", polarity="choose")
    mix = [json.loads(t) for t in out.read_text(encoding="utf-8").splitlines()]
    one = [json.loads(t) for t in chosen.read_text(encoding="utf-8").splitlines()]
    light = mix[2]
    assert light["polarity"] == "mix" and "polarity" not in one[2]
    w_as_is, w_inverted = light["polarity_weights"]
    assert abs(w_as_is + w_inverted - 1) < 1e-3 and w_inverted > w_as_is  # light on dark: inverted weighs more
    assert light["inverted"] is True
    assert light["registry_log_probs"] == sorted(light["registry_log_probs"], reverse=True)
    assert "XY987" in light["registry"][:3] and "AB1234" in mix[0]["registry"][:3]
    # the shown probabilities are the mixture's marginal, tempered as fitted for it
    assert light["position_temperature"] > 0 and all(abs(sum(p for _, p in x["top"])) <= 1 + 1e-3
                                                     for x in light["positions"])


def test_mixture_top_strings_are_exact():
    from itertools import product

    from core.plates.strings import mixture_log_prob, mixture_top_strings

    rng = np.random.default_rng(3)
    classes = list("ABCD")
    comps = []
    for w in (0.3, 0.7):
        p = rng.dirichlet(np.ones(4) * 0.5, size=3)
        comps.append((w, np.log(p)))
    every = ["".join(t) for t in product(classes, repeat=3)]
    codes = np.array([[classes.index(c) for c in t] for t in every])
    scored = zip(every, mixture_log_prob(comps, codes).tolist(), strict=True)
    brute = sorted(scored, key=lambda x: (-round(x[1], 9), x[0]))[:10]
    got = mixture_top_strings(comps, classes, 10)
    assert [t for t, _ in got] == [t for t, _ in brute]
    assert np.allclose([v for _, v in got], [v for _, v in brute])
    total = np.logaddexp.reduce(mixture_log_prob(comps, codes))
    assert abs(total) < 1e-9  # a mixture of distributions is a distribution


def test_polarity_weights_favour_the_surer_reading():
    from core.plates.reading import polarity_weights

    a, b = polarity_weights((-0.2, -1.0), 6)
    assert abs(a + b - 1) < 1e-12 and a > 0.99
    assert polarity_weights((-0.5, -0.5), 4) == (0.5, 0.5)
    assert polarity_weights((-900.0, -1.0), 7)[1] == 1.0  # no overflow


def test_the_mixture_has_its_own_fitted_temperature_and_falls_back_to_the_readings():
    from core.plates.reading import load_reader, position_temperature

    clf = load_reader()
    tables = clf.info.extra["position_temperature"]
    assert position_temperature(clf, "varsr+bicubic", (2, 4), mixture=True) == tables["varsr+bicubic@mix"]["2x4"]
    assert position_temperature(clf, "varsr+bicubic", (2, 4)) == tables["varsr+bicubic"]["2x4"]
    clf.info.extra["position_temperature"] = {"bicubic": {"4x8": 1.5}}
    assert position_temperature(clf, "bicubic", (4, 8), mixture=True) == 1.5  # no mixture table: the reading's
