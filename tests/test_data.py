"""Data loaders on small fixtures made here, plus marked checks on the real ../shared/data."""

from __future__ import annotations

import gzip
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from core.data import (
    concat,
    load_celeba,
    load_dataset,
    load_folder,
    load_mnist,
    load_plate_chars,
    load_utkface,
)
from core.data.celeba import CELEBA_ATTRS, CELEBA_BOX
from core.data.common import DataWarning
from core.data.plates import CLASSES, PIL_DEFAULT_FONT, find_fonts, plate_origin
from core.data.registry import load_npz
from core.data.split import check_split, select, split_of
from core.data.utkface import UTKFACE_ATTRS, YOUNG_BELOW, parse_utkface_name
from core.errors import DataError
from core.model.faces import FRAME, LEFT_EYE, RIGHT_EYE

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def needs_real(sub: str) -> pytest.MarkDecorator:
    return pytest.mark.skipif(
        not (SHARED_DATA / sub).exists(), reason=f"real data not present at ../shared/data/{sub}"
    )


def same(a, b) -> None:
    """Two ImageSets hold the same data."""
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    assert (a.attrs is None) == (b.attrs is None)
    if a.attrs is not None:
        assert torch.equal(a.attrs, b.attrs)
    assert (a.classes, a.attr_names, a.ids, a.groups, a.skipped, a.source) == (
        b.classes,
        b.attr_names,
        b.ids,
        b.groups,
        b.skipped,
        b.source,
    )


def quiet(fn, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        return fn(*args, **kw)


# -- split -----------------------------------------------------------------------------------------


def test_split_is_a_stable_hash() -> None:
    assert split_of("celeba:17") == "test" and split_of("celeba:1") == "train"  # fixed forever
    keys = [f"k{i}" for i in range(5000)]
    frac = sum(split_of(k) == "test" for k in keys) / len(keys)
    assert 0.08 < frac < 0.12
    assert split_of("x", 0.0) == "train" and split_of("x", 1.0) == "test"
    train, test = select(keys, "train"), select(keys, "test")
    assert sorted(train + test) == list(range(len(keys))) and select(keys, "all") == list(range(len(keys)))
    with pytest.raises(ValueError):
        check_split("val")


# -- CelebA ----------------------------------------------------------------------------------------

CELEBA_SIZES = [(89, 109), (178, 218), (60, 74)]


def face_image(
    w: int, h: int, eyes: tuple[tuple[float, float], tuple[float, float]] | None = None
) -> Image.Image:
    """A grey image with a red dot at the left eye and a green dot at the right eye (fractions)."""
    im = Image.new("RGB", (w, h), (90, 90, 90))
    if eyes:
        d = ImageDraw.Draw(im)
        r = w / 40
        for (fx, fy), c in zip(eyes, [(255, 0, 0), (0, 255, 0)], strict=True):
            d.ellipse((fx * w - r, fy * h - r, fx * w + r, fy * h + r), fill=c)
    return im


@pytest.fixture
def celeba_root(tmp_path: Path) -> Path:
    """60 JPEGs of three sizes (one corrupt), 30 identities (one image has none), 40 attributes."""
    root = tmp_path / "celeba"
    img = root / "img_align_celeba"
    img.mkdir(parents=True)
    rng = np.random.default_rng(0)
    names = [f"{i:06d}.jpg" for i in range(1, 61)]
    attrs = rng.choice([-1, 1], size=(len(names), 40))
    eyes = ((0.3916, 0.5148), (0.6123, 0.5148))  # the measured median CelebA eye positions
    for i, n in enumerate(names):
        w, h = CELEBA_SIZES[i % 3]
        face_image(w, h, eyes).save(img / n, quality=95)
    (img / names[7]).write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    rows = [f"{n} " + " ".join(f"{v:2d}" for v in a) for n, a in zip(names, attrs, strict=True)]
    (root / "list_attr_celeba.txt").write_text(
        f"{len(names)}\n" + " ".join(CELEBA_ATTRS) + "\n" + "\n".join(rows)
    )
    ids = [f"{n} {100 + i // 2}" for i, n in enumerate(names) if i != 5]
    (root / "identity_CelebA.txt").write_text("\n".join(ids) + "\n")
    np.save(tmp_path / "celeba_attrs.npy", attrs)
    return root


def test_celeba_loads_crops_and_attributes(celeba_root: Path) -> None:
    with pytest.warns(DataWarning, match="000008.jpg"):
        s = load_celeba(celeba_root, "all")
    assert len(s) == 59 and s.skipped == 1 and "000008.jpg" not in s.ids
    assert s.images.dtype == torch.uint8 and s.images.shape == (59, 3, 64, 64)
    assert s.labels.dtype == torch.int64 and (s.labels == -1).all() and s.classes == []
    assert s.attr_names == CELEBA_ATTRS and s.attrs.dtype == torch.int8 and s.attrs.shape == (59, 40)
    table = np.load(celeba_root.parent / "celeba_attrs.npy")
    for k, name in enumerate(s.ids):
        assert s.attrs[k].tolist() == table[int(name[:6]) - 1].tolist()
    assert s.groups[s.ids.index("000006.jpg")] == "celeba-file:000006.jpg"  # no identity line
    assert s.groups[s.ids.index("000001.jpg")] == "celeba:100"


def test_celeba_box_puts_the_eyes_on_the_frame_at_any_resolution(celeba_root: Path) -> None:
    s = quiet(load_celeba, celeba_root, "all", size=64)
    for k in range(3):  # one image of each size
        a = s.images[k].numpy().astype(float)
        for ch, eye in ((0, LEFT_EYE), (1, RIGHT_EYE)):
            w = np.clip(a[ch] - a[1 - ch] - 20, 0, None)
            ys, xs = np.mgrid[:FRAME, :FRAME]
            c = ((w * (xs + 0.5)).sum() / w.sum(), (w * (ys + 0.5)).sum() / w.sum())
            assert np.hypot(c[0] - eye[0], c[1] - eye[1]) < 1.0, (k, ch, c)


def test_celeba_split_by_identity(celeba_root: Path) -> None:
    train, test = quiet(load_celeba, celeba_root, "train"), quiet(load_celeba, celeba_root, "test")
    assert len(test) > 0 and len(train) > 0
    assert set(train.groups).isdisjoint(test.groups)
    assert sorted(train.ids + test.ids) == sorted(quiet(load_celeba, celeba_root, "all").ids)
    assert train.ids == sorted(train.ids)


def test_celeba_limit_size_determinism_and_options(celeba_root: Path) -> None:
    full = quiet(load_celeba, celeba_root, "train")
    part = quiet(load_celeba, celeba_root, "train", limit=5)
    assert part.ids == full.ids[:5] and torch.equal(part.images, full.images[:5])
    same(full, quiet(load_celeba, celeba_root, "train"))
    assert quiet(load_celeba, celeba_root, "train", size=32, limit=2).images.shape == (2, 3, 32, 32)
    (celeba_root / "list_attr_celeba.txt").unlink()
    s = quiet(load_celeba, celeba_root, "train", attributes=False, limit=3)
    assert s.attrs is None and s.attr_names == []
    with pytest.raises(DataError, match="list_attr_celeba"):
        load_celeba(celeba_root, "train")


def test_celeba_bad_layouts(tmp_path: Path, celeba_root: Path) -> None:
    with pytest.raises(DataError, match="not a folder"):
        load_celeba(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="img_align_celeba"):
        load_celeba(tmp_path / "empty")
    attr = celeba_root / "list_attr_celeba.txt"
    attr.write_text(attr.read_text() + "\n000099.jpg 1 -1\n")
    with pytest.raises(DataError, match="40 values"):
        load_celeba(celeba_root)
    with pytest.raises(ValueError, match="split"):
        load_celeba(celeba_root, "validation")


# -- UTKFace ---------------------------------------------------------------------------------------

UTK_GOOD = [(25, 0, 0), (34, 1, 1), (35, 0, 2), (70, 1, 3), (3, 0, 4), (50, 1, 0)]


@pytest.fixture
def utk_root(tmp_path: Path) -> Path:
    root = tmp_path / "UTKFace"
    root.mkdir()
    for i in range(30):
        age, gender, race = UTK_GOOD[i % len(UTK_GOOD)]
        face_image(96, 96).save(root / f"{age}_{gender}_{race}_2017011{i:09d}.jpg.chip.jpg")
    face_image(96, 96).save(root / "39_1_20170116174525125.jpg.chip.jpg")  # race missing
    face_image(96, 96).save(root / "selfie.jpg")
    (root / "21_0_1_20170116000000001.jpg.chip.jpg").write_bytes(b"")  # empty file
    return root


def test_utkface_names_attrs_and_skips(utk_root: Path) -> None:
    assert parse_utkface_name("24_0_1_20170116220224657 .jpg.chip.jpg") == (24, 0, 1)
    assert parse_utkface_name("39_1_20170116174525125.jpg.chip.jpg") is None
    with pytest.warns(DataWarning):
        s = load_utkface(utk_root, "all")
    assert len(s) == 30 and s.skipped == 3
    assert s.images.shape == (30, 3, 64, 64) and s.attrs.shape == (30, len(UTKFACE_ATTRS))
    assert s.attr_names[:2] == ["Male", "Young"]
    for k, name in enumerate(s.ids):
        age, gender, race = parse_utkface_name(name)
        row = dict(zip(s.attr_names, s.attrs[k].tolist(), strict=True))
        assert row["Male"] == (1 if gender == 0 else -1)
        assert row["Young"] == (1 if age < YOUNG_BELOW else -1)
        assert [row[f"Race_{r}"] for r in ("White", "Black", "Asian", "Indian", "Others")].count(1) == 1
        assert row[["Race_White", "Race_Black", "Race_Asian", "Race_Indian", "Race_Others"][race]] == 1


def test_utkface_split_and_errors(utk_root: Path, tmp_path: Path) -> None:
    train, test = quiet(load_utkface, utk_root, "train"), quiet(load_utkface, utk_root, "test")
    assert len(train) + len(test) == 30 and set(train.ids).isdisjoint(test.ids)
    assert train.skipped + test.skipped == 3
    bad = tmp_path / "not_utk"
    bad.mkdir()
    face_image(10, 10).save(bad / "photo.jpg")
    with pytest.raises(DataError, match="AGE_GENDER_RACE"):
        quiet(load_utkface, bad)


def test_concat_faces(celeba_root: Path, utk_root: Path) -> None:
    a, b = quiet(load_celeba, celeba_root, "all", limit=4), quiet(load_utkface, utk_root, "all", limit=3)
    c = concat([a, b])
    assert len(c) == 7 and c.images.shape == (7, 3, 64, 64) and c.skipped == a.skipped + b.skipped
    assert c.attr_names[:40] == CELEBA_ATTRS and set(UTKFACE_ATTRS) <= set(c.attr_names)
    assert len(c.attr_names) == 40 + len(UTKFACE_ATTRS) - 2  # Male and Young are shared
    male = c.attr_names.index("Male")
    assert c.attrs[:4, male].tolist() == a.attrs[:, CELEBA_ATTRS.index("Male")].tolist()
    assert c.attrs[4:, male].tolist() == b.attrs[:, 0].tolist()
    assert (c.attrs[:4, c.attr_names.index("Race_White")] == 0).all()  # unknown for CelebA
    assert (c.attrs[4:, c.attr_names.index("Smiling")] == 0).all()
    assert c.ids == a.ids + b.ids


# -- MNIST -----------------------------------------------------------------------------------------


def write_idx(root: Path, prefix: str, images: np.ndarray, labels: np.ndarray, gz: bool = False) -> None:
    root.mkdir(parents=True, exist_ok=True)
    n, r, c = images.shape
    blobs = {
        f"{prefix}-images-idx3-ubyte": np.array([2051, n, r, c], ">u4").tobytes() + images.tobytes(),
        f"{prefix}-labels-idx1-ubyte": np.array([2049, n], ">u4").tobytes() + labels.tobytes(),
    }
    for name, blob in blobs.items():
        if gz:
            (root / (name + ".gz")).write_bytes(gzip.compress(blob))
        else:
            (root / name).write_bytes(blob)


def digits(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    images = np.zeros((n, 28, 28), np.uint8)
    for i, lab in enumerate(labels):
        images[i, 4 + 2 * lab : 8 + 2 * lab, 6:22] = 255  # a bar whose height encodes the label
    return images, labels


def test_mnist_reads_idx(tmp_path: Path) -> None:
    images, labels = digits(50)
    write_idx(tmp_path / "plain", "train", images, labels)
    write_idx(tmp_path / "gz", "train", images, labels, gz=True)
    s = load_mnist(tmp_path / "plain", "all")
    assert s.images.shape == (50, 1, 24, 24) and s.images.dtype == torch.uint8
    assert s.labels.tolist() == labels.tolist() and s.classes == [str(d) for d in range(10)]
    assert s.ids[3] == "mnist:train-images-idx3-ubyte:3" and s.groups == s.ids
    same(s, load_mnist(tmp_path / "gz", "all"))
    native = load_mnist(tmp_path / "plain", "all", size=28, limit=4)
    assert np.array_equal(native.images[:, 0].numpy(), images[:4])
    train, test = load_mnist(tmp_path / "plain", "train"), load_mnist(tmp_path / "plain", "test")
    assert len(train) + len(test) == 50 and len(test) > 0 and set(train.ids).isdisjoint(test.ids)
    # Bar rows 4..8 of 28 resized by area to 24: the top bar lands about rows 3.4..6.9.
    row = load_mnist(tmp_path / "plain", "all").images[int(np.argmax(labels == 0)), 0, :, 12].numpy()
    assert row[4:6].min() > 200 and row[:3].max() == 0 and row[8:].max() == 0


def test_mnist_uses_t10k_for_test_when_present(tmp_path: Path) -> None:
    write_idx(tmp_path, "train", *digits(30))
    write_idx(tmp_path, "t10k", *digits(12, seed=1))
    train, test, every = (load_mnist(tmp_path, s) for s in ("train", "test", "all"))
    assert (len(train), len(test), len(every)) == (30, 12, 42)
    assert all(i.startswith("mnist:t10k-images") for i in test.ids)
    assert len(load_mnist(tmp_path, "all", limit=35)) == 35


def test_mnist_test_files_alone_are_the_test_split(tmp_path: Path) -> None:
    write_idx(tmp_path, "t10k", *digits(12, seed=1), gz=True)
    test = load_mnist(tmp_path, "test")
    assert len(test) == 12 and len(load_mnist(tmp_path, "all")) == 12
    assert all(i.startswith("mnist:t10k-images") for i in test.ids)
    with pytest.raises(DataError, match="only the t10k"):
        load_mnist(tmp_path, "train")
    digits3 = load_dataset("mnist", tmp_path, "test", size=(24, 24), channels=1)
    assert len(digits3) == 12


def test_mnist_bad_files(tmp_path: Path) -> None:
    images, labels = digits(10)
    write_idx(tmp_path / "a", "train", images, labels)
    p = tmp_path / "a" / "train-images-idx3-ubyte"
    p.write_bytes(np.array([2052], ">u4").tobytes() + p.read_bytes()[4:])
    with pytest.raises(DataError, match="magic"):
        load_mnist(tmp_path / "a")
    write_idx(tmp_path / "b", "train", images, labels[:9])
    with pytest.raises(DataError, match="header says 10 labels"):
        load_mnist(tmp_path / "b")
    write_idx(tmp_path / "c", "train", images[:9], labels[:9])
    write_idx(tmp_path / "d", "train", images, labels)
    (tmp_path / "c" / "train-labels-idx1-ubyte").write_bytes(
        (tmp_path / "d" / "train-labels-idx1-ubyte").read_bytes()
    )
    with pytest.raises(DataError, match="9 images but"):
        load_mnist(tmp_path / "c")
    (tmp_path / "e").mkdir()
    with pytest.raises(DataError, match="train-images-idx3-ubyte"):
        load_mnist(tmp_path / "e")


# -- plate characters ------------------------------------------------------------------------------


def char_image(w: int, h: int, seed: int) -> Image.Image:
    """Dark blob on white, like a binarised OpenALPR crop."""
    a = np.full((h, w), 255, np.uint8)
    rng = np.random.default_rng(seed)
    a[2 : h - 2, 3 : w - 3] = 0
    a[rng.integers(4, h - 4), 4 : w - 4] = 255
    return Image.fromarray(a, "L")


@pytest.fixture
def plates_root(tmp_path: Path) -> Path:
    root = tmp_path / "train-ocr"
    chars = root / "gb" / "chars"
    chars.mkdir(parents=True)
    names = []
    plates = ("AB12CDE", "XY34ZZZ", "KL56MNP", "QR78STU", "GH90JKL", "CROPPED_2014-10-06.225502.IMAGE")
    for plate in plates + ("PL004X", "PL006X"):  # these two go to the test split
        for n, c in enumerate(plate[:4]):
            names.append(f"{c}-{n % 2}-{plate}.jpg")
    names += ["0-0-10_DWG1072.jpg", "0-0-10_DWGD072.jpg"]  # one plate read twice
    for k, name in enumerate(names):
        char_image(22, 44, k).save(chars / name)
    char_image(22, 30, 99).save(chars / "d-0-10_ABC1234.jpg")  # Brazilian lower case
    char_image(22, 44, 98).save(chars / "%-0-AB12CDE.jpg")  # not a plate character
    char_image(22, 44, 97).save(chars / "junk.png")  # not <char>-<n>-<source>
    (chars / "B-1-KL56MNP.jpg").write_bytes(b"garbage")  # corrupt

    # A chars folder combined into a sheet (as OpenALPR does): must not be read twice.
    br = root / "br" / "chars"
    br.mkdir(parents=True)
    for k, c in enumerate("a1"):
        char_image(20, 28, k).save(br / f"{c}-0-10_AAA1111.jpg")
    (root / "br" / "input").mkdir()
    Image.new("L", (100, 60), 255).save(root / "br" / "input" / "lbr.brazil.exp0.tif")
    (root / "br" / "input" / "lbr.brazil.exp0.box").write_text("1 10 10 30 50 0\nA 40 10 60 50 0\n")

    # A sheet: white 100x60, a black box at x 10..20 and (bottom-left origin) y 5..25, i.e. rows 35..55.
    inp = root / "eu" / "input"
    inp.mkdir(parents=True)
    sheet = np.full((60, 100), 255, np.uint8)
    sheet[35:55, 10:20] = 0
    sheet[5:25, 50:60] = 0  # where a wrong (top-left) reading of the same box would land
    sheet[60 - 40 : 60 - 20, 70:80] = 0
    Image.fromarray(sheet).save(inp / "leu.testland.exp0.tif")
    (inp / "leu.testland.exp0.box").write_text("K 10 5 20 25 0\n% 30 5 40 25 0\n7 70 20 80 40 0\n")
    Image.fromarray(sheet).save(inp / "leu.germany.exp0.tif")
    (inp / "leu.germany.exp0.box").write_text("K 10 5 20 25 0\n")
    (inp / "leu.broken.exp0.tif").write_bytes(b"not a tiff")  # a corrupt sheet: skipped, counted once
    (inp / "leu.broken.exp0.box").write_text("K 10 5 20 25 0\nK 30 5 40 25 0\n")
    return root


def test_plate_chars_labels_sources_and_skips(plates_root: Path) -> None:
    with pytest.warns(DataWarning):
        s = load_plate_chars(plates_root, "all")
    assert s.images.shape[1:] == (1, 16, 8) and s.images.dtype == torch.uint8
    assert s.classes == CLASSES and len(CLASSES) == 36
    by_id = dict(zip(s.ids, s.labels.tolist(), strict=True))
    assert by_id["chars:gb/chars/d-0-10_ABC1234.jpg"] == CLASSES.index("D")  # lower case -> upper
    assert by_id["chars:gb/chars/A-0-AB12CDE.jpg"] == CLASSES.index("A")
    assert s.skipped == 5  # '%' crop, junk.png, the corrupt crop, the '%' sheet box, the corrupt sheet
    assert not any("br/input" in i for i in s.ids)  # the br sheet repeats br/chars
    assert sum(i.startswith("chars:br/") for i in s.ids) == 2
    origins = {plate_origin(i) for i in s.ids}
    assert origins == {"chars", "sheet", "rendered"}
    assert "rendered:eu/input/leu.germany.exp0.tif#0" in s.ids
    # Same plate read twice -> one group.
    g = dict(zip(s.ids, s.groups, strict=True))
    assert g["chars:gb/chars/0-0-10_DWG1072.jpg"] == g["chars:gb/chars/0-0-10_DWGD072.jpg"]
    assert g["chars:gb/chars/A-0-AB12CDE.jpg"] == g["chars:gb/chars/B-1-AB12CDE.jpg"]


def test_plate_sheet_boxes_flip_y(plates_root: Path) -> None:
    s = quiet(load_plate_chars, plates_root, "all")
    k = s.ids.index("sheet:eu/input/leu.testland.exp0.tif#0")
    assert s.labels[k] == CLASSES.index("K")
    assert s.images[k].max() < 40  # the black box, not the white page or the decoy above it
    k7 = s.ids.index("sheet:eu/input/leu.testland.exp0.tif#2")
    assert s.images[k7].max() < 40 and s.labels[k7] == CLASSES.index("7")


def test_plate_padding_keeps_aspect_with_background(plates_root: Path) -> None:
    s = quiet(load_plate_chars, plates_root, "all", sheets=False)
    k = s.ids.index("chars:gb/chars/d-0-10_ABC1234.jpg")  # 22x30: wider than 1:2, padded top and bottom
    img = s.images[k, 0].numpy()
    assert img[0].min() > 200 and img[-1].min() > 200  # background rows
    assert img[8, 2:6].max() < 60  # the glyph in the middle
    assert not any(i.startswith(("sheet:", "rendered:")) for i in s.ids)


def test_plate_split_keeps_plates_together(plates_root: Path) -> None:
    train, test = quiet(load_plate_chars, plates_root, "train"), quiet(load_plate_chars, plates_root, "test")
    every = quiet(load_plate_chars, plates_root, "all")
    assert len(train) + len(test) == len(every) and train.skipped + test.skipped == every.skipped
    # PL004X and PL006X differ in one character: taken for one plate read twice, one group.
    assert set(test.groups) == {"plate:gb/PL004X"}
    assert {i.rsplit("-", 1)[-1] for i in test.ids} == {"PL004X.jpg", "PL006X.jpg"}
    assert set(train.groups).isdisjoint(test.groups)
    lim = quiet(load_plate_chars, plates_root, "train", limit=3)
    assert lim.ids == train.ids[:3]


def test_plate_synthetic_characters(plates_root: Path) -> None:
    base = quiet(load_plate_chars, plates_root, "train")
    s = quiet(load_plate_chars, plates_root, "train", synthetic=24, fonts=[PIL_DEFAULT_FONT], seed=3)
    assert len(s) == len(base) + 24 and sum(plate_origin(i) == "synthetic" for i in s.ids) == 24
    syn = s.images[len(base) :].float()
    assert syn.shape == (24, 1, 16, 8)
    # Dark glyphs on a light background, like the OpenALPR crops; the border is background.
    border = torch.cat([syn[:, 0, 0], syn[:, 0, -1]], 1)
    assert border.median() > 200 and syn.amin(dim=(1, 2, 3)).max() < 100
    again = quiet(load_plate_chars, plates_root, "train", synthetic=24, fonts=[PIL_DEFAULT_FONT], seed=3)
    same(s, again)
    other = quiet(load_plate_chars, plates_root, "train", synthetic=24, fonts=[PIL_DEFAULT_FONT], seed=4)
    assert not torch.equal(s.images, other.images)
    assert len(quiet(load_plate_chars, plates_root, "test", synthetic=24, fonts=[PIL_DEFAULT_FONT])) == len(
        quiet(load_plate_chars, plates_root, "test")
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        none = load_plate_chars(plates_root, "train", synthetic=5, fonts=[str(plates_root / "missing.ttf")])
    assert len(none) == len(base) and any("no font" in str(w.message) for w in caught)


@pytest.mark.skipif(
    not find_fonts(), reason="no DejaVu / roadgeek fonts installed (fonts-dejavu-core, fonts-roadgeek)"
)
def test_plate_synthetic_with_system_fonts(plates_root: Path) -> None:
    s = quiet(load_plate_chars, plates_root, "train", synthetic=8)
    assert sum(plate_origin(i) == "synthetic" for i in s.ids) == 8


def test_plate_layout_error(tmp_path: Path) -> None:
    (tmp_path / "plates" / "gb").mkdir(parents=True)
    with pytest.raises(DataError, match="chars"):
        load_plate_chars(tmp_path / "plates")


# -- plain folder ----------------------------------------------------------------------------------


@pytest.fixture
def folder_root(tmp_path: Path) -> Path:
    root = tmp_path / "pics"
    (root / "sub" / "deeper").mkdir(parents=True)
    wide = np.zeros((20, 40, 3), np.uint8)
    wide[:, :10] = (255, 0, 0)
    wide[:, 30:] = (255, 0, 0)
    wide[:, 10:30] = (0, 0, 255)
    Image.fromarray(wide).save(root / "wide.png")
    Image.new("L", (30, 30), 128).save(root / "sub" / "grey.jpg")
    Image.new("RGBA", (16, 16), (0, 255, 0, 255)).save(root / "sub" / "deeper" / "alpha.png")
    Image.new("RGB", (50, 25), (10, 20, 30)).save(root / "sub" / "b.bmp")
    (root / "sub" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    (root / "notes.txt").write_text("not an image")
    return root


def test_folder_loader(folder_root: Path) -> None:
    with pytest.warns(DataWarning, match="broken.png"):
        s = load_folder(folder_root, "all", size=(16, 16), channels=3)
    assert s.ids == ["sub/b.bmp", "sub/deeper/alpha.png", "sub/grey.jpg", "wide.png"]
    assert s.skipped == 1 and s.images.shape == (4, 3, 16, 16) and (s.labels == -1).all()
    wide = s.images[s.ids.index("wide.png")]
    assert (wide[2] > 250).all() and (wide[0] < 5).all()  # centre crop kept only the blue middle
    grey = quiet(load_folder, folder_root, "all", size=(8, 12), channels=1)
    assert grey.images.shape == (4, 1, 12, 8)
    train, test = (quiet(load_folder, folder_root, sp, size=(8, 8), channels=1) for sp in ("train", "test"))
    assert sorted(train.ids + test.ids) == sorted(grey.ids)
    with pytest.raises(DataError, match="not a folder"):
        load_folder(folder_root / "sub" / "deeper" / "alpha.png")
    (folder_root / "empty").mkdir()
    with pytest.raises(DataError, match="no image files"):
        load_folder(folder_root / "empty")


# -- registry and cache ----------------------------------------------------------------------------


def test_load_dataset_dispatch_and_channels(celeba_root: Path, folder_root: Path, tmp_path: Path) -> None:
    s = quiet(load_dataset, "celeba", celeba_root, "all", size=(32, 32), channels=1, limit=3)
    assert s.images.shape == (3, 1, 32, 32)
    rgb = quiet(load_dataset, "celeba", celeba_root, "all", size=32, channels=3, limit=3)
    r, g, b = (rgb.images[:, i].long() for i in range(3))
    assert torch.allclose(s.images[:, 0].long(), (r * 299 + g * 587 + b * 114) // 1000, atol=1)
    write_idx(tmp_path / "mnist", "train", *digits(20))
    digits3 = load_dataset("mnist", tmp_path / "mnist", "all", size=(24, 24), channels=3)
    assert digits3.images.shape == (20, 3, 24, 24)
    assert quiet(load_dataset, "folder", folder_root, "all", (10, 20), 3).images.shape == (4, 3, 20, 10)
    with pytest.raises(ValueError, match="unknown data set kind"):
        load_dataset("imagenet", tmp_path, "all", 64, 3)
    with pytest.raises(ValueError, match="square"):
        load_dataset("celeba", celeba_root, "all", (32, 16), 3)


def test_cache_round_trip(celeba_root: Path, plates_root: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    fresh = quiet(load_dataset, "celeba", celeba_root, "train", 32, 3, limit=10)
    first = quiet(load_dataset, "celeba", celeba_root, "train", 32, 3, limit=10, cache_dir=cache)
    files = list(cache.glob("*.npz"))
    assert len(files) == 1
    same(fresh, first)
    same(fresh, load_npz(files[0]))
    with np.load(files[0], allow_pickle=False) as z:  # no object arrays anywhere
        assert all(z[k].dtype != object for k in z.files)
    # Read back from the cache: the images are not decoded again.
    for f in (celeba_root / "img_align_celeba").iterdir():
        f.write_bytes(b"")
    same(fresh, load_dataset("celeba", celeba_root, "train", 32, 3, limit=10, cache_dir=cache))
    # Different arguments, different entries; a set without attributes round-trips too.
    plates = quiet(load_dataset, "plate-chars", plates_root, "all", (8, 16), 1, cache_dir=cache)
    assert len(list(cache.glob("*.npz"))) == 2
    same(plates, load_dataset("plate-chars", plates_root, "all", (8, 16), 1, cache_dir=cache))
    # A damaged cache file is decoded again, with a warning.
    for f in cache.glob("plate-chars*.npz"):
        f.write_bytes(b"PK damaged")
    with pytest.warns(DataWarning, match="cache"):
        same(plates, load_dataset("plate-chars", plates_root, "all", (8, 16), 1, cache_dir=cache))


def test_concat_rejects_mismatches(plates_root: Path, tmp_path: Path) -> None:
    write_idx(tmp_path / "mnist", "train", *digits(10))
    digits_set = load_mnist(tmp_path / "mnist", "all", size=16)
    plates = quiet(load_plate_chars, plates_root, "all", size=(16, 16))
    with pytest.raises(ValueError, match="classes"):
        concat([digits_set, plates])
    with pytest.raises(ValueError, match="shape"):
        concat([digits_set, load_mnist(tmp_path / "mnist", "all", size=24)])
    both = concat([digits_set, digits_set])
    assert len(both) == 20 and both.classes == digits_set.classes and both.attrs is None


# -- the real data (../shared/data) ---------------------------------------------------------------


@pytest.mark.data
@needs_real("celeba")
def test_real_celeba() -> None:
    train = load_celeba(SHARED_DATA / "celeba", "train", limit=200)
    test = load_celeba(SHARED_DATA / "celeba", "test", limit=100)
    assert train.images.shape == (200, 3, 64, 64) and len(test) == 100
    assert train.attr_names == CELEBA_ATTRS and set(train.attrs.unique().tolist()) <= {-1, 1}
    assert set(train.groups).isdisjoint(test.groups) and train.skipped == 0
    assert CELEBA_BOX[0] > 0 and CELEBA_BOX[3] < 1  # the frame lies inside the aligned images


@pytest.mark.data
@needs_real("utkface")
def test_real_utkface_concat_with_celeba() -> None:
    utk = load_utkface(SHARED_DATA / "utkface", "all", limit=200)
    assert utk.images.shape == (200, 3, 64, 64) and utk.skipped == 0
    young = utk.attrs[:, 1] == 1
    ages = torch.tensor([parse_utkface_name(i.rsplit("/", 1)[-1])[0] for i in utk.ids])
    assert torch.equal(young, ages < YOUNG_BELOW)
    if (SHARED_DATA / "celeba").exists():
        both = concat([load_celeba(SHARED_DATA / "celeba", "all", limit=10), utk])
        assert len(both) == 210 and "Race_Asian" in both.attr_names


@pytest.mark.data
@needs_real("mnist")
def test_real_mnist() -> None:
    s = load_mnist(SHARED_DATA / "mnist", "all")
    assert s.images.shape == (8963, 1, 24, 24) and s.labels.bincount().min() > 700


@pytest.mark.data
@needs_real("plates/openalpr-train-ocr")
def test_real_plate_chars() -> None:
    root = SHARED_DATA / "plates" / "openalpr-train-ocr"
    train, test = load_plate_chars(root, "train"), load_plate_chars(root, "test")
    assert set(train.groups).isdisjoint(test.groups)
    origins = {plate_origin(i) for i in train.ids + test.ids}
    assert origins == {"chars", "sheet", "rendered"}
    assert not any("/input/lbr.brazil" in i or "/input/luk.uk" in i or "combined" in i for i in train.ids)
    n_chars = sum(plate_origin(i) == "chars" for i in train.ids + test.ids)
    assert n_chars == 3598 + 1772  # every crop of gb/chars and br/chars
    assert train.labels.bincount(minlength=36).min() > 0
