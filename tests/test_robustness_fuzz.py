"""Fuzzing: mutated image bytes through the app's loader, mutated bundle configs through the bundle
reader. Each input either loads or raises the project's own error, quickly; nothing else escapes."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from core.errors import BundleError, ImageLoadError
from core.images import MAX_PIXELS
from core.model.bundle import CONFIG, read_config
from core.workbench.session import load_evidence
from tests.conftest import tiny_config
from tests.helpers.fuzz import PER_INPUT_S, time_limit
from tests.helpers.inputs import encoded, sample_image


def _seeds() -> dict[str, bytes]:
    """Small valid files of every format the app opens (and the odd modes)."""
    base = sample_image(24, 16)
    frames = [base, base.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    exif = Image.Exif()
    exif[0x0112] = 6
    out = {
        "png": encoded("PNG", base),
        "png16": encoded("PNG", Image.fromarray(np.arange(384, dtype=np.uint16).reshape(16, 24) * 99)),
        "palette_png": encoded("PNG", base.convert("P"), transparency=3),
        "jpeg": encoded("JPEG", base, quality=80, exif=exif.tobytes()),
        "cmyk_jpeg": encoded("JPEG", base.convert("CMYK"), quality=80),
        "gif": encoded("GIF", frames[0], save_all=True, append_images=frames[1:]),
        "tiff_float": encoded("TIFF", Image.fromarray(np.linspace(0, 1, 384, dtype=np.float32).reshape(16, 24))),
        "tiff": encoded("TIFF", base, compression="tiff_deflate"),
        "webp": encoded("WEBP", frames[0], save_all=True, append_images=frames[1:], lossless=True),
        "bmp": encoded("BMP", base),
    }
    return out


SEEDS = _seeds()


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A seed file with a few byte-level mutations: flips, overwrites (incl. huge sizes), inserts,
    deletions, truncation."""
    data = bytearray(SEEDS[draw(st.sampled_from(sorted(SEEDS)))])
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        op = draw(st.sampled_from(["flip", "overwrite", "insert", "delete", "truncate", "big"]))
        i = draw(st.integers(0, len(data) - 1))
        if op == "flip":
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "overwrite":
            chunk = draw(st.binary(min_size=1, max_size=8))
            data[i:i + len(chunk)] = chunk
        elif op == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=32))
        elif op == "delete":
            del data[i:i + draw(st.integers(1, 64))]
        elif op == "truncate":
            del data[i:]
        else:  # a size-like field made huge, near the header where sizes live
            j = min(i, 64)
            data[j:j + 4] = draw(st.sampled_from([b"\xff\xff\xff\xff", b"\x7f\xff\xff\xff", b"\x00\x01\x86\xa0"]))
    return bytes(data)


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="fuzz_") as d:
        yield Path(d)


def test_every_seed_loads(scratch: Path) -> None:
    for name, data in SEEDS.items():
        p = scratch / f"seed_{name}"
        p.write_bytes(data)
        assert load_evidence(p).image.mode == "RGB", name


@settings(max_examples=200, deadline=2000, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=mutated(), suffix=st.sampled_from([".png", ".jpg", ".gif", ".tif", ".webp", ".bmp"]))
def test_mutated_images_load_or_raise_image_load_error(scratch: Path, data: bytes, suffix: str) -> None:
    p = scratch / f"fuzz{suffix}"
    p.write_bytes(data)
    with time_limit(PER_INPUT_S):
        try:
            ev = load_evidence(p)  # what Session.open_file (the app's Open, drop, recent files) calls
        except ImageLoadError as e:
            assert str(e) and "\n" not in str(e)
            return
    assert ev.image.mode == "RGB" and ev.image.width * ev.image.height <= MAX_PIXELS
    assert ev.image.width >= 1 and ev.image.height >= 1
    json.dumps(ev.to_dict())  # what gets recorded is JSON-ready


def _json_values() -> st.SearchStrategy:
    scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(allow_nan=True),
                        st.text(max_size=8))
    return st.recursive(scalars, lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=6),
                                                                                          kids, max_size=3),
                        max_leaves=6)


@settings(max_examples=150, deadline=2000, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=st.dictionaries(st.sampled_from(sorted(tiny_config().to_dict()) + ["version", "extra"]),
                             _json_values(), min_size=1, max_size=3))
def test_mutated_bundle_configs_are_accepted_or_refused_with_bundle_error(scratch: Path, edits: dict) -> None:
    cfg = tiny_config().to_dict()
    cfg.update(edits)
    folder = scratch / "bundle"
    folder.mkdir(exist_ok=True)
    (folder / CONFIG).write_text(json.dumps(cfg), encoding="utf-8")
    try:
        c = read_config(folder)
    except BundleError as e:
        assert str(e)
        return
    c.validate()  # whatever is accepted is in range: the network can be built from it
    assert c.n_upsample >= 1 and isinstance(c.width, int)


@settings(max_examples=60, deadline=2000, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.one_of(st.text(max_size=64), st.binary(max_size=64).map(lambda b: b.decode("latin-1")),
                      st.integers(1, 5000).map(lambda n: "[" * n)))
def test_garbage_config_text_is_refused_with_bundle_error(scratch: Path, text: str) -> None:
    folder = scratch / "garbage"
    folder.mkdir(exist_ok=True)
    (folder / CONFIG).write_text(text, encoding="utf-8")
    with pytest.raises(BundleError):
        read_config(folder)
