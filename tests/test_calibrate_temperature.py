"""Sampling temperature: the calibration's choice, and the app drawing at the model's value."""

from __future__ import annotations

import importlib.util

from tests.conftest import REPO


def _tool():
    spec = importlib.util.spec_from_file_location("calibrate_temperature", REPO / "tools" / "calibrate_temperature.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


ROWS = [{"temperature": t, "diversity": d, "psnr_best": p}
        for t, d, p in ((1.0, 0.001, 26.5), (2.0, 0.01, 26.5), (4.0, 0.026, 26.4), (6.0, 0.04, 26.0),
                        (8.0, 0.06, 25.1))]

def test_the_smallest_temperature_reaching_the_target_within_the_psnr_budget_is_chosen():
    tool = _tool()
    assert tool.choose(ROWS, 0.025, 0.3)["temperature"] == 4.0
    assert tool.choose(ROWS, 0.03, 0.6)["temperature"] == 6.0
    # nothing within budget reaches the target: the most diverse within budget, never a costlier one
    assert tool.choose(ROWS, 0.05, 0.3)["temperature"] == 4.0
