"""tools/plate_cards.py: whole-plate figures written into the plate model cards, replaced not stacked."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from tests.conftest import REPO
from tests.helpers.cards import write_cards


def _tool():
    spec = importlib.util.spec_from_file_location("plate_cards", REPO / "tools" / "plate_cards.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _row(reader: str, px: str, condition: str, top10: float) -> dict:
    return {"reader": reader, "px": px, "condition": condition, "chars": 0.5, "chars_se": 0.01,
            "strings_top10": 0.2, "strings_top10_se": 0.01, "registry_top1": 0.1, "registry_top1_se": 0.01,
            "registry_top10": top10, "registry_top10_se": 0.018, "registry_rank_median": 12.0, "ece": 0.1,
            "ece_tempered": 0.02}


def _eval(polarity: str, top10: float) -> dict:
    return {"n_plates": 708, "k": 16, "registry_size": 20000, "polarity": polarity,
            "table": [_row(r, "2x4", "ideal", top10) for r in ("varsr", "det", "bicubic", "varsr+bicubic")]}


def test_cards_get_one_current_section_per_size_and_keep_their_history(tmp_path: Path) -> None:
    tool = _tool()
    models = tmp_path / "models"
    write_cards(models, ("plate-char", "plate-char-det"), "## Real whole plates\nold table")
    files = []
    for i, (pol, top) in enumerate((("choose", 0.415), ("mix", 0.468))):
        files.append(tmp_path / f"e{i}.json")
        files[-1].write_text(json.dumps(_eval(pol, top)), encoding="utf-8")
    assert tool.main([*map(str, files), "--models", str(models)]) == 0
    first = (models / "plate-char" / "card.md").read_text(encoding="utf-8")
    assert first.count(tool.HEADING) == 1 and "old table" in first and "## Known failure modes" in first
    assert "| ideal | plate-char-det | 50.0 ± 1.0 |" in first and "46.8 ± 1.8" in first and "41.5 ± 1.8" in first
    assert first.index("one polarity") < first.index("both polarities")
    # a second run with new figures replaces the section instead of adding another
    files[1].write_text(json.dumps(_eval("mix", 0.5)), encoding="utf-8")
    assert tool.main([*map(str, files), "--models", str(models)]) == 0
    again = (models / "plate-char-det" / "card.md").read_text(encoding="utf-8")
    assert again.count(tool.HEADING) == 1 and "50.0 ± 1.8" in again and "46.8 ± 1.8" not in again
    assert again.index("## Known failure modes") < again.index(tool.HEADING)
