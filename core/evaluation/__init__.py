"""Evaluation: the held-out harness behind ``varsr-eval``, its image metrics and the attribute-slider
measurements.

May import ``core.model``, ``core.nets``, ``core.data`` and the foundation modules; not the
workbench, case or search.
"""
