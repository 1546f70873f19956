"""tools/face_search_cards.py: identity-search figures written into the face cards, replaced not stacked."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from tests.conftest import REPO
from tests.helpers.cards import write_cards


def _tool():
    spec = importlib.util.spec_from_file_location("face_search_cards", REPO / "tools" / "face_search_cards.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _method(top10: float) -> dict:
    m = {"n": 259, "median_rank": 12.0, "p_vs_det_top10": 0.001, "p_vs_det_top20": 0.01}
    for k in (1, 10, 20, 50):
        m[f"top{k}"], m[f"top{k}_se"] = min(100.0, top10 * k / 10), 2.9
    return m


def _run(fused: float) -> dict:
    block = {"label": "face-8", "varsr": "face-8", "varsr_path": "/somewhere/face-8", "det": "face-8-det",
             "lr_size": [8, 8], "degradation": "ideal", "probe_size": None, "temperature": 1.0,
             "methods": {"det": _method(31.7), "min": _method(30.9), "fused": _method(fused)}}
    return {"probes": 259, "gallery_photos": 653, "records": 494, "n_candidates": 16, "seed": 0, "blocks": [block]}


def test_face_cards_get_one_current_section_and_keep_their_history(tmp_path: Path) -> None:
    tool = _tool()
    models = tmp_path / "models"
    write_cards(models, ("face-8", "face-8-det"), "## Held-out figures\nold")
    for fused in (42.1, 44.0):
        f = tmp_path / "run.json"
        f.write_text(json.dumps(_run(fused)), encoding="utf-8")
        assert tool.main([str(f), "--models", str(models), "--note", "A note."]) == 0
    for name in ("face-8", "face-8-det"):
        card = (models / name / "card.md").read_text(encoding="utf-8")
        assert card.count(tool.HEADING) == 1 and "## Held-out figures\nold" in card
        assert "## Known failure modes\n- x" in card and "A note." in card
        assert "44.0 ± 2.9" in card and "42.1" not in card  # replaced, not stacked
        assert "| -det | 3.2 ± 2.9 | 31.7 ± 2.9 |" in card and "8x8, `ideal` input" in card
