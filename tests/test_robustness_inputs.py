"""Hostile and odd inputs: every image kind loads with a note saying what was done, or is refused
with an :class:`ImageLoadError`; the session records it; the CLIs give one line and exit 2;
regions partly or wholly outside the image, 1x1 crops and invalid coordinates are handled."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.errors import ImageLoadError, VarSRError
from core.images import open_image
from core.workbench import session as S
from tests.helpers.inputs import Kind, make_inputs, sample_image

KINDS_DIR = "inputs"


@pytest.fixture(scope="module")
def kinds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Kind]:
    return make_inputs(tmp_path_factory.mktemp(KINDS_DIR))


@pytest.fixture(scope="module")
def model(tiny_face_model):
    return tiny_face_model


def test_every_kind_loads_or_is_refused_quickly_with_a_reason(kinds: dict[str, Kind]) -> None:
    for name, k in kinds.items():
        t0 = time.perf_counter()
        for mode in ("RGB", "L"):
            if k.ok:
                li = open_image(k.path, mode)
                assert li.image.mode == mode, name
                assert k.words in " ".join(li.notes), (name, li.notes)
                assert k.size is None or li.image.size == k.size, (name, li.image.size)
            else:
                with pytest.raises(ImageLoadError) as e:
                    open_image(k.path, mode)
                msg = str(e.value)
                assert k.words in msg and "\n" not in msg and k.path.name in msg, (name, msg)
        assert time.perf_counter() - t0 < 2.0, f"{name} took too long"


def test_bombs_are_refused_before_decoding(kinds: dict[str, Kind], monkeypatch) -> None:
    from PIL import ImageFile

    def no_decode(*_a, **_k):
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decode)
    for name in ("bomb_100000x100000.png", "bomb_12000x12000.png"):
        with pytest.raises(ImageLoadError, match="too large to open safely"):
            open_image(kinds[name].path)


def test_high_depth_pixels_are_scaled_faithfully(kinds: dict[str, Kind]) -> None:
    g16 = np.asarray(open_image(kinds["gray16.tif"].path, "L").image)
    raw = np.arange(24 * 32, dtype=np.uint16).reshape(24, 32) * 80
    assert np.abs(g16.astype(int) - np.round(raw / 257).astype(int)).max() <= 1
    unit = np.asarray(open_image(kinds["float_unit.tif"].path, "L").image)
    assert unit.min() == 0 and unit.max() == 255
    nan = np.asarray(open_image(kinds["float_nan.tif"].path, "L").image)
    assert (nan[0, :4] == 0).all()  # NaN and infinities are black, not undefined


def test_exif_rotation_is_honoured_and_recorded(kinds: dict[str, Kind], tmp_path: Path) -> None:
    im = Image.new("RGB", (40, 20), (0, 0, 0))
    im.paste((255, 0, 0), (0, 0, 10, 20))  # red on the stored image's left
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise
    p = tmp_path / "phone.jpg"
    im.save(p, exif=exif.tobytes(), quality=95)
    ev = S.Session(models_root=tmp_path).open_file(p)
    assert ev.image.size == (20, 40)
    top = np.asarray(ev.image)[:5].mean(axis=(0, 1))
    assert top[0] > 200 and top[1] < 60  # the stored left edge is now the top
    assert ev.to_dict()["load"]["exif_orientation"] == 6
    assert any("EXIF orientation" in n for n in ev.notes)
    assert ev.to_dict()["load"]["file_size"] == [40, 20]


def test_animated_first_frame_is_used_and_said(kinds: dict[str, Kind], tmp_path: Path) -> None:
    for name in ("animated.gif", "animated.webp", "multipage.tif"):
        ev = S.load_evidence(kinds[name].path)
        assert ev.to_dict()["load"]["frames"] == 3
        assert any("only the first" in n for n in ev.notes)
        r, g, b = np.asarray(ev.image).reshape(-1, 3).mean(0)
        assert r > 200 and g < 60 and b < 60, name  # the first (red) frame


def test_session_records_how_the_evidence_was_read_in_every_recipe(kinds: dict[str, Kind], model) -> None:
    s = S.Session(models_root=kinds["plain.bmp"].path.parent)
    s.open_file(kinds["exif_orientation_6.jpg"].path)
    lrs, _ = s.prepare(model.config)
    cands = S.generate_candidates(model, lrs[0], 4, seed=1, source=s.source())
    rec = cands[0].recipe_json()["source"]["evidence"]
    assert rec["load"]["exif_orientation"] == 6 and rec["size"] == [24, 32]
    json.dumps(rec)


def test_failed_open_leaves_the_session_as_it_was(kinds: dict[str, Kind]) -> None:
    s = S.Session(models_root=kinds["plain.bmp"].path.parent)
    good = s.open_file(kinds["plain.bmp"].path)
    s.set_region(S.Region.from_box(2, 2, 20, 20))
    for name, k in kinds.items():
        if not k.ok:
            with pytest.raises(ImageLoadError):
                s.open_file(k.path)
            assert s.evidence is good and s.region == S.Region.from_box(2, 2, 20, 20), name


# -- the CLIs -----------------------------------------------------------------------------------------
def test_varsr_sample_one_line_and_exit_2_for_every_bad_kind(kinds: dict[str, Kind], model, tmp_path: Path,
                                                            capsys) -> None:
    from core.cli.sample import main

    bundle = str(model.bundle_path)
    chosen = {n: k for n, k in kinds.items() if not k.ok or n in ("cmyk.jpg", "float_nan.tif", "one_pixel.png")}
    for name, k in chosen.items():
        out = tmp_path / f"out_{name}"
        code = main(["--model", bundle, "-n", "2", "--out", str(out), str(k.path)])
        err = capsys.readouterr().err.strip().splitlines()
        if k.ok:
            assert code == 0, (name, err)
            man = json.loads((out / "manifest.json").read_text())
            assert man["input"]["load"]["notes"] == [e for e in man["notes"] if e in man["input"]["load"]["notes"]]
            assert all(line.startswith("varsr-sample: ") or line.startswith("wrote ") for line in err), err
        else:
            assert code == 2, name
            assert len(err) == 1 and err[0].startswith("varsr-sample: error: "), (name, err)
            assert "Traceback" not in err[0]
            assert not (out / "manifest.json").exists()


def test_varsr_sample_says_first_frame_and_rotation(kinds: dict[str, Kind], model, tmp_path: Path, capsys) -> None:
    from core.cli.sample import main

    assert main(["--model", str(model.bundle_path), "-n", "2", "--out", str(tmp_path / "a"),
                 str(kinds["animated.gif"].path)]) == 0
    assert "varsr-sample: note: an animated GIF with 3 frames: only the first is used" in capsys.readouterr().err
    assert main(["--model", str(model.bundle_path), "-n", "2", "--out", str(tmp_path / "r"),
                 str(kinds["exif_orientation_8.jpg"].path)]) == 0
    assert "EXIF orientation" in capsys.readouterr().err
    man = json.loads((tmp_path / "r" / "manifest.json").read_text())
    assert man["input"]["load"]["exif_orientation"] == 8 and man["input"]["size"] == [24, 32]


def test_varsr_sample_corrupt_tiff_is_one_line_even_from_libtiff(model, tmp_path: Path, capfd) -> None:
    """libtiff prints its own errors on the C stderr; the CLI keeps to its one line."""
    from core.cli.sample import main
    from tests.helpers.inputs import encoded

    data = bytearray(encoded("TIFF", sample_image(64, 64), compression="tiff_deflate"))
    start = data.index(b"\x78\x9c") + 2  # inside the deflate stream of the pixels
    for i in range(start, start + 60):
        data[i] ^= 0x55
    bad = tmp_path / "bad.tif"
    bad.write_bytes(bytes(data))
    assert main(["--model", str(model.bundle_path), "--out", str(tmp_path / "o"), str(bad)]) == 2
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("varsr-sample: error:"), err


def test_varsr_eval_folder_of_bad_images(kinds: dict[str, Kind], model, tmp_path: Path, capsys) -> None:
    """Bad files in a folder data set: one warning line each; none readable: one error line, exit 2."""
    from core.cli.eval import main

    root = tmp_path / "bad"
    root.mkdir()
    bad = [k for k in kinds.values() if not k.ok and k.path.is_file()]
    for k in bad:
        (root / k.path.name).write_bytes(k.path.read_bytes())
    code = main(["--model", str(model.bundle_path), "--dataset", "folder", "--root", str(root), "--split", "all",
                 "--quiet", "--n-samples", "2"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith("varsr-eval: error:") and "Traceback" not in "\n".join(err)
    skipped = [e for e in err if e.startswith("varsr-eval: warning: skipped")]
    assert len(skipped) == len(bad) and len(err) == len(bad) + 1 + sum("no deterministic" in e for e in err)


# -- regions --------------------------------------------------------------------------------------
IMG = Image.new("RGB", (40, 30), (100, 120, 140))


@pytest.mark.parametrize("region, words", [
    (S.Region.from_box(100, 100, 120, 120), "outside the image"),
    (S.Region.from_box(-50, -50, -10, -10), "outside the image"),
    (S.Region.from_box(5, 5, 5, 9), "empty"),
    (S.Region.from_box(math.nan, 0, 10, 10), "invalid coordinates"),
    (S.Region.from_box(0, 0, math.inf, 10), "invalid coordinates"),
    (S.Region("box"), "incomplete"),
    (S.Region("quad", quad=((100, 100), (120, 100), (120, 110), (100, 110))), "outside the image"),
    (S.Region("quad", quad=((0, 0), (1e7, 0), (1e7, 1e7), (0, 1e7))), "far larger than the image"),
    (S.Region("quad", quad=((math.nan, 0), (10, 0), (10, 10), (0, 10))), "invalid coordinates"),
    (S.Region("eyes", eyes=((1000, 1000), (1010, 1000))), "outside the image"),
    (S.Region("eyes", eyes=((10, 10), (10.2, 10))), "same spot"),
    (S.Region("eyes", eyes=((5, 10), (1e9, 10))), "inside the image"),
])
def test_bad_regions_are_refused_with_a_message(region: S.Region, words: str) -> None:
    with pytest.raises(VarSRError, match=words):
        S.crop_region(IMG, region)


def test_regions_partly_outside_are_clipped_and_noted(model) -> None:
    box = S.Region.from_box(-10, -10, 20, 20)
    assert S.crop_region(IMG, box).size == (20, 20)
    assert "clipped" in S.region_notes(IMG, box)[0]
    quad = S.Region("quad", quad=((30, 20), (60, 20), (60, 40), (30, 40)))
    assert S.crop_region(IMG, quad).size == (30, 20)
    assert "outside the image" in S.region_notes(IMG, quad)[0]
    s = S.Session(models_root=Path("/nonexistent"))
    s.set_evidence(S.evidence_from_image(IMG))
    s.set_region(box)
    _, notes = s.prepare(model.config)
    assert any("clipped" in n for n in notes)


def test_one_pixel_crops_and_images_generate(model, kinds: dict[str, Kind]) -> None:
    s = S.Session(models_root=kinds["plain.bmp"].path.parent)
    s.open_file(kinds["one_pixel.png"].path)  # the whole 1x1 image
    lrs, notes = s.prepare(model.config)
    assert lrs[0].shape == (3, 8, 8) and any("1x1" in n for n in notes)
    assert len(S.generate_candidates(model, lrs[0], 4)) == 4
    s.open_file(kinds["plain.bmp"].path)
    s.set_region(S.Region.from_box(5, 5, 6, 6))
    assert s.crop().size == (1, 1) and s.prepare(model.config)[0][0].shape == (3, 8, 8)
    s.set_domain("plate")  # seven character cells from a 1-pixel-wide crop: refused, with the reason
    with pytest.raises(VarSRError, match="narrower than one pixel"):
        s.cells()


def test_unreadable_file_says_permission_denied(kinds: dict[str, Kind], monkeypatch) -> None:
    import core.images as I

    def denied(*_a, **_k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(I.Image, "open", denied)
    with pytest.raises(ImageLoadError, match="permission denied"):
        open_image(kinds["plain.bmp"].path)


def test_damaged_metadata_loads_with_a_note(tmp_path: Path) -> None:
    """Bytes of a TIFF's directory overwritten one at a time: whatever loads says when Pillow warned."""
    from tests.helpers.inputs import encoded

    good = encoded("TIFF", sample_image(24, 16), compression="tiff_deflate")
    p = tmp_path / "damaged.tif"
    noted = 0
    for i in range(len(good) - 200, len(good)):
        data = bytearray(good)
        data[i] = 0xFF
        p.write_bytes(bytes(data))
        try:
            li = open_image(p)
        except ImageLoadError:
            continue
        noted += any(n.startswith("the file is partly damaged (") for n in li.notes)
    assert noted >= 1
