"""The input panel draws at each model's calibrated sampling temperature."""

from __future__ import annotations

import pytest


@pytest.mark.usefixtures("qapp")
def test_the_panel_takes_each_models_temperature_once():
    from varsr_gui.input_panel import InputPanel

    p = InputPanel()
    p.set_default_temperature("face-16", 5.0)
    assert p.temperature.value() == 5.0
    p.temperature.setValue(2.5)  # the analyst's choice stays while the model does
    p.set_default_temperature("face-16", 5.0)
    assert p.temperature.value() == 2.5
    p.set_default_temperature("face-8", 1.0)
    assert p.temperature.value() == 1.0
