"""Evidence from video in a case (#16): a frame as evidence, a tracked plate row combined across frames,
recorded as a ``video-plate`` recipe that regenerates bit-identically from the case's copy of the clip."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from PIL import Image

pytest.importorskip("av")

from core import case as K  # noqa: E402
from core.case.regenerate import verify_case  # noqa: E402
from core.cli.sample import main as sample_main  # noqa: E402
from core.errors import CaseError, RecipeError  # noqa: E402
from core.search.plates import load_plate_classifier  # noqa: E402
from core.video import open_clip  # noqa: E402
from core.video.frames import FrameEvidence, frame_evidence, is_video, region_box  # noqa: E402
from core.video.plate_frames import (  # noqa: E402
    classifier_id,
    clip_record,
    plans_from_track,
    read_plate_frames,
    recorded_reading,
    replay,
)
from core.video.synthetic import moving_square, square_position, write_clip  # noqa: E402
from core.video.track import track_region  # noqa: E402
from core.workbench import session as S  # noqa: E402
from core.workbench.cell_geometry import CellGeometry  # noqa: E402
from core.workbench.evidence import crop_region, region_from_dict  # noqa: E402
from core.workbench.preprocess import prepare_lr  # noqa: E402
from core.workbench.recipes import VideoPlateRecipe, parse_recipe  # noqa: E402

SIZE, BOX = (96, 64), 24


@pytest.fixture
def clip_path(tmp_path: Path) -> Path:
    (tmp_path / "incoming").mkdir(exist_ok=True)
    return write_clip(tmp_path / "incoming" / "street.mp4", moving_square(12, SIZE, BOX), fps=25, gop=4)


def _combine(session: S.Session, path: Path, anchor: int = 5, dropped: int = 3,
             geometry: CellGeometry | None = None):
    with open_clip(path) as clip:
        sha = clip.sha256()
        clip.index()
        ev = frame_evidence(path, sha, clip.info.record(), clip.frame(anchor))
        session.set_evidence(ev)
        session.set_domain("plate")
        session.set_cells(2)
        if geometry is not None:  # dragged edges, Light on dark
            session.set_cell_geometry(geometry)
        x, y = square_position(anchor, SIZE, BOX)  # a slightly tilted plate: four corners
        session.set_region(S.Region("quad", quad=((x, y + 1.0), (x + BOX, y), (x + BOX, y + BOX - 1.0),
                                                  (x, y + BOX))))
        box = region_box(session.region, ev.image.size)
        records = {}

        def get(i: int):
            f = clip.frame(i)
            records[i] = f.record()
            return f.image

        track = track_region(get, {anchor: box}, range(anchor - 3, anchor + 3))
        track.drop(dropped)
        model = session.model("plate-char")
        plans = plans_from_track(track, records, (box, session.region))  # the quad moved with the track
        out = read_plate_frames(model, load_plate_classifier(), clip.frame, plans,
                                cells=session.cell_geometry(), n=4, seed=3, temperature=1.0,
                                quality="confidence", clip=clip_record(path, sha, clip.info.record()), track=track,
                                classifier_info=classifier_id())
    return ev, track, out


def test_frame_evidence_names_clip_frame_and_pixels(clip_path: Path) -> None:
    assert is_video(clip_path) and not is_video("a.png")
    with open_clip(clip_path) as clip:
        f = clip.frame(4)
        ev = frame_evidence(clip_path, clip.sha256(), clip.info.record(), f)
    assert isinstance(ev, FrameEvidence) and ev.label == "street.mp4 frame 4" and ev.frame_index == 4
    v = ev.to_dict()["load"]["video"]
    assert v["clip_sha256"] == ev.clip_sha256 and v["frame"]["sha256"] == f.sha256 and v["frame"]["index"] == 4
    assert ev.image.size == SIZE and any("never re-encoded" in n for n in ev.notes)


def test_tracked_plate_is_recorded_and_regenerates_from_the_case(models_root: Path, clip_path: Path, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    session = S.Session(models_root)
    case = K.Case.create(tmp_path / "cases" / "VIDEO-1", session, "Examiner V")
    ev, track, out = _combine(session, clip_path)
    cset = session.add_set("street.mp4 frames 2-7 combined", [out.candidate])
    cid = cset.candidate_ids[0]
    session.star(cid)
    case.save()

    r = out.candidate.recipe
    spec = parse_recipe(r)
    assert isinstance(spec, VideoPlateRecipe) and spec.to_json() == r
    assert [f["index"] for f in r["frames"]] == [2, 4, 5, 6, 7]  # frame 3 dropped
    f6 = next(f for f in r["frames"] if f["index"] == 6)
    assert f6["region"]["kind"] == "quad" and f6["region"]["quad"][0][0] == pytest.approx(f6["box"][0])
    assert all(len(f["sha256"]) == 64 and 0 <= f["weight"] <= 1 and "time" in f for f in r["frames"])
    assert max(f["weight"] for f in r["frames"]) == 1.0
    assert {p["frame"]: p["dropped"] for p in r["track"]["points"]}[3] is True
    assert r["clip"]["sha256"] == ev.clip_sha256 and r["combine"]["quality"] == "confidence"
    assert out.candidate.image.shape[1] == 5 * 16 and out.candidate.image.shape[2] == 2 * 8  # a row per frame
    assert out.reading.probs.shape[0] == 2 and len(r["result"]["reading"]) == 2

    manifest = json.loads((case.folder / K.MANIFEST).read_text())
    roles = {o["sha256"]: o for o in manifest["originals"]}
    assert ev.clip_sha256 in roles and roles[ev.clip_sha256]["name"] == "street.mp4"  # the clip, byte for byte
    assert ev.sha256 in roles  # the frame used as evidence (lossless PNG of the decoded pixels)
    rec = manifest["candidates"][cid]["recipe"]
    assert rec["clip"]["path"] == "street.mp4" and rec["source"]["evidence"]["path"] == "street.mp4"

    assert [x.status for x in verify_case(case, [cid])] == ["identical"]
    from core.case.report import build_report

    html = build_report(case).html()
    assert "street.mp4</b>" in html and "(a video clip, not pictured: a frame used as the evidence" in html
    clip_path.unlink()  # only the case's copy is left
    opened = K.open_case(case.folder, models_root=models_root)
    again = recorded_reading(opened.session.candidates[cid].recipe)  # what the plate search reads after reopening
    assert again is not None and (again.probs == out.reading.probs).all() and again.classes == out.reading.classes
    results = verify_case(opened, [cid])
    assert results[0].identical, results[0].line()
    assert sample_main(["--case", str(case.folder), "--verify", "--models", str(models_root)]) == 0

    from core.cli.search import main as search_main  # varsr-search plates query --case: the recorded reading

    reg = tmp_path / "registry.csv"
    best = r["result"]["reading"]
    reg.write_text(f"plate,owner\n{best},a\n{best[::-1]}9,b\n", encoding="utf-8")
    capsys.readouterr()
    assert search_main(["plates", "query", str(reg), "--case", str(case.folder), "--top", "3", "--record"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["strings"][0]["text"] == best and res["input"]["video"]["frames"] == [2, 4, 5, 6, 7]
    assert res["registry"]["exact"][0]["plate"] == best and res["classifier"]["sha256"] == r["classifier"]["sha256"]
    assert K.open_case(case.folder).searches[0]["query"]["candidates"]["rows"] == [cid]


def test_replay_refuses_a_changed_result_or_frame(models_root: Path, clip_path: Path) -> None:
    session = S.Session(models_root)
    _, _, out = _combine(session, clip_path)
    model = session.model("plate-char")
    spec = parse_recipe(out.candidate.recipe)
    assert isinstance(spec, VideoPlateRecipe)
    same = replay(model, spec, lambda sha: Path("/nonexistent"))
    assert (same.image == out.candidate.image).all()
    bad = dataclasses.replace(spec, result={**spec.result, "probs_sha256": "0" * 64})
    with pytest.raises(CaseError, match="combined reading differs"):
        replay(model, bad, lambda sha: Path("/nonexistent"))
    # the recipe says how its frames were read (as stills: candidates + bicubic); one made before replays as
    # it was made (plain mean softmax), so it differs from the current reading
    assert spec.combine["reading"] == "varsr+bicubic" and spec.combine["position_temperature"] > 0
    older = dataclasses.replace(spec, combine={k: v for k, v in spec.combine.items() if k != "reading"})
    with pytest.raises(CaseError, match="combined reading differs"):
        replay(model, older, lambda sha: Path("/nonexistent"))
    frames = [dict(f) for f in spec.frames]
    frames[1]["sha256"] = "f" * 64
    with pytest.raises(CaseError, match="decodes to other pixels"):
        replay(model, dataclasses.replace(spec, frames=frames), lambda sha: Path("/nonexistent"))
    broken = {**out.candidate.recipe, "frames": [{"index": 1}]}
    with pytest.raises(RecipeError):
        parse_recipe(broken)


def test_uneven_inverted_cells_are_cut_as_in_a_still_and_regenerate(models_root: Path, clip_path: Path,
                                                                    tmp_path: Path) -> None:
    """A frame's row is cut at the analyst's edges, outer ones included, and inverted (light on dark), as
    a still row is; the recipe records the geometry and the case regenerates it bit-identically."""
    session = S.Session(models_root)
    case = K.Case.create(tmp_path / "cases" / "VIDEO-3", session, "Examiner V")
    g = CellGeometry((0.08, 0.37, 0.93), inverted=True)
    _, _, out = _combine(session, clip_path, geometry=g)
    r = out.candidate.recipe
    assert r["source"]["cells"] == {"n": 2, "bounds": [0.37], "edges": [0.08, 0.37, 0.93], "inverted": True}
    model = session.model("plate-char")
    f0 = r["frames"][0]
    with open_clip(clip_path) as clip:
        crop = crop_region(Image.fromarray(clip.frame(f0["index"]).image, "RGB"), region_from_dict(f0["region"]))
    want = [prepare_lr(c, model.config)[0] for c in g.cut(crop)]
    rows = out.candidate.lr.shape[1] // len(r["frames"])
    assert (out.candidate.lr[:, :rows] == torch.cat(want, dim=2)).all()  # the first frame's row, as cut
    plain = [prepare_lr(c, model.config)[0] for c in CellGeometry.equal(2).cut(crop)]
    assert not (out.candidate.lr[:, :rows] == torch.cat(plain, dim=2)).all()

    spec = parse_recipe(r)
    assert isinstance(spec, VideoPlateRecipe)
    again = replay(model, spec, lambda sha: Path("/nonexistent"))
    assert (again.image == out.candidate.image).all() and again.recipe == r
    cid = session.add_set("street.mp4 uneven cells", [out.candidate]).candidate_ids[0]
    session.star(cid)
    case.save()
    clip_path.unlink()
    opened = K.open_case(case.folder, models_root=models_root)
    results = verify_case(opened, [cid])
    assert results[0].identical, results[0].line()


def test_face_candidates_of_every_frame_regenerate_from_the_case(models_root: Path, clip_path: Path,
                                                                 tmp_path: Path) -> None:
    from core.video.face_frames import moved, read_face_frames

    session = S.Session(models_root)
    case = K.Case.create(tmp_path / "cases" / "VIDEO-2", session, "Examiner V")
    anchor = 6
    with open_clip(clip_path) as clip:
        sha = clip.sha256()
        clip.index()
        ev = frame_evidence(clip_path, sha, clip.info.record(), clip.frame(anchor))
        session.set_evidence(ev)
        x, y = square_position(anchor, SIZE, BOX)
        region = S.Region("eyes", eyes=((x + 7.0, y + 9.0), (x + 17.0, y + 9.0)))
        session.set_region(region)
        box = region_box(region, ev.image.size)
        records = {}

        def get(i: int):
            f = clip.frame(i)
            records[i] = f.record()
            return f.image

        track = track_region(get, {anchor: box}, range(anchor - 2, anchor + 2))
        track.drop(anchor - 1)
        model = session.model("face-8")
        per_frame = read_face_frames(model, clip.frame, plans_from_track(track, records), (anchor, box), region,
                                     n=4, seed=5, temperature=0.9, clip=clip_record(clip_path, sha,
                                                                                   clip.info.record()), track=track)
    assert [i for i, _ in per_frame] == [4, 6, 7]
    ids = []
    for i, cands in per_frame:
        ids += session.add_set(f"street.mp4 frame {i}", cands).candidate_ids
    r = session.candidates[ids[4]].recipe
    assert r["kind"] == "video-face" and r["frame"]["index"] == 6 and r["frame"]["sha256"] == records[6]["sha256"]
    assert r["source"]["region"] == region.to_dict() and r["seed"] == 5 + 1000 and r["index"] == 0
    shift = track.points[7].box.x - track.points[6].box.x
    assert session.candidates[ids[8]].recipe["source"]["region"] == moved(region, shift,
                                                                          track.points[7].box.y - box.y).to_dict()
    from tests.helpers.cases import generate

    plain = generate(session, session.model("face-8"), 4, seed=1).candidate_ids  # Generate on the frame itself
    assert session.candidates[plain[0]].recipe["source"]["evidence"]["load"]["video"]["frame"]["index"] == 6
    ids += plain
    base = session.candidates[ids[9]]
    base_model = session.model("face-8")
    slid = session.add_set("sliders", [S.derive_with_sliders(base_model, base, {"mean/Male": 1.0})]).candidate_ids
    for cid in [ids[0], ids[5], ids[11], plain[2], *slid]:
        session.star(cid)
    case.save()
    clip_path.unlink()
    opened = K.open_case(case.folder, models_root=models_root)
    results = verify_case(opened, list(opened.session.candidates))
    assert all(x.identical for x in results), [(x.candidate, x.line()) for x in results if not x.identical]
    assert {x.kind for x in results} == {"video-face", "sliders", "sample"}
