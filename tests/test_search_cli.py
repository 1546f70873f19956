"""``varsr-search faces``: index a gallery and query it with candidates, JSON out, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.cli.search import build_parser, main


def image(path: Path, seed: int, size: tuple[int, int]) -> Path:
    rng = np.random.default_rng(seed)
    base = rng.integers(40, 220, 3)
    a = np.clip(base + rng.normal(0, 25, (size[1], size[0], 3)), 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(a).save(path)
    return path


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A three-photo gallery (no faces: whole images are embedded) indexed with the bundled embedder."""
    root = tmp_path_factory.mktemp("cli")
    for i, name in enumerate(["ann", "ben", "cat"]):
        image(root / "gallery" / f"{name}.png", i, (48, 56))
    assert main(["faces", "index", str(root / "gallery"), "--out", str(root / "index"), "--quiet"]) == 0
    return root, root / "index"


def test_index_then_query_prints_ranked_records_as_json(indexed: tuple[Path, Path],
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    root, index = indexed
    cands = root / "cands"
    for i in range(3):
        image(cands / f"candidate_{i:03d}.png", 10 + i, (64, 64))
    image(cands / "input_lr.png", 99, (8, 8))  # varsr-sample's LR copy is not a candidate
    capsys.readouterr()
    assert main(["faces", "query", str(index), str(cands), "--top", "2"]) == 0  # auto: no det.png, so min
    out = json.loads(capsys.readouterr().out)
    assert out["embedder"] == "dlib-face-resnet" and out["mode"] == "min" and out["records_searched"] == 3
    assert "not fused" in out["notes"][0]
    assert out["candidates"] == [f"candidate_{i:03d}.png" for i in range(3)]
    assert "never an identification" in out["notice"]
    assert [h["rank"] for h in out["hits"]] == [1, 2]
    h = out["hits"][0]
    assert h["record_id"] in ("ann", "ben", "cat") and h["candidate"].startswith("candidate_")
    assert h["distance"] <= out["hits"][1]["distance"] and h["face_found"] is False
    assert Path(h["photo"]).is_file() and len(h["photo_sha256"]) == 64

    assert main(["faces", "query", str(index), str(cands), "--mode", "knn", "--k", "2", "--diverse", "2",
                 "--out", str(root / "result.json")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["mode"] == "knn" and out["k"] == 2 and len(out["candidates"]) == 2 and len(out["hits"]) == 3
    assert json.loads((root / "result.json").read_text())["hits"] == out["hits"]


def test_fused_query_uses_the_det_output_and_the_degraded_gallery(indexed: tuple[Path, Path],
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from core.cli.sample import main as sample

    root, index = indexed
    crop = image(root / "crop.png", 7, (8, 8))
    cands = root / "sampled"
    assert sample(["--model", "face-8", "-n", "4", "--out", str(cands), str(crop)]) == 0
    capsys.readouterr()
    assert main(["faces", "query", str(index), str(cands), "--condition", "camera", "--top", "3"]) == 0  # auto
    out = json.loads(capsys.readouterr().out)
    assert out["mode"] == "fused" and len(out["hits"]) == 3 and out["candidates"][-1] == "det.png"
    assert sorted(h["record_id"] for h in out["hits"]) == ["ann", "ben", "cat"]
    assert [h["distance"] for h in out["hits"]] == sorted(h["distance"] for h in out["hits"])
    assert any("sigma 0.6" in n for n in out["notes"])
    cache = list((index / "degraded").glob("face-8-det-*.npy"))
    assert len(cache) == 1  # computed once for this model and condition, kept in the index
    assert main(["faces", "query", str(index), str(cands), "--mode", "fused", "--condition", "camera"]) == 0
    assert "computed for" not in capsys.readouterr().out  # the second search reuses them

    assert sample(["--model", "face-8", "-n", "2", "--det", "none", "--out", str(root / "no-det"), str(crop)]) == 0
    capsys.readouterr()
    assert main(["faces", "query", str(index), str(root / "no-det"), "--mode", "fused"]) == 2
    assert "needs the -det output" in capsys.readouterr().err
    assert main(["faces", "query", str(index), str(root / "no-det")]) == 0  # auto: min, saying why
    out = json.loads(capsys.readouterr().out)
    assert out["mode"] == "min" and "not fused" in out["notes"][0] and "needs the -det output" in out["notes"][0]
    assert main(["faces", "query", str(index), str(cands), "--mode", "min", "--condition", "camera"]) == 2
    assert "--condition is for --mode fused" in capsys.readouterr().err


def test_reindexing_an_unchanged_gallery_embeds_nothing(indexed: tuple[Path, Path],
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    root, index = indexed
    capsys.readouterr()
    assert main(["faces", "index", str(root / "gallery"), "--out", str(index), "--quiet"]) == 0
    assert "(0 embedded, 3 unchanged)" in capsys.readouterr().err


def test_errors_are_one_line_and_exit_2(indexed: tuple[Path, Path], tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    root, index = indexed
    bad = tmp_path / "bad"
    image(bad / "wide.png", 1, (64, 32))
    cases = [
        (["faces", "query", str(tmp_path / "nope"), str(bad)], "not a face index"),
        (["faces", "query", str(index), str(bad)], "not a face candidate"),
        (["faces", "query", str(index), str(tmp_path / "none")], "not a folder of candidates"),
        (["faces", "query", str(index), str(bad), "--top", "0"], "--top"),
        (["faces", "index", str(tmp_path / "nothing"), "--out", str(tmp_path / "i")], "no such folder"),
    ]
    for argv, words in cases:
        capsys.readouterr()
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert err.startswith("varsr-search: error:") and words in err and "\n" not in err, err


def test_facenet_without_weights_is_a_clear_cli_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    image(tmp_path / "g" / "a.png", 0, (40, 40))
    assert main(["faces", "index", str(tmp_path / "g"), "--out", str(tmp_path / "i"),
                 "--embedder", "facenet-vggface2", "--quiet"]) == 2
    assert "never downloads" in capsys.readouterr().err
    assert not (tmp_path / "i").exists()


def test_parser_has_faces_and_leaves_room_for_plates() -> None:
    p = build_parser()
    args = p.parse_args(["faces", "query", "idx", "cands", "--top", "5", "--mode", "knn"])
    assert (args.top, args.mode, args.k) == (5, "knn", 3) and callable(args.func)
    sub = next(a for a in p._actions if a.dest == "command")
    assert "faces" in sub.choices
    try:
        import core.search.plates  # noqa: F401
    except ImportError:
        return
    assert "plates" in sub.choices
