"""Checks on values read from JSON (a case's manifest, a recipe): exactly the types this program writes."""

from __future__ import annotations

import math
from typing import Any


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def is_num(v: Any) -> bool:
    """A finite number (not a bool)."""
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def is_str(v: Any) -> bool:
    return isinstance(v, str)


def is_dict(v: Any) -> bool:
    return isinstance(v, dict)


def ints(v: Any) -> bool:
    return isinstance(v, list) and all(is_int(x) for x in v)


def nums(v: Any) -> bool:
    return isinstance(v, list) and all(is_num(x) for x in v)


def strs(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def num_dict(v: Any) -> bool:
    """An object whose values are all finite numbers (slider values)."""
    return isinstance(v, dict) and all(is_num(x) for x in v.values())
