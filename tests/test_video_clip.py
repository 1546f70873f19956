"""core.video.clip: metadata, frame-accurate seeking and stepping, hashes, damaged and unusual clips."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("av")

from core.errors import VideoError  # noqa: E402
from core.video import open_clip  # noqa: E402
from core.video.synthetic import moving_square, write_clip  # noqa: E402

N = 20


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    return moving_square(N)


@pytest.fixture(scope="module")
def mp4(tmp_path_factory, frames) -> Path:
    return write_clip(tmp_path_factory.mktemp("clip") / "a.mp4", frames, fps=25, gop=8)


def _nearest(img: np.ndarray, frames: list[np.ndarray]) -> int:
    return int(np.argmin([np.abs(img.astype(int) - f.astype(int)).mean() for f in frames]))


def test_metadata_and_file_hash(mp4: Path) -> None:
    before = mp4.read_bytes()
    with open_clip(mp4) as clip:
        assert (clip.info.width, clip.info.height) == (64, 48)
        assert clip.info.fps == pytest.approx(25.0)
        assert clip.info.duration == pytest.approx(0.8, abs=0.05)
        assert len(clip) == N and clip.info.n_frames_exact
        assert clip.sha256() == hashlib.sha256(before).hexdigest()
        assert clip.info.notes == [] and not clip.info.variable_frame_rate and clip.info.rotation == 0
    assert mp4.read_bytes() == before  # read only


def test_seeking_is_frame_accurate_and_matches_stepping(mp4: Path, frames) -> None:
    with open_clip(mp4) as clip:
        stepped = [f.sha256 for f in clip.frames()]
        for i in (13, 2, 19, 0, 7, 8, 8, 9, 15, 1):
            f = clip.frame(i)
            assert f.index == i and _nearest(f.image, frames) == i
            assert f.sha256 == stepped[i]
            assert f.time == pytest.approx(i / 25, abs=1e-6)
        assert clip.frame(8).keyframe and not clip.frame(9).keyframe
        rec = clip.frame(5).record()
        assert rec["index"] == 5 and rec["sha256"] == stepped[5] and rec["pixel_format"] == "rgb24"
        assert clip.frame_at(0.41).index == 10


def test_first_frame_without_index(mp4: Path) -> None:
    with open_clip(mp4) as clip:
        first = clip.first_frame()
        assert first.index == 0 and first.pts == 0
        assert clip.frame(0).sha256 == first.sha256


@pytest.mark.parametrize("suffix,codec", [(".avi", "mpeg4"), (".mkv", None)])
def test_other_containers(tmp_path: Path, frames, suffix: str, codec: str | None) -> None:
    p = write_clip(tmp_path / f"c{suffix}", frames, codec=codec)
    with open_clip(p) as clip:
        assert len(clip) == N
        assert _nearest(clip.frame(11).image, frames) == 11


def test_variable_frame_rate_is_noted(tmp_path: Path, frames) -> None:
    p = write_clip(tmp_path / "v.mkv", frames, durations=[40] * 10 + [80] * 10)
    with open_clip(p) as clip:
        clip.index()
        assert clip.info.variable_frame_rate
        assert any("variable frame rate" in n for n in clip.info.notes)
        assert clip.frame(15).time == pytest.approx(0.8)
        assert _nearest(clip.frame(15).image, frames) == 15


def test_rotation_is_noted(tmp_path: Path, frames) -> None:
    p = write_clip(tmp_path / "r.mp4", frames, rotation=90)
    with open_clip(p) as clip:
        f = clip.first_frame()
        assert f.image.shape[:2] == (48, 64)  # kept as decoded
        assert clip.info.rotation == 90 and any("rotation" in n for n in clip.info.notes)


def test_truncated_clips(tmp_path: Path, frames) -> None:
    mp4 = write_clip(tmp_path / "a.mp4", frames)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(mp4.read_bytes()[: mp4.stat().st_size // 2])
    with pytest.raises(VideoError, match="cannot be opened"):
        open_clip(cut)
    for suffix, codec in ((".mkv", None), (".avi", "mpeg4")):
        full = write_clip(tmp_path / f"b{suffix}", frames, codec=codec)
        part = tmp_path / f"part{suffix}"
        part.write_bytes(full.read_bytes()[: full.stat().st_size * 6 // 10])
        try:
            clip = open_clip(part)
        except VideoError as e:  # an AVI cut before its index may not open at all: a clear message then
            assert suffix == ".avi" and "cannot be opened" in str(e)
            continue
        with clip:
            n = len(clip)
            assert 0 < n < N
            assert any("truncated" in x for x in clip.info.notes), clip.info.notes
            for i in range(n):  # every indexed frame decodes, or says clearly why not
                try:
                    clip.frame(i)
                except VideoError as e:
                    assert "frame" in str(e)


def test_bad_inputs(tmp_path: Path, mp4: Path) -> None:
    with pytest.raises(VideoError, match="no such file"):
        open_clip(tmp_path / "missing.mp4")
    junk = tmp_path / "junk.mp4"
    junk.write_text("not a video")
    with pytest.raises(VideoError):
        open_clip(junk)
    with open_clip(mp4) as clip, pytest.raises(VideoError, match="outside"):
        clip.frame(N)
