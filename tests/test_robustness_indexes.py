"""Face gallery indexes and plate registries that are malformed, truncated, newer or tampered with, and
an index build cancelled or failing half-way (core/search/gallery.py, core/search/plate_registry.py).

An index either loads (and everything the app and ``varsr-search`` read from it works) or is refused
with one line of :class:`IndexFormatError`; a refused index is never replaced by a re-index nobody
asked for (re-indexing into it is refused too, and the folder's bytes stay as they were). A registry
loads or is refused with :class:`RegistryError`; it is only ever read. Fuzzing: hypothesis,
derandomised, every input under a time limit.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import pickle
import shlex
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import core.search.gallery as G
from core.errors import VarSRError
from core.search.errors import IndexFormatError, SearchCancelled
from core.search.gallery import MANIFEST, build_index, load_index
from core.search.plate_registry import RegistryError, load_registry
from tests.helpers.fuzz import PER_INPUT_S, edited_json, time_limit
from tests.helpers.gallery import FakeEmbedder, no_face, photo

FUZZ = dict(deadline=None, derandomize=True, database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """A gallery of 12 photos and its index, made once; tests work on copies."""
    root = tmp_path_factory.mktemp("indexes")
    g = root / "gallery"
    for i in range(12):
        photo(g / ("sub" if i % 3 == 0 else "") / f"p{i:02d}.png", (20 * i, 255 - 20 * i, (70 * i) % 256))
    build_index(g, root / "idx", FakeEmbedder(), detector=no_face)
    yield {"root": root, "gallery": g, "index": root / "idx"}


def files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def fresh(made: dict[str, Path]) -> Path:
    work = made["root"] / "work"
    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(made["index"], work)
    return work


def refused_and_kept(made: dict[str, Path], work: Path, before: dict[str, bytes], e: IndexFormatError) -> None:
    """A refusal is one line naming the folder; re-indexing into it is refused and writes nothing."""
    assert str(work) in str(e) and "\n" not in str(e)
    with pytest.raises(IndexFormatError):
        build_index(made["gallery"], work, FakeEmbedder(), detector=no_face)
    assert files(work) == before


def use(index: G.FaceIndex) -> None:
    """What the app's dock and varsr-search read from a loaded index."""
    m = index.manifest
    c = m["counts"]
    f"{c['records']} records, {c['photos']} photos ({c['no_face']}), embedder {m['embedder']['name']}"
    assert len(index.record_ids) == len(index) == index.embeddings.shape[0]
    for row in range(len(index)):
        index.photo_path(row)
        assert index.entries[row].get("face") is None or isinstance(index.entries[row]["face"], dict)


def load_or_refused(made, work: Path):
    """The index in ``work``, or None after checking that its refusal is clear and left ``work`` as it was."""
    before = files(work)
    try:
        with time_limit(PER_INPUT_S):
            index = load_index(work)
    except IndexFormatError as e:
        event("refused")
        refused_and_kept(made, work, before, e)
        return None
    event("loaded")
    return index


# -- fuzzing --------------------------------------------------------------------------------------------
@settings(max_examples=80, **FUZZ)
@given(data=st.data())
def test_fuzzed_index_manifest_loads_or_is_refused_and_kept(made, data: st.DataObject) -> None:
    work = fresh(made)
    (work / MANIFEST).write_bytes(data.draw(edited_json((made["index"] / MANIFEST).read_text())))
    index = load_or_refused(made, work)
    if index is None:
        return
    use(index)


@st.composite
def damaged_npy(draw: st.DrawFn, data: bytes) -> bytes:
    """An .npy with its header or data damaged (header bytes most often: that is where parsing happens)."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 3))):
        if not out:
            break
        i = draw(st.integers(0, min(len(out), 128) - 1)) if draw(st.booleans()) else draw(
            st.integers(0, len(out) - 1))
        op = draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        if op == "flip":
            out[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "insert":
            out[i:i] = draw(st.sampled_from([b"(", b")", b"'", b"{", b"}", b"<f8", b"|O", b"True", b"9999999",
                                             b", 4", b"\n", b"\x00"]))
        elif op == "delete":
            del out[i:i + draw(st.integers(1, 8))]
        else:
            del out[i:]
    return bytes(out)


@settings(max_examples=120, **FUZZ)
@given(data=st.data())
def test_fuzzed_embeddings_file_with_a_matching_hash_loads_or_is_refused(made, data: st.DataObject) -> None:
    """Tampering that also rewrites the manifest's SHA-256: the .npy parser itself is what is fuzzed."""
    work = fresh(made)
    m = json.loads((work / MANIFEST).read_text())
    npy = work / m["embeddings"]["file"]
    bad = data.draw(damaged_npy(npy.read_bytes()))
    npy.write_bytes(bad)
    m["embeddings"]["sha256"] = hashlib.sha256(bad).hexdigest()
    (work / MANIFEST).write_text(json.dumps(m))
    index = load_or_refused(made, work)
    if index is None:
        return
    assert index.embeddings.dtype == np.float32 and np.isfinite(index.embeddings).all()
    use(index)


# -- named cases ------------------------------------------------------------------------------------------
def _rewrite_npy(work: Path, data: bytes) -> None:
    m = json.loads((work / MANIFEST).read_text())
    (work / m["embeddings"]["file"]).write_bytes(data)
    m["embeddings"]["sha256"] = hashlib.sha256(data).hexdigest()
    (work / MANIFEST).write_text(json.dumps(m))


class Bomb:
    """Unpickling this creates ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {shlex.quote(str(self.marker))}",))


def test_pickled_object_array_is_refused_unread(made, tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    buf = io.BytesIO()
    arr = np.empty((12, 4), dtype=object)
    arr[:] = Bomb(marker)
    np.save(buf, arr, allow_pickle=True)  # what a hostile index would hold: an object array is a pickle
    np.load(io.BytesIO(buf.getvalue()), allow_pickle=True)  # control: the payload is armed
    assert marker.exists()
    marker.unlink()
    work = fresh(made)
    _rewrite_npy(work, buf.getvalue())
    before = files(work)
    with pytest.raises(IndexFormatError, match="object.*float32") as e:
        load_index(work)
    refused_and_kept(made, work, before, e.value)
    assert not marker.exists()


@pytest.mark.parametrize("kind", ["npz", "pickle", "float64", "fortran", "extra_bytes", "nan", "big_shape"])
def test_embeddings_that_are_not_what_the_index_writes_are_refused(made, kind: str) -> None:
    work = fresh(made)
    good = load_index(made["index"]).embeddings
    buf = io.BytesIO()
    if kind == "npz":
        np.savez(buf, embeddings=good)
    elif kind == "pickle":
        buf.write(pickle.dumps(good))
    elif kind == "float64":
        np.save(buf, good.astype(np.float64))
    elif kind == "fortran":
        np.save(buf, np.asfortranarray(good))
    elif kind == "extra_bytes":
        np.save(buf, good)
        buf.write(b"\x00" * 16)
    elif kind == "nan":
        bad = good.copy()
        bad[3, 1] = np.nan
        np.save(buf, bad)
    else:  # a header claiming 10^12 rows: refused from the header, nothing allocated
        header = b"{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000000, 4), }"
        header += b" " * (-(10 + len(header) + 1) % 64) + b"\n"
        buf.write(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + good.tobytes())
    _rewrite_npy(work, buf.getvalue())
    before = files(work)
    with pytest.raises(IndexFormatError) as e:
        with time_limit(PER_INPUT_S):
            load_index(work)
    refused_and_kept(made, work, before, e.value)


@pytest.mark.parametrize("edit, words", [
    (lambda m: m.update(version=G.INDEX_VERSION + 1, new_field=[1]), "newer VarSR Studio"),
    (lambda m: m.update(counts=None), "counts"),
    (lambda m: m["gallery"].pop("base"), "gallery record"),
    (lambda m: m["embedder"].update(dim=True), "embedder record"),
    (lambda m: m["entries"][0].update(face="yes"), "entries are malformed"),
    (lambda m: m["embeddings"].update(file="../idx/x.npy"), "bad embeddings file name"),
])
def test_malformed_or_newer_index_manifest_is_refused_and_kept(made, edit, words: str) -> None:
    work = fresh(made)
    m = json.loads((work / MANIFEST).read_text())
    edit(m)
    (work / MANIFEST).write_text(json.dumps(m))
    before = files(work)
    with pytest.raises(IndexFormatError, match=words) as e:
        load_index(work)
    refused_and_kept(made, work, before, e.value)


def test_garbage_manifest_text_is_refused(made) -> None:
    work = fresh(made)
    for text in ("[" * 100_000, "", "\xff", '{"format": "varsr-face-index", "version": 1e999}'):
        (work / MANIFEST).write_text(text, encoding="utf-8" if text != "\xff" else "latin-1")
        before = files(work)
        with pytest.raises(IndexFormatError) as e:
            load_index(work)
        refused_and_kept(made, work, before, e.value)


# -- cancel and failure half-way ----------------------------------------------------------------------------
def _stray(folder: Path) -> list[str]:
    """Anything an interrupted write could leave: hidden temporary files, or embeddings no manifest names."""
    named = json.loads((folder / MANIFEST).read_text())["embeddings"]["file"] if (folder / MANIFEST).exists() else ""
    return [p.name for p in folder.iterdir() if p.name.startswith(".") or (p.suffix == ".npy" and p.name != named)]


def test_cancel_half_way_keeps_the_previous_index_and_leaves_nothing(made) -> None:
    work = fresh(made)
    photo(made["root"] / "g2" / "new.png", (1, 2, 3))
    shutil.copytree(made["gallery"], made["root"] / "g2", dirs_exist_ok=True)
    before = files(work)
    state = {"cancel": False, "seen": 0}

    def progress(i: int, n: int) -> None:
        state["seen"] = i
        state["cancel"] = i >= n // 2  # the analyst presses Cancel half-way through

    with pytest.raises(SearchCancelled, match="nothing was written"):
        build_index(made["root"] / "g2", work, FakeEmbedder(), detector=no_face, progress=progress,
                    cancelled=lambda: state["cancel"])
    assert 0 < state["seen"] < 13
    assert files(work) == before and not _stray(work)
    assert len(load_index(work)) == 12  # the previous index, intact

    fresh_out = made["root"] / "fresh"
    state.update(cancel=False)
    with pytest.raises(SearchCancelled):
        build_index(made["gallery"], fresh_out, FakeEmbedder(), detector=no_face, progress=progress,
                    cancelled=lambda: state["cancel"])
    assert not fresh_out.exists()  # no folder that could pass for an index
    shutil.rmtree(made["root"] / "g2")


@pytest.mark.parametrize("fail_on", ["npy", "manifest"])
def test_disk_full_while_writing_keeps_the_previous_index(made, monkeypatch, fail_on: str) -> None:
    work = fresh(made)
    g2 = made["root"] / "g3"
    shutil.copytree(made["gallery"], g2)
    photo(g2 / "new.png", (9, 9, 9))  # so the embeddings file is a new one
    before = files(work)
    real = G.atomic_write

    def full(target, write):
        if (fail_on == "npy") == str(target).endswith(".npy"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(target, write)

    monkeypatch.setattr(G, "atomic_write", full)
    with pytest.raises(OSError):
        build_index(g2, work, FakeEmbedder(), detector=no_face)
    assert files(work) == before and not _stray(work)
    assert len(load_index(work)) == 12
    with pytest.raises(OSError):
        build_index(g2, made["root"] / "new_index", FakeEmbedder(), detector=no_face)
    assert not (made["root"] / "new_index").exists()
    monkeypatch.setattr(G, "atomic_write", real)
    build_index(g2, work, FakeEmbedder(), detector=no_face)  # once there is room, it works
    assert len(load_index(work)) == 13 and not _stray(work)
    shutil.rmtree(g2)


# -- plate registries ----------------------------------------------------------------------------------------
REGISTRY = (b"plate,owner,colour,notes\nAB12CD,Smith,red,\nXY-99 ZZ,Doe,blue,\"two, words\"\n"
            b"8O7,\"Lee, J\",green,\"line\nbreak\"\n,,,\nKL 44 MN,Ng,grey,\n")


@st.composite
def damaged_csv(draw: st.DrawFn) -> bytes:
    out = bytearray(REGISTRY)
    for _ in range(draw(st.integers(1, 4))):
        if not out:
            break
        i = draw(st.integers(0, len(out) - 1))
        op = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "dup"]))
        if op == "flip":
            out[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "insert":
            out[i:i] = draw(st.sampled_from([b'"', b",", b";", b"\t", b"|", b"\r", b"\n", b"\x00", b"\xff",
                                             b"\xef\xbb\xbf", b'""', b"x" * 200_000]))
        elif op == "delete":
            del out[i:i + draw(st.integers(1, 16))]
        elif op == "truncate":
            del out[i:]
        else:
            j = draw(st.integers(0, len(out) - 1))
            out[i:i] = out[j:j + draw(st.integers(1, 64))]
    return bytes(out)


def test_the_registry_seed_loads(made) -> None:
    path = made["root"] / "registry.csv"
    path.write_bytes(REGISTRY)
    reg = load_registry(path)
    assert reg.keys == ["AB12CD", "XY99ZZ", "8O7", "KL44MN"] and reg.skipped == 0


@settings(max_examples=150, **FUZZ)
@given(data=damaged_csv(), column=st.sampled_from([None, "owner", "Plate", "missing"]))
def test_fuzzed_registry_loads_or_is_refused_and_is_only_read(made, data: bytes, column: str | None) -> None:
    path = made["root"] / "registry.csv"
    path.write_bytes(data)
    try:
        with time_limit(PER_INPUT_S):
            reg = load_registry(path, column)
    except RegistryError as e:
        event("refused")
        assert isinstance(e, VarSRError) and str(e) and "\n" not in str(e)
    else:
        event("loaded")
        assert len(reg) == len(reg.keys) == len(reg.lines) >= 1 and all(reg.keys)
        assert all(set(r) == set(reg.columns) for r in reg.records)
    assert path.read_bytes() == data


def test_registry_error_with_a_quoted_line_break_stays_one_line(made) -> None:
    path = made["root"] / "registry.csv"
    path.write_text('"pl\nate",owner\nAB12,Smith\n', encoding="utf-8")  # found by the fuzz test above
    with pytest.raises(RegistryError, match="no plate column") as e:
        load_registry(path)
    assert "\n" not in str(e.value) and "pl\\nate" in str(e.value)


@pytest.mark.parametrize("content, words", [
    ("plate\n" + "A" * 200_000 + "\n", "malformed CSV"),
    ("plate,owner\nAB12,Smith\n\"unterminated,x\n", "malformed|fields"),
    ("\ufeffplate;owner\nAB12;Smith;extra\n", "line 2 has 3 fields"),
    ("plate,owner\n\x00\x00\n", "binary"),
])
def test_truncated_or_tampered_registry_is_refused(made, content: str, words: str) -> None:
    path = made["root"] / "registry.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(RegistryError, match=words):
        load_registry(path)
    assert path.read_text(encoding="utf-8") == content
