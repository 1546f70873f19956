"""Exact regeneration (core/case/regenerate.py), the consistency step (core/workbench/enforce.py), the report and
``varsr-sample --case CASE --verify``."""

from __future__ import annotations

import inspect
import io
import json
import os
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

import core
from core import case as K
from core.case.regenerate import verify_case
from core.case.report import STATEMENT, build_report, write_report_html
from core.cli.sample import main as sample_main
from core.evaluation.evaluate import lr_psnr_enforced
from core.images import sha256_file, to_uint8
from core.model.degrade import degrade, project_consistent
from core.workbench import session as S
from core.workbench.enforce import enforce_consistency
from tests.helpers.cases import generate


def test_every_kind_regenerates_bit_identically(saved_case) -> None:
    case, ids = saved_case
    results = verify_case(case)
    assert [r.candidate for r in results] == list(ids.values())
    assert all(r.identical and r.max_diff_255 == 0 for r in results), [r.line() for r in results]
    assert {r.kind for r in results} == {"sample", "sliders", "more-like-this", "consistent", "reference", "row"}


def test_reopened_case_regenerates_from_its_originals(saved_case, evidence_png: Path,
                                                      models_root: Path) -> None:
    case, ids = saved_case
    evidence_png.unlink()  # only the case's own copies remain
    (evidence_png.parent / "reference.png").unlink()
    opened = K.open_case(case.folder, models_root=models_root)
    results = verify_case(opened, list(opened.session.candidates))
    assert all(r.identical for r in results), [(r.candidate, r.line()) for r in results if not r.identical]
    assert len(results) == len(case.session.candidates)


def test_altered_pixels_give_the_largest_difference(saved_case, models_root: Path) -> None:
    case, ids = saved_case
    entry = next(e for e in json.loads((case.folder / K.MANIFEST).read_text())["sets"] if ids["sample"] in
                 e["candidates"])
    path = case.folder / entry["file"]
    tensors = load_file(path)
    img = tensors[f"{ids['sample']}.image"]
    img[0, 5, 5] = (img[0, 5, 5] + 0.2) % 1.0
    os.chmod(path, 0o644)
    save_file(tensors, path)
    opened = K.open_case(case.folder, models_root=models_root)
    assert any("does not match its recorded SHA-256" in w for w in opened.warnings)
    r = {x.candidate: x for x in verify_case(opened)}
    bad = r[ids["sample"]]
    assert bad.status == "differs" and bad.differing_8bit == 1 and 0.19 * 255 < bad.max_diff_255 <= 0.81 * 255
    assert all(x.identical for cid, x in r.items() if cid != ids["sample"])


def test_changed_original_fails_regeneration(saved_case, models_root: Path) -> None:
    case, ids = saved_case
    o = next(o for o in case.originals.values() if o.role == "evidence")
    p = case.folder / o.file
    os.chmod(p, 0o644)
    p.write_bytes(p.read_bytes() + b"appended")
    results = verify_case(K.open_case(case.folder, models_root=models_root))
    r = {x.candidate: x for x in results}[ids["sample"]]
    assert r.status == "failed" and "no longer matches" in r.detail


def test_missing_model_is_a_failure_not_a_crash(saved_case, tmp_path: Path) -> None:
    case, _ = saved_case
    results = verify_case(K.open_case(case.folder), models_root=tmp_path / "nothing")
    assert results and all(r.status == "failed" and "not installed" in r.detail for r in results)


def test_other_weights_are_named(saved_case) -> None:
    case, _ = saved_case
    bundled = core.model.bundle.models_dir()
    if not (bundled / "face-8" / "config.json").is_file():
        pytest.skip("no bundled face-8")
    r = verify_case(case, models_root=bundled)[0]
    assert r.status == "differs" and "not the recorded ones" in r.line()


def test_parent_dropped_from_memory_still_regenerates(models_root: Path, evidence_png: Path,
                                                      tmp_path: Path) -> None:
    if "max_candidates" not in inspect.signature(S.Session).parameters:
        pytest.skip("this Session keeps every candidate")
    s = S.Session(models_root, max_candidates=6)
    case = K.Case.create(tmp_path / "C", s, "E")
    face = core.load_model(models_root / "face-8")
    s.open_file(evidence_png)
    first = generate(s, face, 4, seed=1)
    parent = first.candidate_ids[0]
    child = s.add_set("steered", [S.derive_with_sliders(face, s.candidates[parent], {"mean/Male": 1.0})])
    s.star(child.candidate_ids[0])
    generate(s, face, 4, seed=2)  # over the bound: the oldest set (the parent's) is dropped
    assert parent not in s.candidates and parent in case.retired
    case.save()
    opened = K.open_case(case.folder, models_root=models_root)
    assert parent in opened.retired and any(e["action"] == "sets_dropped" for e in opened.log.entries())
    assert [r.status for r in verify_case(opened)] == ["identical"]


# -- consistency ---------------------------------------------------------------------------------------------
def test_enforced_candidate_matches_the_input_up_to_8bit_rounding(models_root: Path) -> None:
    model = core.load_model(models_root / "face-8")
    lr = to_uint8(torch.rand(3, 8, 8)).float() / 255  # an 8-bit input, as evidence is
    lr[:, 0, 0] = 1.0  # a saturated block: the plain residual correction would be clipped there
    cands = S.generate_candidates(model, lr, 4, seed=1)
    for c in cands:
        e = enforce_consistency(c)
        assert (degrade(e.image, 8) - lr).abs().max() < 1e-6
        saved = to_uint8(e.image).float() / 255  # as written to an 8-bit PNG
        assert (degrade(saved, 8) - lr).abs().max() <= 0.5 / 255 + 1e-6
        assert torch.equal(to_uint8(degrade(saved, 8)), to_uint8(lr))
        assert e.lr_psnr > 100 - 1e-6 > c.lr_psnr and e.l1 < 1e-3 < c.l1
        assert e.recipe["kind"] == "consistent" and e.recipe["parent_scores"]["lr_psnr_db"] == round(c.lr_psnr, 3)


def test_projection_is_the_nearest_consistent_image() -> None:
    torch.manual_seed(0)
    sr = torch.rand(2, 3, 16, 16)
    lr = torch.rand(2, 3, 4, 4)
    p = project_consistent(sr, lr, 4)
    assert (degrade(p, 4) - lr).abs().max() < 1e-6 and p.min() >= 0 and p.max() <= 1
    # no other consistent image in [0, 1] is closer: random feasible moves inside a block only go further
    for _ in range(20):
        d = torch.randn_like(p) * 0.01
        d = d - torch.nn.functional.interpolate(degrade(d, 4), scale_factor=4, mode="nearest")  # keep the means
        q = p + d
        inside = ((q >= 0) & (q <= 1)).flatten(1).all(1)
        dist_p = (p - sr).pow(2).flatten(1).sum(1)
        dist_q = (q - sr).pow(2).flatten(1).sum(1)
        assert (dist_q[inside] >= dist_p[inside] - 1e-6).all()
    # unsaturated blocks: the closed form, exactly the mean correction
    mid, target = torch.rand(1, 1, 8, 8) * 0.2 + 0.4, torch.rand(1, 1, 2, 2) * 0.2 + 0.4
    closed = mid + torch.nn.functional.interpolate(target - degrade(mid, 4), scale_factor=4, mode="nearest")
    assert torch.allclose(project_consistent(mid, target, 4), closed, atol=1e-6)


def test_eval_reports_lr_psnr_after_enforcing() -> None:
    torch.manual_seed(0)
    hr = torch.rand(3, 3, 16, 16)
    lr = degrade(hr, 4)
    cands = torch.rand(3, 3, 16, 16)
    before = core.evaluation.metrics.psnr(degrade(cands, 4), lr)
    after = lr_psnr_enforced(cands, lr, 4)
    assert (before < 25).all() and (after > 50).all()  # above the NTIRE 2021 bar of 45 dB


# -- report and CLI ------------------------------------------------------------------------------------------
def test_report_html_has_hashes_steps_models_and_the_statement(saved_case, tmp_path: Path) -> None:
    case, ids = saved_case
    results = verify_case(case)
    path = write_report_html(case, tmp_path / "report.html", results)
    text = path.read_text(encoding="utf-8")
    assert STATEMENT in text and "not an identification" in text
    for o in case.originals.values():
        assert o.sha256 in text
    weights = case.session.candidates[ids["sample"]].recipe["weights_sha256"]
    assert weights in text and "closest to the witness account" in text
    assert "hash chain verified" in text and "bit-identically" in text
    assert text.count("data:image/png;base64,") >= 2 * len(ids) + len(case.originals)
    for a in ("evidence loaded", "region of interest", "S1: 4 \u00d7 sample from face-8", "starred"):
        assert a in text, a
    rep = build_report(case)
    assert "Not run for this report" in rep.html(lambda k: k) and set(rep.images) >= {"lead_1", "original_0"}
    with Image.open(io.BytesIO(rep.images["lead_1"])) as im:
        assert im.text["Description"] == core.LEAD_NOTICE  # the embedded candidates carry the notice too


def test_cli_verify_passes_then_fails_on_a_difference(saved_case, models_root: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    case, ids = saved_case
    assert sample_main(["--case", str(case.folder), "--verify", "--models", str(models_root)]) == 0
    out = capsys.readouterr()
    assert out.out.count("bit-identical") == len(ids) and "intact" in out.out
    assert sample_main(["--case", str(case.folder), "--verify", "--models", str(models_root), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [c["status"] for c in data["candidates"]] == ["identical"] * len(ids)
    # a candidate whose pixels were changed after the save
    entry = json.loads((case.folder / K.MANIFEST).read_text())["sets"][0]
    path = case.folder / entry["file"]
    t = load_file(path)
    key = next(k for k in t if k.endswith(".image") and k.split(".")[0] in ids.values())
    t[key] = t[key].flip(-1).contiguous()
    os.chmod(path, 0o644)
    save_file(t, path)
    assert sample_main(["--case", str(case.folder), "--verify", "--models", str(models_root)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "did not regenerate bit-identically" in err and key.split(".")[0] in err


def test_cli_case_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        sample_main(["--case", str(tmp_path)])
    assert e.value.code == 2 and "--verify" in capsys.readouterr().err
    assert sample_main(["--case", str(tmp_path / "none"), "--verify"]) == 2
    assert "no such case folder" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        sample_main(["--model", "face-8"])  # sampling still needs --out and an input


def test_case_files_never_pickle(saved_case) -> None:
    case, _ = saved_case
    suffixes = {p.suffix for p in case.folder.rglob("*") if p.is_file()}
    assert suffixes <= {".json", ".jsonl", ".png", ".safetensors"}, suffixes
    assert sha256_file(case.folder / K.MANIFEST)
