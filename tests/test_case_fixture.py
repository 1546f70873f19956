"""A case saved before the structural step (issue 15) still opens, keeps its recipes byte for byte
and regenerates bit-identically: ``tests/data/case_v1`` holds it with the tiny models it was made
with (sample, sliders, more-like-this, consistency-enforced, reference and plate-row candidates)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from core import case as K
from core.case.regenerate import verify_case
from core.cli.sample import main as sample_main
from tests.helpers.cases import OLD_CASE as FIXTURE
from tests.helpers.cases import OLD_CASE_IDS as IDS


@pytest.fixture
def old_case(tmp_path: Path) -> Path:
    """A writable copy of the fixture case (opening and saving must not touch the repository's)."""
    folder = tmp_path / "CASE-v1"
    shutil.copytree(FIXTURE / "CASE-v1", folder)
    return folder


def test_old_case_opens_and_regenerates_bit_identically(old_case: Path, one_thread: None) -> None:
    case = K.open_case(old_case, models_root=FIXTURE / "models")
    assert case.audit_check.ok and case.warnings == []
    assert [e.candidate_id for e in case.session.shortlist] == list(IDS.values())
    results = verify_case(case, list(case.session.candidates))
    assert all(r.identical for r in results), [(r.candidate, r.line()) for r in results if not r.identical]
    assert {r.candidate: r.kind for r in results if r.candidate in IDS.values()} == {v: k for k, v in IDS.items()}


def test_old_case_verifies_on_the_command_line(old_case: Path, one_thread: None,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert sample_main(["--case", str(old_case), "--verify", "--models", str(FIXTURE / "models")]) == 0
    assert "all 6 candidate(s) regenerated bit-identically" in capsys.readouterr().err


def test_resaved_old_case_keeps_its_recipes_byte_for_byte(old_case: Path) -> None:
    before = json.loads((old_case / K.MANIFEST).read_text(encoding="utf-8"))
    case = K.open_case(old_case, models_root=FIXTURE / "models")
    case.save()
    after = json.loads((old_case / K.MANIFEST).read_text(encoding="utf-8"))
    # ("session" is left out: a reopened region's box is read back as floats, as it always was)
    for key in ("candidates", "requests", "sets", "shortlist", "retired", "originals", "models", "next_candidate",
                "next_set"):
        assert json.dumps(after[key]) == json.dumps(before[key]), key
