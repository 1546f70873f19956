"""Fuzzing helpers: a wall-clock limit per input, and JSON documents edited and damaged by hypothesis."""

from __future__ import annotations

import contextlib
import json
import signal
import threading
from collections.abc import Iterator

from hypothesis import strategies as st

#: Wall-clock limit for one input; a hang fails the test instead of stalling the suite.
PER_INPUT_S = 5


@contextlib.contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    """Raise TimeoutError if the block runs longer than ``seconds`` (main thread, Unix only)."""
    if not hasattr(signal, "SIGALRM") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def boom(_sig: int, _frame: object) -> None:
        raise TimeoutError(f"an input took more than {seconds} s")

    old = signal.signal(signal.SIGALRM, boom)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _json_values() -> st.SearchStrategy:
    scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(allow_nan=True),
                        st.text(max_size=8), st.sampled_from(["../x.png", "/etc/passwd", "C0001", "S1", "loose",
                                                              "box", "row", "face", "0" * 64]))
    return st.recursive(scalars, lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=6),
                                                                                          kids, max_size=3),
                        max_leaves=6)


def _paths(doc: object, at: tuple = ()) -> list[tuple]:
    out = [at]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*at, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, (*at, i))
    return out


@st.composite
def edited_json(draw: st.DrawFn, text: str) -> bytes:
    """A JSON document with a few edits anywhere in its tree (a value replaced, a key deleted or added),
    then maybe damaged as text (truncated, a byte flipped, or a run deleted)."""
    doc = json.loads(text)
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _paths(doc) if p]
        at = paths[draw(st.integers(0, len(paths) - 1))]
        parent = doc
        for k in at[:-1]:
            parent = parent[k]
        op = draw(st.sampled_from(["replace", "replace", "delete", "add"]))
        if op == "delete":
            del parent[at[-1]]
        elif op == "add" and isinstance(parent, dict):
            parent[draw(st.text(max_size=6))] = draw(_json_values())
        else:
            parent[at[-1]] = draw(_json_values())
    data = bytearray(json.dumps(doc, indent=1).encode())
    damage = draw(st.sampled_from(["none", "none", "truncate", "flip", "delete"]))
    if damage != "none":
        i = draw(st.integers(0, len(data) - 1))
        if damage == "truncate":
            del data[i:]
        elif damage == "flip":
            data[i] ^= 1 << draw(st.integers(0, 7))
        else:
            del data[i:i + draw(st.integers(1, 64))]
    return bytes(data)
