"""Issue 12, section 1: consistency is scored and enforced under the degradation the analyst picked
(core/workbench/operators.py), says which in the case, and replays bit-identically."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

import core
from core import case as K
from core.case.regenerate import verify_case
from core.case.report import build_report
from core.errors import VarSRError
from core.model.camera import nominal_degrade
from core.workbench import session as S
from core.workbench.candidates import Candidate
from core.workbench.enforce import METHOD, enforce_consistency
from core.workbench.operators import CHOICES, operator, rescore, title
from core.workbench.recipes import ConsistentRecipe, parse_recipe
from tests.helpers.cases import OLD_CASE as FIXTURE
from tests.helpers.cases import generate

SCALE = 4


def _smooth(seed: int, size: int = 32) -> torch.Tensor:
    """A smooth RGB image in [0.1, 0.9] (no saturation: every projection is reachable)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(1, 3, size // 4, size // 4, generator=g)
    x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)[0]
    return 0.1 + 0.8 * x


def _quantised(x: torch.Tensor) -> torch.Tensor:
    return x.clamp(0, 1).mul(255).round().div(255)


def _candidate(image: torch.Tensor, lr: torch.Tensor) -> Candidate:
    recipe = {"kind": "sample", "model": "face-8", "scale": SCALE, "seed": 0, "index": 0, "temperature": 1.0}
    l1, psnr = operator(None).score(image[None], lr, SCALE)
    return Candidate(image=image, lr=lr, z=None, recipe=recipe, l1=float(l1[0]), lr_psnr=float(psnr[0]), id="C0001")


def test_the_operators_the_app_offers() -> None:
    assert CHOICES[0] == "ideal" and operator(None).is_box and operator("ideal").sigma == 0
    assert operator("blur").sigma == operator("camera").sigma == 0.6
    assert "Box filter" in title("ideal") and "0.6" in title("blur")
    with pytest.raises(VarSRError, match="unknown consistency operator 'fog'"):
        operator("fog")


def test_a_blurred_input_agrees_better_under_the_blur_operator() -> None:
    hr = _smooth(1)
    lr = _quantised(nominal_degrade(hr, SCALE, 0.6))  # what a camera with that optics recorded
    l1_box, psnr_box = operator("ideal").score(hr[None], lr, SCALE)
    l1_blur, psnr_blur = operator("blur").score(hr[None], lr, SCALE)
    assert psnr_blur[0] > psnr_box[0] + 3 and l1_blur[0] < l1_box[0]
    assert l1_blur[0] < 0.5  # only the 8-bit rounding is left
    # and the other way round: an ideal sensor's input agrees better under the box filter
    lr_box = _quantised(nominal_degrade(hr, SCALE, 0.0))
    box, blur = (operator(n).score(hr[None], lr_box, SCALE)[1][0] for n in ("ideal", "blur"))
    assert box > blur


def test_rescoring_records_the_operator_and_comes_back_exactly() -> None:
    hr = _smooth(2)
    lr = _quantised(nominal_degrade(hr, SCALE, 0.6))
    c = _candidate(_smooth(3), lr)
    before = (c.l1, c.lr_psnr)
    assert rescore([c], "ideal") == []  # already under the box filter: left as it is
    assert rescore([c, c, None], "blur") == [c] and c.scored_under == "blur" and (c.l1, c.lr_psnr) != before
    assert c.recipe_json()["scores_operator"] == "blur" and "(blur)" in c.scores
    rescore([c], "ideal")
    assert (c.l1, c.lr_psnr) == before and "scores_operator" not in c.recipe_json()


def test_enforcement_under_blur_makes_the_nominal_degradation_equal_the_input() -> None:
    lr = _quantised(nominal_degrade(_smooth(4), SCALE, 0.6))
    c = _candidate(_smooth(5), lr)
    e = enforce_consistency(c, "blur")
    assert (nominal_degrade(e.image, SCALE, 0.6) - lr).abs().max() * 255 < 0.5  # to 8-bit rounding
    assert e.scored_under == "blur" and e.lr_psnr > 55
    r = e.recipe
    assert r["kind"] == "consistent" and r["consistency_operator"] == "blur" and "project_nominal" in r["method"]
    typed = parse_recipe(r)
    assert isinstance(typed, ConsistentRecipe) and typed.operator == "blur"
    assert json.dumps(typed.to_json()) == json.dumps(r)  # the recipe round trip
    # the parent's scores are under the same operator, for a fair before and after
    assert r["parent_scores"]["lr_psnr_db"] == round(operator("blur").score(c.image[None], lr, SCALE)[1].item(), 3)
    # the box filter's recipe is written as it always was; a box enforcement over a blur one says so
    box = enforce_consistency(c)
    assert "consistency_operator" not in box.recipe and box.recipe["method"] == METHOD
    e.id = "C0002"
    again = enforce_consistency(e, None)
    assert again.recipe["consistency_operator"] is None and parse_recipe(again.recipe).operator is None


def test_the_session_rescores_and_the_case_records_the_operator(models_root: Path, evidence_png: Path,
                                                                tmp_path: Path) -> None:
    session = S.Session(models_root)
    case = K.Case.create(tmp_path / "CASE-OP", session, "Examiner A")
    face = core.load_model(models_root / "face-8")
    session.open_file(evidence_png)
    session.set_region(S.Region.from_box(16, 10, 32, 30))
    s1 = generate(session, face, 4, seed=3)
    c = session.candidates[s1.candidate_ids[0]]
    box_scores = (c.l1, c.lr_psnr)
    seen: list[list[Candidate]] = []
    session.events.scores_changed.connect(seen.append)
    session.set_consistency_operator("blur")
    assert session.consistency_operator == "blur" and len(seen[0]) == 4
    assert c.scored_under == "blur" and (c.l1, c.lr_psnr) != box_scores
    logged = [json.loads(x) for x in case.log.lines if '"settings_changed"' in x]
    assert logged[-1]["details"]["consistency_operator"] == "blur"
    # new candidates are scored under it; enforcement uses it and replays bit-identically
    s2 = generate(session, face, 4, seed=4)
    assert all(session.candidates[i].scored_under == "blur" for i in s2.candidate_ids)
    e = enforce_consistency(c, session.consistency_operator)
    cons = session.add_set("consistent", [e])
    for cid in (c.id, cons.candidate_ids[0]):
        session.star(cid)
    case.save()
    m = json.loads((case.folder / K.MANIFEST).read_text(encoding="utf-8"))
    assert m["session"]["consistency_operator"] == "blur"
    assert m["candidates"][c.id]["scores_operator"] == "blur"
    assert m["candidates"][cons.candidate_ids[0]]["recipe"]["consistency_operator"] == "blur"

    again = K.open_case(case.folder, models_root=models_root)
    assert again.warnings == [] and again.session.consistency_operator == "blur"
    reopened = again.session.candidates[c.id]
    assert reopened.scored_under == "blur" and reopened.lr_psnr == pytest.approx(c.lr_psnr)
    results = verify_case(again)
    assert all(r.identical for r in results), [(r.candidate, r.line()) for r in results]
    html = build_report(again).html()
    assert "in this case a Gaussian blur of 0.6 LR px, then the box filter" in html
    assert html.count("dB, under blur") == 2
    assert "model chosen by crop size, consistency under blur" in html  # the audit step, as the report words it


def test_an_unknown_operator_in_a_case_falls_back_to_the_box_filter(tmp_path: Path) -> None:
    folder = tmp_path / "CASE-v1"
    shutil.copytree(FIXTURE / "CASE-v1", folder)
    m = json.loads((folder / K.MANIFEST).read_text(encoding="utf-8"))
    m["session"]["consistency_operator"] = "fog"
    (folder / K.MANIFEST).write_text(json.dumps(m), encoding="utf-8")
    case = K.open_case(folder, models_root=FIXTURE / "models")
    assert case.session.consistency_operator == "ideal"
    assert any("'fog'" in w for w in case.warnings)


def test_an_old_case_scores_under_the_box_filter(tmp_path: Path) -> None:
    folder = tmp_path / "CASE-v1"
    shutil.copytree(FIXTURE / "CASE-v1", folder)
    case = K.open_case(folder, models_root=FIXTURE / "models")
    assert case.warnings == [] and case.session.consistency_operator == "ideal"
    assert all(c.scored_under == "ideal" for c in case.session.candidates.values())
    results = verify_case(case, list(case.session.candidates))
    assert all(r.identical for r in results)
