"""Typed recipes (core/workbench/recipes.py): the JSON they write is the JSON cases have always held, and every
kind has its replay (core/case/regenerate.py)."""

from __future__ import annotations

import json

import pytest

from core import case as K
from core.case.regenerate import REPLAYS, Regenerator
from core.errors import CaseError, RecipeError
from core.workbench.recipes import RECIPES, SampleRecipe, SlidersRecipe, parse_recipe
from tests.helpers.cases import OLD_CASE as FIXTURE
from tests.helpers.cases import OLD_CASE_IDS as IDS

RECORDED = json.loads((FIXTURE / "CASE-v1" / K.MANIFEST).read_text(encoding="utf-8"))["candidates"]


@pytest.mark.parametrize("cid", sorted(RECORDED))
def test_a_recorded_recipe_reads_back_to_the_same_json(cid: str) -> None:
    r = RECORDED[cid]["recipe"]
    typed = parse_recipe(r)
    assert typed.KIND == r["kind"] and type(typed) is RECIPES[r["kind"]]
    assert json.dumps(typed.to_json()) == json.dumps(r)
    assert typed.model.name == r["model"]


def test_remade_candidates_write_recipes_as_before(one_thread: None) -> None:
    """The recipes the generation functions write now have the keys, in the order, and the values of
    those an old case recorded (its sources aside: a replay is not given the analyst's source; nor a
    row's choices: a row is replayed from its chosen cells alone)."""
    case = K.open_case(FIXTURE / "CASE-v1", models_root=FIXTURE / "models")
    regen = Regenerator(case)
    for kind, cid in IDS.items():
        old, new = RECORDED[cid]["recipe"], regen.candidate(cid).recipe
        assert list(new) == list(old), kind
        for key in set(old) - {"source", "cells", "choices"}:
            assert json.dumps(new[key]) == json.dumps(old[key]), (kind, key)


def test_every_kind_has_a_replay() -> None:
    assert set(REPLAYS) == set(RECIPES) == set(IDS) | {"video-plate", "video-face"}  # no clip in the old case


def test_malformed_recipes_are_refused() -> None:
    sample = RECORDED[IDS["sample"]]["recipe"]
    with pytest.raises(RecipeError, match="unknown kind of candidate: painting"):
        parse_recipe({**sample, "kind": "painting"})
    with pytest.raises(RecipeError, match="has no 'seed'"):
        parse_recipe({k: v for k, v in sample.items() if k != "seed"})
    with pytest.raises(RecipeError, match="invalid 'temperature'"):
        parse_recipe({**sample, "temperature": "warm"})
    with pytest.raises(RecipeError, match="not a sliders recipe"):
        SlidersRecipe.from_json(sample)
    assert issubclass(RecipeError, CaseError)  # a case with a bad recipe is refused as a malformed case


def test_a_new_sample_recipe_writes_every_field_in_order() -> None:
    sample = RECORDED[IDS["sample"]]["recipe"]
    typed = parse_recipe(sample)
    assert isinstance(typed, SampleRecipe)
    made = SampleRecipe(typed.model_ref, typed.seed, typed.index, typed.temperature, typed.n, typed.chunk,
                        typed.source).to_json()
    assert json.dumps(made) == json.dumps(sample)
