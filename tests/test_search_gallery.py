"""The gallery index on disk: roundtrip, incremental re-indexing, cancel, and refusing damaged indexes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.search.align import Face
from core.search.errors import IndexFormatError, SearchCancelled, SearchError
from core.search.gallery import INDEX_VERSION, MANIFEST, build_index, list_gallery, load_index
from tests.helpers.gallery import FakeEmbedder, no_face, photo


@pytest.fixture
def gallery(tmp_path: Path) -> Path:
    g = tmp_path / "gallery"
    photo(g / "alice.png", (200, 30, 30))
    photo(g / "bob.png", (30, 200, 30))
    photo(g / "sub" / "carol.png", (30, 30, 200))
    photo(g / "dave.jpg", (120, 120, 120))
    return g


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_index_roundtrip(gallery: Path, tmp_path: Path) -> None:
    emb = FakeEmbedder()
    seen: list[tuple[int, int]] = []
    report = build_index(gallery, tmp_path / "idx", emb, detector=no_face, progress=lambda i, n: seen.append((i, n)))
    assert (report.total, report.embedded, report.reused, report.no_face) == (4, 4, 0, 4)
    assert seen[-1] == (4, 4)
    idx = load_index(tmp_path / "idx")
    assert sorted(idx.record_ids) == ["alice", "bob", "dave", "sub/carol"]
    assert idx.embeddings.shape == (4, 4) and idx.embeddings.dtype == np.float32
    row = idx.record_ids.index("bob")
    again = FakeEmbedder().embed_chips([emb.chip(Image.open(gallery / "bob.png").convert("RGB"), None)])
    assert np.allclose(idx.embeddings[row], again[0])
    assert idx.photo_path(row) == (gallery / "bob.png").resolve()
    m = idx.manifest
    assert m["version"] == INDEX_VERSION and m["embedder"] == {"name": "fake", "version": "v1", "dim": 4}
    assert all(e["face"] is None and "no face" in e["note"] for e in idx.entries)
    assert "never evidence" in m["notice"]


def test_reindex_embeds_only_changed_new_and_moved_files(gallery: Path, tmp_path: Path) -> None:
    out = tmp_path / "idx"
    build_index(gallery, out, FakeEmbedder(), detector=no_face)
    before = load_index(out)
    photo(gallery / "bob.png", (10, 90, 250), size=(44, 48))  # changed content
    photo(gallery / "erin.png", (250, 250, 0))  # new
    os.rename(gallery / "dave.jpg", gallery / "dave2.jpg")  # moved: same bytes
    (gallery / "sub" / "carol.png").unlink()  # removed
    emb = FakeEmbedder()
    report = build_index(gallery, out, emb, detector=no_face)
    assert (report.embedded, report.reused, report.total) == (2, 2, 4)
    assert emb.calls == 2
    idx = load_index(out)
    assert sorted(idx.record_ids) == ["alice", "bob", "dave2", "erin"]
    a_old, a_new = before.record_ids.index("alice"), idx.record_ids.index("alice")
    assert np.array_equal(before.embeddings[a_old], idx.embeddings[a_new])
    assert len(list(out.glob("embeddings-*.npy"))) == 1  # the stale file is gone


def test_another_embedder_reembeds_everything(gallery: Path, tmp_path: Path) -> None:
    build_index(gallery, tmp_path / "idx", FakeEmbedder("v1"), detector=no_face)
    emb = FakeEmbedder("v2")
    report = build_index(gallery, tmp_path / "idx", emb, detector=no_face)
    assert report.embedded == 4 and emb.calls == 4 and "embedded again" in report.notes[0]


def test_csv_gallery_groups_photos_by_record(gallery: Path, tmp_path: Path) -> None:
    csv = tmp_path / "records.csv"
    csv.write_text(f"path,record_id\n{gallery / 'alice.png'},R1\ngallery/bob.png,R1\ngallery/dave.jpg,R2\n")
    g = list_gallery(csv)
    assert g.kind == "csv" and [i.record_id for i in g.items] == ["R1", "R1", "R2"]
    build_index(csv, tmp_path / "idx", FakeEmbedder(), detector=no_face)
    idx = load_index(tmp_path / "idx")
    assert idx.record_ids == ["R1", "R1", "R2"]
    assert idx.manifest["counts"]["records"] == 2
    bad = tmp_path / "bad.csv"
    bad.write_text("path,record_id\nonly-a-path.png\n")
    with pytest.raises(SearchError, match="bad.csv:2"):
        list_gallery(bad)


def test_unreadable_photos_are_skipped_and_listed(gallery: Path, tmp_path: Path) -> None:
    (gallery / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    report = build_index(gallery, tmp_path / "idx", FakeEmbedder(), detector=no_face)
    assert report.total == 4 and [s["path"] for s in report.skipped] == ["broken.jpg"]
    assert load_index(tmp_path / "idx").manifest["skipped"][0]["path"] == "broken.jpg"


def test_faces_found_are_recorded(gallery: Path, tmp_path: Path) -> None:
    face = Face((10.0, 20.0), (30.0, 20.0), (2.0, 5.0, 38.0, 45.0), 0.99)
    build_index(gallery, tmp_path / "idx", FakeEmbedder(), detector=lambda _im: face)
    e = load_index(tmp_path / "idx").entries[0]
    assert e["face"]["left_eye"] == [10.0, 20.0] and e["face"]["probability"] == 0.99 and "note" not in e


def test_cancel_writes_nothing(gallery: Path, tmp_path: Path) -> None:
    out = tmp_path / "idx"
    build_index(gallery, out, FakeEmbedder(), detector=no_face)
    before = snapshot(out)
    photo(gallery / "new.png", (1, 2, 3))
    calls = iter(range(100))
    with pytest.raises(SearchCancelled):
        build_index(gallery, out, FakeEmbedder(), detector=no_face, cancelled=lambda: next(calls) >= 2)
    assert snapshot(out) == before
    with pytest.raises(SearchCancelled):
        build_index(gallery, tmp_path / "fresh", FakeEmbedder(), detector=no_face, cancelled=lambda: True)
    assert not (tmp_path / "fresh").exists() or not any((tmp_path / "fresh").iterdir())


@pytest.mark.parametrize("damage", ["truncated_manifest", "newer_version", "tampered_embeddings",
                                    "truncated_embeddings", "missing_embeddings", "wrong_shape", "not_json_dict"])
def test_damaged_index_is_a_clear_error_and_is_never_overwritten(gallery: Path, tmp_path: Path, damage: str) -> None:
    out = tmp_path / "idx"
    build_index(gallery, out, FakeEmbedder(), detector=no_face)
    mpath = out / MANIFEST
    npy = next(out.glob("embeddings-*.npy"))
    m = json.loads(mpath.read_text())
    if damage == "truncated_manifest":
        mpath.write_text(mpath.read_text()[:200])
    elif damage == "newer_version":
        m["version"] = INDEX_VERSION + 1
        mpath.write_text(json.dumps(m))
    elif damage == "tampered_embeddings":
        data = bytearray(npy.read_bytes())
        data[-1] ^= 0x55
        npy.write_bytes(bytes(data))
    elif damage == "truncated_embeddings":
        npy.write_bytes(npy.read_bytes()[:-8])
    elif damage == "missing_embeddings":
        npy.unlink()
    elif damage == "wrong_shape":
        m["entries"] = m["entries"][:-1]
        mpath.write_text(json.dumps(m))
    elif damage == "not_json_dict":
        mpath.write_text("[1, 2, 3]")
    before = snapshot(out)
    with pytest.raises(IndexFormatError) as err:
        load_index(out)
    assert str(out) in str(err.value) and "\n" not in str(err.value)
    if damage == "newer_version":
        assert "newer" in str(err.value)
    with pytest.raises(IndexFormatError):
        build_index(gallery, out, FakeEmbedder(), detector=no_face)
    assert snapshot(out) == before


def test_refuses_to_write_into_a_folder_that_is_not_an_index(gallery: Path, tmp_path: Path) -> None:
    other = tmp_path / "notes"
    other.mkdir()
    (other / "todo.txt").write_text("keep me")
    with pytest.raises(SearchError, match="not a face index"):
        build_index(gallery, other, FakeEmbedder(), detector=no_face)
    assert (other / "todo.txt").read_text() == "keep me"
    with pytest.raises(SearchError, match="no such folder"):
        list_gallery(tmp_path / "missing")
    with pytest.raises(IndexFormatError, match="not a face index"):
        load_index(tmp_path)
