"""The session model (core/workbench/session.py): no Qt, tiny untrained bundles."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image, PngImagePlugin

import core
from core.errors import ImageLoadError, VarSRError
from core.workbench import session as S


@pytest.fixture
def model(tiny_bundle: Path):
    torch.set_num_threads(1)
    return core.load_model(tiny_bundle)


@pytest.fixture
def evidence_png(tmp_path: Path) -> Path:
    img = Image.new("RGB", (40, 30), (90, 120, 150))
    img.paste((200, 40, 40), (10, 8, 26, 24))
    p = tmp_path / "evidence.png"
    img.save(p)
    return p


def test_event_connect_emit_disconnect():
    ev = S.Event()
    got = []
    fn = ev.connect(lambda *a: got.append(a))
    ev.emit(1, "x")
    ev.disconnect(fn)
    ev.emit(2)
    assert got == [(1, "x")]


def test_open_file_reads_only_and_records_hash(evidence_png: Path):
    before = evidence_png.read_bytes()
    s = S.Session(models_root=evidence_png.parent / "none")
    seen = []
    s.events.evidence_changed.connect(seen.append)
    ev = s.open_file(evidence_png)
    assert evidence_png.read_bytes() == before
    assert ev.sha256 == core.images.sha256_file(evidence_png) and ev.image.size == (40, 30)
    assert seen == [ev]


def test_corrupt_file_leaves_session_unchanged(tmp_path: Path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    s = S.Session(models_root=tmp_path)
    with pytest.raises(ImageLoadError):
        s.open_file(bad)
    assert s.evidence is None


def test_pasted_image_hash_is_stable():
    img = Image.new("RGB", (5, 4), (1, 2, 3))
    assert S.evidence_from_image(img).sha256 == S.evidence_from_image(img.copy()).sha256


def test_regions_box_quad_eyes(evidence_png: Path):
    s = S.Session(models_root=evidence_png.parent)
    s.open_file(evidence_png)
    s.set_region(S.Region.from_box(26, 24, 10, 8))
    assert s.crop().size == (16, 16)
    quad = S.Region("quad", quad=((10, 8), (26, 8), (26, 24), (10, 24)))
    assert S.crop_region(s.evidence.image, quad).size == (16, 16)
    eyes = S.Region("eyes", eyes=((14.0, 14.0), (21.0, 14.0)))
    crop = S.crop_region(s.evidence.image, eyes)
    # the canonical frame at the evidence's own scale: 64 px per 25 px of eye distance
    assert crop.width == crop.height and abs(crop.width - 7 * 64 / 25) <= 1
    with pytest.raises(VarSRError):
        S.crop_region(s.evidence.image, S.Region.from_box(100, 100, 120, 120))


def test_split_cells_and_missing_models(tmp_path: Path):
    cells = S.split_cells(Image.new("L", (21, 8)), S.equal_cells(3))
    assert [c.size for c in cells] == [(7, 8)] * 3
    with pytest.raises(VarSRError):
        S.split_cells(Image.new("L", (3, 8)), [0.5, 0.55])
    msgs = S.missing_model_messages(tmp_path)
    assert any("No model 'face-8' installed" in m for m in msgs)
    assert len(msgs) == sum(len(v) for v in S.DOMAIN_MODELS.values())


def test_suggest_model_by_crop_size():
    assert S.suggest_model("face", (9, 10), {}) == "face-8"
    assert S.suggest_model("face", (30, 30), {}) == "face-16"
    assert S.suggest_model("face", (13, 14), {}) == "face-12"  # 12-15 px faces: never reduced to 8x8
    assert S.suggest_model("face", (11, 11), {}) == "face-8"
    assert S.suggest_model("plate", (5, 9), {}) == "plate-4x8"  # a cell of 4x8 px or more: never reduced to 2x4
    assert S.suggest_model("plate", (3, 6), {}) == "plate-3x6"
    assert S.suggest_model("plate", (2, 5), {}) == "plate-char"


def test_generate_is_reproducible_scored_and_recorded(model):
    lr = torch.rand(3, 8, 8)
    steps = []
    a = S.generate_candidates(model, lr, 4, seed=3, temperature=0.7, progress=lambda i, n: steps.append(i),
                              chunk=3)
    again = S.generate_candidates(model, lr, 4, seed=3, temperature=0.7, chunk=3)
    b = S.generate_candidates(model, lr, 4, seed=3, temperature=0.7)
    assert len(a) == 4 and steps == [3, 4]
    # bit-identical with the recorded chunk (what regeneration replays); another batch size may pick
    # other CPU kernels (e.g. on AVX2 without AVX-512), so across chunk sizes only numerically equal
    assert all(torch.equal(x.image, y.image) for x, y in zip(a, again, strict=True))
    assert all(torch.allclose(x.image, y.image, atol=1e-5) for x, y in zip(a, b, strict=True))
    assert a[0].recipe["chunk"] == 3 and b[0].recipe["chunk"] == 16
    r = a[2].recipe
    assert (r["model"], r["seed"], r["index"], r["temperature"]) == ("face-8", 3, 2, 0.7)
    assert r["weights_sha256"] and a[2].z.shape == (16,)
    l1, psnr = core.workbench.preprocess.consistency(a[2].image[None], lr, 8)
    assert a[2].l1 == pytest.approx(float(l1[0])) and a[2].lr_psnr == pytest.approx(float(psnr[0]))
    with pytest.raises(VarSRError):
        S.generate_candidates(model, lr, 2)


def test_generate_can_be_cancelled(model):
    with pytest.raises(S.GenerationCancelled):
        S.generate_candidates(model, torch.rand(3, 8, 8), 8, cancelled=lambda: True)


def test_sliders_more_like_this_and_reference(model):
    s = S.Session()
    base = S.generate_candidates(model, torch.rand(3, 8, 8), 4)[0]
    s.add_candidate(base)
    d = S.derive_with_sliders(model, base, {"mean/Male": 1.5, "diff/Male": 0.0})
    assert d.recipe["sliders"] == {"mean/Male": 1.5} and d.recipe["parent"] == base.id
    expected = base.z + 1.5 * model.config.attribute_scale * model.attributes["mean/Male"]
    assert torch.allclose(d.z, expected)
    with pytest.raises(VarSRError):
        S.derive_with_sliders(model, base, {"nope": 1.0})
    near = S.more_like_this(model, base, 4, seed=1, temperature=0.0)
    assert all(torch.allclose(c.z, base.z) and c.recipe["parent"] == base.id for c in near)
    ref = S.reference_transfer(model, base.lr, Image.new("RGB", (100, 80), (10, 20, 30)), "abc")
    assert ref.recipe["kind"] == "reference" and ref.image.shape == (3, 64, 64)


def test_rows_assemble_cells(tiny_bundle: Path, tmp_path: Path):
    from core.model.bundle import save_bundle
    from core.model.varsr import VarSR
    from tests.conftest import tiny_config

    m = core.load_model(save_bundle(VarSR(tiny_config("plate-char")), tmp_path / "plate-char"))
    cells = S.generate_cells(m, [torch.rand(1, 4, 2) for _ in range(3)], 4, 0, 1.0)
    row = S.assemble_row(m, cells, [0, 2, 1])
    assert row.image.shape == (1, 16, 24) and row.lr.shape == (1, 4, 6)
    assert [c["index"] for c in row.recipe["cells"]] == [0, 2, 1]
    assert [c["seed"] for c in row.recipe["cells"]] == [0, 1, 2]


def test_shortlist_and_export(model, tmp_path: Path):
    s = S.Session()
    s.add_set("test", S.generate_candidates(model, torch.rand(3, 8, 8), 4, seed=5))
    ids = list(s.candidates)
    s.star(ids[2])
    s.star(ids[0])
    s.star(ids[0])
    s.move(ids[0], 0)
    s.set_note(ids[2], "closest to the witness account")
    assert [e.candidate_id for e in s.shortlist] == [ids[0], ids[2]]
    out = s.export_shortlist(tmp_path / "leads")
    man = json.loads((out / "manifest.json").read_text())
    assert man["notice"] == core.LEAD_NOTICE
    assert [e["recipe"]["id"] for e in man["leads"]] == [ids[0], ids[2]]
    assert man["leads"][1]["note"] == "closest to the witness account"
    assert man["leads"][1]["recipe"]["seed"] == 5
    with Image.open(out / man["leads"][0]["file"]) as im:
        assert isinstance(im, PngImagePlugin.PngImageFile) and im.text["Description"] == core.LEAD_NOTICE
    assert not list(tmp_path.glob(".leads*"))
    with pytest.raises(S.ExportError):
        s.export_shortlist(out)
    with pytest.raises(S.ExportError):
        S.Session().export_shortlist(tmp_path / "empty")


def test_align_reference_by_eyes_centre_and_resize():
    import numpy as np

    from core.model import faces
    from tests.conftest import tiny_config

    cfg = tiny_config("face-8")
    img = Image.new("RGB", (220, 180), (180, 180, 180))
    left, right = (70.0, 80.0), (118.0, 92.0)  # a tilted face, eyes 49 px apart
    for x, y in (left, right):
        img.paste((0, 0, 0), (round(x) - 2, round(y) - 2, round(x) + 2, round(y) + 2))
    out, how = S.align_reference(img, cfg, (right, left))  # order does not matter
    assert out.size == (64, 64) and how["method"] == "eyes"
    assert how["eyes"] == [[70.0, 80.0], [118.0, 92.0]] and how["reference_size"] == [220, 180]
    a = np.asarray(out.convert("L"), dtype=float)
    for ex, ey in (faces.LEFT_EYE, faces.RIGHT_EYE):
        win = a[int(ey) - 4:int(ey) + 5, int(ex) - 4:int(ex) + 5]
        iy, ix = np.unravel_index(win.argmin(), win.shape)
        assert abs(int(ex) - 4 + ix + 0.5 - ex) <= 1.5 and abs(int(ey) - 4 + iy + 0.5 - ey) <= 1.5
        assert win.min() < 90

    out, how = S.align_reference(img, cfg, None)
    assert out.size == (64, 64) and how == {"method": "centre", "reference_size": [220, 180]}
    assert out.getpixel((0, 32)) == (180, 180, 180)  # a square from the middle, not the squeezed photo
    same, how = S.align_reference(Image.new("RGB", (64, 64)), cfg, None)
    assert how["method"] == "as given"
    plate, how = S.align_reference(img, tiny_config("plate-char"), None)
    assert plate.mode == "L" and plate.size == tiny_config("plate-char").hr_size and how["method"] == "resize"


def test_reference_transfer_records_the_alignment(model):
    img = Image.new("RGB", (200, 160), (150, 120, 100))
    c = S.reference_transfer(model, torch.rand(3, 8, 8), img, "ab" * 32, eyes=((70, 60), (120, 62)))
    assert c.recipe["reference_alignment"]["method"] == "eyes"
    assert json.dumps(c.recipe_json())


def test_cell_aspect_notes_are_merged():
    notes = ["crop aspect 3x5 differs from the model's 2x4: it is stretched", "something else",
             "crop aspect 5x5 differs from the model's 2x4: it is stretched"]
    out = S.merge_cell_notes(notes)
    assert out[0].startswith("cell aspects 3x5, 5x5 differ from the model's 2x4") and out[1:] == ["something else"]
    assert S.merge_cell_notes(notes[:1]) == ["cell aspect 3x5 differs from the model's 2x4: it is stretched"]


def _shortlisted_session(model) -> S.Session:
    s = S.Session()
    s.add_set("test", S.generate_candidates(model, torch.rand(3, 8, 8), 4, seed=5))
    ids = list(s.candidates)
    s.star(ids[1])
    s.star(ids[3])
    s.set_note(ids[3], "closest to the witness account " * 10)
    return s


def test_export_burns_the_mark_in_and_writes_a_contact_sheet(model, tmp_path: Path):
    from core.images import tensor_to_pil
    from core.workbench.export import MARK, NOTICE

    s = _shortlisted_session(model)
    out = s.export_shortlist(tmp_path / "leads")
    man = json.loads((out / "manifest.json").read_text())
    assert man["mark"] == MARK and man["unmarked_copies"]["requested"] is False
    for e in man["leads"]:
        cand = s.candidates[e["recipe"]["id"]]
        raw = tensor_to_pil(cand.image).convert("RGB")
        lay = e["marked"]
        assert lay["raw_size"] == list(raw.size) and "unmarked_copy" not in e
        k, band = lay["scale"], lay["band_height"]
        with Image.open(out / e["file"]) as im:
            assert im.text["Description"] == NOTICE and im.text["varsr:mark"] == MARK
            marked = im.convert("RGB")
        # larger than the raw candidate by the two mark bands (after a whole-number enlargement)
        assert marked.size == (raw.width * k, raw.height * k + 2 * band) and band > 8
        assert marked.width >= 256
        # the candidate's own pixels are untouched: crop the image box, undo the enlargement
        inner = marked.crop(tuple(lay["image_box"])).resize(raw.size, Image.Resampling.NEAREST)
        assert inner.tobytes() == raw.tobytes()
        # the bands are not the candidate: their rows differ from the candidate's first and last rows
        top = marked.crop((0, 0, marked.width, band))
        first = marked.crop((0, band, marked.width, band + 1))
        assert top.crop((0, 0, marked.width, 1)).tobytes() != first.tobytes()
        assert len(top.getcolors(maxcolors=1 << 16) or []) > 2  # text drawn on the band, not a plain fill
    assert not list(out.glob("*UNMARKED*"))
    sheet = out / "contact_sheet.png"
    assert man["contact_sheet"] == "contact_sheet.png" and sheet.is_file()
    with Image.open(sheet) as im:
        assert im.text["Description"] == NOTICE and im.text["varsr:mark"] == MARK
        assert json.loads(im.text["varsr:leads"]) == [e.candidate_id for e in s.shortlist]
        assert im.width > 300 and im.height > 200


def test_unmarked_copies_only_on_request_and_recorded(model, tmp_path: Path):
    import datetime as dt

    from core.images import tensor_to_pil

    s = _shortlisted_session(model)
    out = s.export_shortlist(tmp_path / "leads", unmarked_copies=True)
    man = json.loads((out / "manifest.json").read_text())
    assert man["unmarked_copies"]["requested"] is True and man["unmarked_copies"]["requested_by"] == "examiner"
    assert len(list(out.glob("*UNMARKED*"))) == len(man["leads"]) == 2
    for e in man["leads"]:
        req = e["unmarked_copy_request"]
        assert req["requested_by"] == "examiner"
        assert dt.datetime.fromisoformat(req["requested_utc"]).utcoffset() == dt.timedelta(0)
        raw = tensor_to_pil(s.candidates[e["recipe"]["id"]].image)
        with Image.open(out / e["unmarked_copy"]) as im:
            assert im.size == raw.size and im.tobytes() == raw.tobytes()
            assert im.text["Description"] == core.LEAD_NOTICE
            assert im.text["varsr:unmarked_copy_requested_utc"] == req["requested_utc"]
        assert e["file"] != e["unmarked_copy"]
