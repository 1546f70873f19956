"""Plate registry search: beam search, patterns, alternatives, registry CSVs, the CLI, real characters."""

from __future__ import annotations

import itertools
import json
import math
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from core.cli.search_plates import main
from core.errors import VarSRError
from core.search.plate_registry import RegistryError, load_registry, normalize_plate, parse_registry
from core.search.plates import (
    PatternError,
    PlateReading,
    alternatives,
    beam_search,
    matches_pattern,
    parse_pattern,
    pattern_text,
    plausible_pattern,
    position_probabilities,
    rank_registry,
    search_plate,
)
from tests.conftest import SHARED_DATA, requires_shared_data, tiny_config

ABC = ["A", "B", "C"]
#: Three positions over A, B, C; products worked out by hand in test_beam_search_exact_ranking.
TABLE = np.array([[0.6, 0.3, 0.1], [0.5, 0.4, 0.1], [0.7, 0.2, 0.1]])
DIGITS = list("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def brute_force(lp: np.ndarray, classes: list[str]) -> list[tuple[str, float]]:
    out = [("".join(classes[i] for i in combo), sum(lp[p, i] for p, i in enumerate(combo)))
           for combo in itertools.product(range(len(classes)), repeat=lp.shape[0])]
    return sorted(out, key=lambda t: (-round(t[1], 9), t[0]))


# -- beam search -----------------------------------------------------------------------------------
def test_beam_search_exact_ranking():
    got = beam_search(np.log(TABLE), ABC, top=10)
    # AAA .210, ABA .168, BAA .105, BBA .084, AAB .060, ABB .048, ACA .042, CAA .035,
    # then AAC and BAB tie at .030 (text order)
    assert [t for t, _ in got] == ["AAA", "ABA", "BAA", "BBA", "AAB", "ABB", "ACA", "CAA", "AAC", "BAB"]
    assert got[0][1] == pytest.approx(math.log(0.21))
    assert got[9][1] == pytest.approx(math.log(0.03))


def test_beam_search_matches_brute_force_and_narrow_beams_widen():
    rng = np.random.default_rng(1)
    for _ in range(5):
        p = rng.dirichlet(np.ones(4) * 0.5, size=4)
        lp = np.log(p)
        want = brute_force(lp, list("WXYZ"))[:20]
        got = beam_search(lp, list("WXYZ"), top=20, beam=3)  # the beam is at least top: still exact
        assert [t for t, _ in got] == [t for t, _ in want]
        assert np.allclose([s for _, s in got], [s for _, s in want])


def test_beam_search_with_pattern_and_bad_top():
    got = beam_search(np.log(TABLE), ABC, top=3, pattern=parse_pattern("?[BC]?", ABC))
    assert [t for t, _ in got] == ["ABA", "BBA", "ABB"]
    with pytest.raises(VarSRError):
        beam_search(np.log(TABLE), ABC, top=0)
    with pytest.raises(PatternError):
        beam_search(np.log(TABLE), ABC, pattern=parse_pattern("??", ABC))


# -- patterns --------------------------------------------------------------------------------------
def test_parse_pattern_and_match():
    pat = parse_pattern("ab-?1 [8b]2", DIGITS)
    assert pat == [frozenset("A"), frozenset("B"), None, frozenset("1"), frozenset("8B"), frozenset("2")]
    assert pattern_text(pat) == "AB?1[8B]2"
    assert matches_pattern("ABZ182", pat) and matches_pattern("ABZ1B2", pat)
    assert not matches_pattern("ABZ1C2", pat) and not matches_pattern("ABZ18", pat)
    assert parse_pattern("[8,B]", DIGITS) == [frozenset("8B")]


@pytest.mark.parametrize("bad", ["[AB", "A]", "A$", "[]", "", "[a!]"])
def test_parse_pattern_errors(bad):
    with pytest.raises(PatternError):
        parse_pattern(bad, DIGITS)


def test_parse_pattern_length():
    with pytest.raises(PatternError, match="3 positions"):
        parse_pattern("A?B", DIGITS, length=4)


# -- alternatives ----------------------------------------------------------------------------------
def reading_8b() -> PlateReading:
    p = np.full((3, len(DIGITS)), 0.001)
    p[0, DIGITS.index("8")], p[0, DIGITS.index("B")] = 0.6, 0.3  # 8/B
    p[1, DIGITS.index("0")], p[1, DIGITS.index("D")] = 0.46, 0.44  # 0/D
    p[2, DIGITS.index("7")] = 0.95
    return PlateReading(p, DIGITS)


def test_alternatives_report_ambiguous_positions():
    pos = alternatives(reading_8b(), min_p=0.1)
    assert [p.label for p in pos] == ["8/B", "0/D", "7"]
    assert [p.ambiguous for p in pos] == [True, True, False]
    assert pos[0].alternatives[0][1] == pytest.approx(0.6 / 0.934, rel=1e-4)
    assert pattern_text(plausible_pattern(pos)) == "[8B][0D]7"
    d = pos[0].to_dict()
    assert d["best"] == "8" and [a["char"] for a in d["alternatives"]] == ["8", "B"]
    # 8/B: best class 0.64 but the spread (entropy 0.90 nats > ln 2) makes it unreliable; 0/D: both;
    # 7 at 0.96: clear
    assert [p.unreliable for p in pos] == [True, True, False]
    assert pos[0].entropy == pytest.approx(0.898, abs=1e-3) and pos[2].entropy < 0.69 and d["unreliable"]


def test_reading_validates_and_floors():
    with pytest.raises(VarSRError):
        PlateReading(np.ones((2, 3)), DIGITS)
    with pytest.raises(VarSRError):
        PlateReading(-np.ones((2, 3)), ABC)
    r = PlateReading(np.array([[1.0, 0.0, 0.0]]), ABC)
    assert math.isfinite(r.score("B")) and r.score("B") < -13
    assert r.score("AB") == -math.inf and r.score("Z") == -math.inf


# -- the registry ----------------------------------------------------------------------------------
def write(tmp_path: Path, text: str | bytes, name: str = "reg.csv") -> Path:
    p = tmp_path / name
    p.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return p


def test_registry_reads_columns_and_normalises(tmp_path):
    reg = load_registry(write(tmp_path, "\ufeffOwner;Registration;Colour\nSmith;ab-12 cd;red\n;;\nDoe;;blue\n"))
    assert reg.column == "Registration" and reg.columns == ["Owner", "Registration", "Colour"]
    assert reg.keys == ["AB12CD"] and reg.skipped == 1
    assert reg.other_columns(0) == {"Owner": "Smith", "Colour": "red"}
    assert normalize_plate(" xy.9-9 ") == "XY99"
    assert load_registry(write(tmp_path, "id,tag\n1,ABC\n"), column="TAG").keys == ["ABC"]


@pytest.mark.parametrize("content, match", [
    ("owner,colour\nSmith,red\n", "no plate column"),
    ("", "empty"),
    ("   \n\n", "empty"),
    ("plate,owner\n", "no plates"),
    ("plate,owner\nAB12,Smith,extra\n", "line 2 has 3 fields"),
    ("plate,plate\nA,B\n", "repeated column"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "binary"),
    (bytes(range(256)) * 4, "binary"),
    ("plate\n\xe9t\xe9\n".encode("latin-1"), "UTF-8"),
    ('plate,owner\n"AB12,Smith\n', "malformed|fields"),
])
def test_registry_errors(tmp_path, content, match):
    with pytest.raises(RegistryError, match=match) as e:
        load_registry(write(tmp_path, content))
    assert isinstance(e.value, VarSRError)


def test_registry_missing_file_and_named_column(tmp_path):
    with pytest.raises(RegistryError, match="no such registry"):
        load_registry(tmp_path / "nope.csv")
    with pytest.raises(RegistryError, match="no column 'reg'.*plate, owner"):
        load_registry(write(tmp_path, "plate,owner\nAB,x\n"), column="reg")


def test_search_lists_exact_wildcard_and_ranks_the_whole_registry():
    reading = reading_8b()
    reg = parse_registry("plate,owner\n807,a\nB07,b\nXYZ,c\n8D7,d\n807,e\nAB12,f\n8-0-7,g\n")
    res = search_plate(reading, reg, top=4, registry_top=10)
    assert [t for t, _ in res.strings] == ["807", "8D7", "B07", "BD7"]
    assert [(h.plate, h.string_rank) for h in res.exact] == [("807", 1), ("807", 1), ("8-0-7", 1), ("8D7", 2),
                                                             ("B07", 3)]
    assert res.pattern == "[8B][0D]7" and res.pattern_source == "alternatives"
    assert sorted(h.record["owner"] for h in res.wildcard) == ["a", "b", "d", "e", "g"]
    # every record of the right length is ranked, XYZ too (not a beam hit), best first
    assert [h.record["owner"] for h in res.ranked] == ["a", "e", "g", "d", "b", "c"]
    assert res.ranked[-1].string_rank is None and res.n_scored == 6 and res.n_other == 1
    scores = [h.score for h in res.ranked]
    assert scores == sorted(scores, reverse=True) and scores[0] == pytest.approx(reading.score("807"))
    ranking = rank_registry(reading, reg)
    assert ranking.rank_of("XYZ", reg) == 6 and ranking.rank_of("NOPE", reg) is None
    user = search_plate(reading, reg, top=2, pattern="B??")
    assert [t for t, _ in user.strings] == ["B07", "BD7"] and [h.plate for h in user.wildcard] == ["B07"]
    d = json.loads(json.dumps(res.to_dict()))
    assert d["registry"]["n_records"] == 7 and d["reading"] == "[8/B][0/D]7"
    none = search_plate(reading, parse_registry("plate\nAB12\n"))
    assert none.n_scored == 0 and none.n_other == 1 and not (none.exact or none.wildcard or none.ranked)


# -- probabilities from candidates -----------------------------------------------------------------
class FixedClassifier(torch.nn.Module):
    """Stands in for the CNN: class A when an image's top half is brighter than its bottom half, else B
    (so the reader's contrast stretch keeps its answer); ``extra`` mimics a reader's calibration."""

    classes = ["A", "B"]

    def __init__(self, extra: dict | None = None) -> None:
        super().__init__()
        self.info = SimpleNamespace(size=(8, 16), channels=1, extra=extra or {})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.shape[-2] // 2
        a = (x[..., :h, :].mean(dim=(1, 2, 3)) > x[..., h:, :].mean(dim=(1, 2, 3))).float()
        return torch.stack([a, 1 - a], 1) * 50.0

    def probs(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self(x), 1)


def _glyph(top_bright: bool, h: int = 16, w: int = 8, n: int = 1) -> torch.Tensor:
    x = torch.full((n, 1, h, w), 0.2)
    x[:, :, : h // 2] = 0.8
    return x if top_bright else 1.0 - x


def test_position_probabilities_are_the_mean_softmax_over_candidates():
    cells = [torch.cat([_glyph(True, n=3), _glyph(False)]), _glyph(False, 4, 2, n=2)]
    r = position_probabilities(FixedClassifier(), cells)
    assert r.n_candidates == [4, 2] and r.method == "varsr" and r.temperature == 1.0
    assert r.probs[0] == pytest.approx([0.75, 0.25], abs=1e-5) and r.probs[1] == pytest.approx([0, 1], abs=1e-5)
    with pytest.raises(VarSRError):
        position_probabilities(FixedClassifier(), [])


def test_candidates_are_read_beside_their_bicubic_upscale_and_tempered_as_measured():
    """With the cells' model inputs, a VarSR reading is the mean of the candidates' and the bicubic
    upscale's distributions, tempered by the temperature the reader's JSON gives for that size."""
    extra = {"position_temperature": {"varsr+bicubic": {"2x4": 2.0, "4x8": 1.0}, "det": {"2x4": 3.0}}}
    clf = FixedClassifier(extra)
    cands = [_glyph(True, n=4), _glyph(True, n=4)]
    lrs = [_glyph(False, 4, 2)[0], _glyph(True, 4, 2)[0]]  # position 1's input disagrees with its candidates
    r = position_probabilities(clf, cands, lrs=lrs)
    assert r.method == "varsr+bicubic" and r.temperature == 2.0
    assert r.probs[0] == pytest.approx([0.5, 0.5], abs=1e-5)  # candidates A, bicubic B: half each
    assert r.probs[1][0] > 0.99  # both say A; tempering flattens only what is uncertain
    untempered = position_probabilities(FixedClassifier(), cands, lrs=lrs)
    assert untempered.temperature == 1.0 and untempered.probs[0] == pytest.approx([0.5, 0.5], abs=1e-5)
    det = position_probabilities(clf, [_glyph(True), _glyph(False)], lrs=lrs, method="det")
    assert det.method == "det" and det.temperature == 3.0  # a det output is not averaged with bicubic
    assert det.probs[0][0] > 0.5 > det.probs[1][0]
    with pytest.raises(VarSRError):
        position_probabilities(clf, cands, lrs=lrs[:1])
    d = search_plate(r).to_dict()
    assert d["reading_method"] == "varsr+bicubic" and d["position_temperature"] == 2.0
    assert "bicubic" in d["probabilities"] and "temperature 2" in d["probabilities"]


def test_session_candidates_are_read_with_their_inputs():
    from core.search.plates import read_candidates

    clf = FixedClassifier({"position_temperature": {"det": {"2x4": 1.5}}})
    cell = [SimpleNamespace(image=_glyph(True)[0], lr=_glyph(True, 4, 2)[0], z=None)]
    r = read_candidates(clf, [cell, cell])
    assert r.method == "det" and r.temperature == 1.5
    cell_z = [SimpleNamespace(image=_glyph(True)[0], lr=_glyph(False, 4, 2)[0], z=torch.zeros(4))]
    assert read_candidates(clf, [cell_z]).method == "varsr+bicubic"
    assert read_candidates(clf, [[_glyph(True)[0]]]).method == "varsr"  # bare images: no inputs to fuse


# -- the CLI ---------------------------------------------------------------------------------------
@pytest.fixture
def cells_dir(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    for pos in range(3):
        d = tmp_path / "cells" / str(pos)
        d.mkdir(parents=True)
        for k in range(2):
            Image.fromarray((rng.random((16, 8)) * 255).astype(np.uint8), "L").save(d / f"candidate_{k:03d}.png")
        Image.new("L", (2, 4)).save(d / "input_lr.png")  # a varsr-sample LR input: not a candidate
    return tmp_path / "cells"


def run_json(capsys, argv: list[str]) -> dict:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_cli_cells_dir_json(tmp_path, cells_dir, capsys):
    reg = write(tmp_path, "plate,owner\nAB1,x\nZZZ,y\nABCD,z\n")
    out = tmp_path / "out.json"
    d = run_json(capsys, ["plates", "query", str(reg), "--cells-dir", str(cells_dir), "--top", "5", "--out", str(out)])
    assert d["input"]["k"] == [2, 2, 2] and d["length"] == 3 and len(d["strings"]) == 5
    assert [s["rank"] for s in d["strings"]] == [1, 2, 3, 4, 5]
    assert d["registry"]["n_scored"] == 2 and d["registry"]["n_other_length_or_chars"] == 1
    assert {h["record"]["owner"] for h in d["registry"]["ranked"]} == {"x", "y"}
    assert "not evidence" in d["notice"] and json.loads(out.read_text()) == d


def test_cli_image_with_model_and_bicubic(tmp_path, capsys):
    from core.model.bundle import save_bundle
    from core.model.varsr import VarSR

    torch.manual_seed(0)
    bundle = save_bundle(VarSR(tiny_config("plate-char")), tmp_path / "tiny")
    img = tmp_path / "plate.png"
    Image.fromarray((np.random.default_rng(1).random((4, 10)) * 255).astype(np.uint8), "L").save(img)
    d = run_json(capsys, ["plates", "query", "--image", str(img), "--cells", "5", "--model", str(bundle),
                          "-k", "4", "--top", "3", "--pattern", "????[0123456789]"])
    assert d["input"]["k"] == 4 and d["length"] == 5 and d["pattern_source"] == "user"
    assert all(s["text"][-1].isdigit() for s in d["strings"]) and "registry" not in d
    b = run_json(capsys, ["plates", "query", "--image", str(img), "--cells", "5", "--model", "bicubic"])
    assert b["input"]["model"] == "bicubic" and b["input"]["k"] == 1


def test_cli_image_light_on_dark_reads_the_inverted_cells(tmp_path, capsys):
    """``--light-on-dark`` inverts each cell before reading, as the app's Light on dark does: a plate
    saved light on dark reads as the same plate saved dark on light, and the JSON says so."""
    rng = np.random.default_rng(2)
    a = (rng.random((16, 40)) * 255).astype(np.uint8)
    dark_on_light, light_on_dark = tmp_path / "dol.png", tmp_path / "lod.png"
    Image.fromarray(a, "L").save(dark_on_light)
    Image.fromarray(255 - a, "L").save(light_on_dark)
    base = ["plates", "query", "--cells", "5", "--model", "bicubic", "--top", "5"]
    plain = run_json(capsys, [*base, "--image", str(dark_on_light)])
    flipped = run_json(capsys, [*base, "--image", str(light_on_dark), "--light-on-dark"])
    as_is = run_json(capsys, [*base, "--image", str(light_on_dark)])
    assert flipped["input"]["light_on_dark"] is True and plain["input"]["light_on_dark"] is False
    assert [s["text"] for s in flipped["strings"]] == [s["text"] for s in plain["strings"]]
    assert [s["text"] for s in as_is["strings"]] != [s["text"] for s in plain["strings"]]
    assert main(["plates", "query", "--cells-dir", str(tmp_path), "--light-on-dark"]) == 2
    assert "--light-on-dark applies to --image" in capsys.readouterr().err


def test_cli_errors_exit_2(tmp_path, cells_dir, capsys):
    bad = write(tmp_path, b"\x00\x01\x02garbage")
    assert main(["plates", "query", str(bad), "--cells-dir", str(cells_dir)]) == 2
    assert "binary" in capsys.readouterr().err
    assert main(["plates", "query", "--cells-dir", str(cells_dir), "--image", str(bad)]) == 2
    assert "exactly one" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["plates", "query", "--cells-dir", str(tmp_path / "empty")]) == 2
    assert "position subfolders" in capsys.readouterr().err
    assert main(["plates", "query", "--cells-dir", str(cells_dir), "--pattern", "A["]) == 2
    reg = write(tmp_path, "plate\nAB-1\nXYZ9\n", "ok.csv")
    d = run_json(capsys, ["plates", "check", str(reg)])
    assert d["n_records"] == 2 and d["lengths"] == {"3": 1, "4": 1}


def test_add_cli_on_another_parser():
    import argparse

    from core.cli.search_plates import add_cli

    parser = argparse.ArgumentParser(prog="varsr-search")
    add_cli(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["plates", "check", "reg.csv"])
    assert callable(args.func) and args.registry == Path("reg.csv")


# -- real characters -------------------------------------------------------------------------------
@pytest.mark.data
@requires_shared_data("plates/openalpr-train-ocr")
def test_real_held_out_characters_rank_the_true_plate(tmp_path, capsys):
    """Six held-out OpenALPR crops (8B0DA7: look-alike pairs): read at HR the plate is the top string;
    from 2x4 px with the plate-char model it is in the top 10 of a registry of 300 random plates plus itself."""
    from core.data import load_plate_chars
    from core.model.degrade import degrade
    from core.nets.classifier import class_map
    from core.search.plates import load_plate_classifier

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        chars = load_plate_chars(SHARED_DATA / "plates" / "openalpr-train-ocr", "test", sheets=False)
    clf = load_plate_classifier()
    hr = chars.images.float() / 255
    right = clf.probs(hr).argmax(1) == class_map(clf.classes, chars.classes)[chars.labels]
    names = [chars.classes[int(v)] for v in chars.labels]
    picked = [next(i for i in range(len(names)) if right[i] and names[i] == c) for c in "8B0DA7"]
    truth = "".join(chars.classes[int(chars.labels[i])] for i in picked)
    hr_cells = [hr[i : i + 1] for i in picked]
    assert search_plate(position_probabilities(clf, hr_cells)).strings[0][0] == truth

    plate = torch.cat([hr[i] for i in picked], dim=2)  # (1, 16, 48)
    lr = degrade(plate, 4)
    Image.fromarray((lr[0] * 255).round().byte().numpy(), "L").save(tmp_path / "plate.png")
    rng = np.random.default_rng(0)
    others = ["".join(rng.choice(DIGITS, 6)) for _ in range(300)]
    reg = write(tmp_path, "plate,note\n" + "".join(f"{p},random\n" for p in others) + f"{truth},true\n")
    d = run_json(capsys, ["plates", "query", str(reg), "--image", str(tmp_path / "plate.png"), "--cells", "6"])
    assert truth in [h["key"] for h in d["registry"]["ranked"]]


def test_varsr_search_cli_has_plates(tmp_path, capsys):
    search = pytest.importorskip("core.cli.search")
    reg = write(tmp_path, "plate\nAB-1\n")
    assert search.main(["plates", "check", str(reg)]) == 0
    assert json.loads(capsys.readouterr().out)["n_records"] == 1
