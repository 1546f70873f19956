"""Faults during long sessions: disk full and read-only folders on export and save, cancelling an
export or a generation half-way, and the bounded candidate history. Nothing partial is left that
could pass for a finished export; the previous state is kept."""

from __future__ import annotations

import builtins
import contextlib
import errno
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from PIL import Image

import core
from core.fileio import atomic_write
from core.workbench import export as E
from core.workbench import session as S
from core.workbench.export import save_png
from tests.helpers.inputs import sample_image


@pytest.fixture(scope="module")
def model(tiny_face_model):
    return tiny_face_model


def _session(model, tmp_path: Path, n_leads: int = 3) -> S.Session:
    s = S.Session(models_root=tmp_path / "no-models")
    s.set_evidence(S.evidence_from_image(sample_image(32, 32)))
    cands = S.generate_candidates(model, s.prepare(model.config)[0][0], 4, seed=3, source=s.source())
    cset = s.add_set("t", cands)
    for cid in cset.candidate_ids[:n_leads]:
        s.star(cid)
    return s


class _LimitedFile:
    """A file opened for writing on a disk with ``budget[0]`` bytes left."""

    def __init__(self, f: io.IOBase, budget: list[int], err: int) -> None:
        self._f, self._budget, self._err = f, budget, err

    def write(self, data: bytes | str) -> int:
        n = len(data.encode() if isinstance(data, str) else memoryview(data).cast("B"))
        if n > self._budget[0]:
            self._budget[0] = 0
            raise OSError(self._err, os.strerror(self._err))
        self._budget[0] -= n
        return self._f.write(data)

    def fileno(self) -> int:  # so C encoders write through write() too
        raise io.UnsupportedOperation("fileno")

    def __getattr__(self, name: str):
        return getattr(self._f, name)

    def __enter__(self) -> _LimitedFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self._f.close()

    def __iter__(self):
        return iter(self._f)


@contextlib.contextmanager
def disk_with(monkeypatch: pytest.MonkeyPatch, root: Path, budget: int | None,
              err: int = errno.ENOSPC) -> Iterator[list[int]]:
    """Files written under ``root`` share ``budget`` bytes (None: unlimited, but counted); then ``err``.

    Yields ``[bytes left]``; with ``budget=None`` it counts down from a huge number so the caller
    can measure how much a full write takes.
    """
    left = [budget if budget is not None else 1 << 60]
    real_open = builtins.open
    root = root.resolve()

    def limited_open(file, mode="r", *a, **k):
        f = real_open(file, mode, *a, **k)
        if isinstance(file, (str, os.PathLike)) and any(c in mode for c in "wax+"):
            try:
                inside = Path(os.fspath(file)).resolve().is_relative_to(root)
            except (OSError, ValueError):
                inside = False
            if inside:
                return _LimitedFile(f, left, err)
        return f

    with monkeypatch.context() as m:
        m.setattr(builtins, "open", limited_open)
        m.setattr(io, "open", limited_open)
        yield left


def _tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


# -- disk full ---------------------------------------------------------------------------------------
def test_export_on_a_full_disk_leaves_nothing_that_looks_complete(model, tmp_path: Path, monkeypatch) -> None:
    s = _session(model, tmp_path)
    parent = tmp_path / "exports"
    parent.mkdir()
    with disk_with(monkeypatch, parent, None) as left:
        s.export_shortlist(parent / "measure")
    total = (1 << 60) - left[0]
    assert total > 10_000
    for frac in (0.0, 0.05, 0.3, 0.6, 0.9, 0.999):
        out = parent / f"full_{frac}"
        with disk_with(monkeypatch, parent, int(total * frac)), pytest.raises(OSError) as e:
            s.export_shortlist(out)
        assert e.value.errno == errno.ENOSPC
        assert not out.exists(), frac
    assert [p.name for p in parent.iterdir()] == ["measure"]  # no partial folder, hidden or not
    # a pre-existing empty folder stays as it was
    empty = parent / "chosen"
    empty.mkdir()
    with disk_with(monkeypatch, parent, total // 2), pytest.raises(OSError):
        s.export_shortlist(empty)
    assert empty.is_dir() and not any(empty.iterdir())
    # with room again, the same folder works
    assert s.export_shortlist(empty) == empty
    assert len(json.loads((empty / "manifest.json").read_text())["leads"]) == 3


def test_save_png_on_a_full_disk_keeps_the_previous_file(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "lead.png"
    save_png(torch.rand(3, 16, 16), target)
    before = target.read_bytes()
    with disk_with(monkeypatch, tmp_path, 100), pytest.raises(OSError) as e:
        save_png(torch.rand(3, 64, 64), target)
    assert e.value.errno == errno.ENOSPC
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["lead.png"]  # no temporary file left
    with disk_with(monkeypatch, tmp_path, 10), pytest.raises(OSError):
        atomic_write(tmp_path / "new.json", lambda p: p.write_text("{}" * 100))
    assert not (tmp_path / "new.json").exists() and [p.name for p in tmp_path.iterdir()] == ["lead.png"]


def test_contact_sheet_failure_removes_the_whole_export(model, tmp_path: Path, monkeypatch) -> None:
    s = _session(model, tmp_path)
    real = E.save_png

    def sheet_fails(img, path, extra=None):
        if Path(path).name == S.CONTACT_SHEET:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(img, path, extra)

    monkeypatch.setattr(E, "save_png", sheet_fails)
    with pytest.raises(OSError):
        s.export_shortlist(tmp_path / "x" / "leads")
    assert list((tmp_path / "x").iterdir()) == []


def test_varsr_sample_on_a_full_disk_is_one_line_and_leaves_no_candidates(model, tmp_path: Path, monkeypatch,
                                                                          capsys) -> None:
    from core.cli.sample import main

    src = tmp_path / "crop.png"
    sample_image().save(src)
    out = tmp_path / "out"
    out.mkdir()
    (out / "unrelated.txt").write_text("the analyst's own file")
    with disk_with(monkeypatch, out, 3000):
        code = main(["--model", str(model.bundle_path), "-n", "8", "--out", str(out), str(src)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith("varsr-sample: error: the disk is full")
    assert [e for e in err if "error" in e] == [err[-1]] and "Traceback" not in "\n".join(err)
    assert _tree(out) == ["unrelated.txt"]


# -- read-only folders -------------------------------------------------------------------------------
def test_export_into_a_read_only_folder(model, tmp_path: Path, monkeypatch) -> None:
    """A real chmod 0o555 folder when not root; as root (who may write anyway), a file system that
    refuses every write with EROFS. Either way: an OSError the app words, and nothing written."""
    s = _session(model, tmp_path)
    ro = tmp_path / "ro"
    ro.mkdir()
    if os.geteuid() != 0:
        ro.chmod(0o555)
        try:
            with pytest.raises(PermissionError):
                s.export_shortlist(ro / "leads")
        finally:
            ro.chmod(0o755)
    else:
        with disk_with(monkeypatch, ro, 0, errno.EROFS), pytest.raises(OSError) as e:
            s.export_shortlist(ro / "leads")
        assert e.value.errno == errno.EROFS

        def denied(*_a, **_k):
            raise PermissionError(errno.EACCES, "Permission denied")

        monkeypatch.setattr(E.tempfile, "mkdtemp", denied)
        with pytest.raises(PermissionError):
            s.export_shortlist(ro / "leads")
    assert list(ro.iterdir()) == []


def test_the_app_words_disk_full_and_read_only() -> None:
    """What the app shows for these errors (varsr_gui.main_window.export_error_text), without Qt windows."""
    pytest.importorskip("PySide6")
    from varsr_gui.main_window import export_error_text

    full, detail = export_error_text(Path("leads"), OSError(errno.ENOSPC, "No space left on device"))
    assert "disk is full" in full and "Nothing was exported" in detail
    ro, _ = export_error_text(Path("leads"), OSError(errno.EROFS, "Read-only file system"))
    assert "read-only" in ro


def test_cli_words_disk_full_and_read_only(capsys) -> None:
    from core.cli.common import run_cli

    for err, words in ((errno.ENOSPC, "the disk is full"), (errno.EROFS, "the file system is read-only"),
                       (errno.EACCES, "permission denied")):
        def fail(err=err):
            raise OSError(err, os.strerror(err), "/some/where/out.png")

        assert run_cli(fail, "varsr-x") == 2
        assert capsys.readouterr().err.strip().splitlines() == [f"varsr-x: error: {words}: /some/where/out.png"]


# -- cancelling ----------------------------------------------------------------------------------------
def test_cancelled_export_leaves_nothing(model, tmp_path: Path) -> None:
    s = _session(model, tmp_path, n_leads=4)
    done = []
    with pytest.raises(S.ExportCancelled):
        s.export_shortlist(tmp_path / "e" / "leads", progress=lambda i, n: done.append((i, n)),
                           cancelled=lambda: len(done) >= 2)
    assert done == [(1, 5), (2, 5)]
    assert list((tmp_path / "e").iterdir()) == []
    # cancelled at the very end (after every file, before the rename): still nothing
    calls = []

    def late() -> bool:
        calls.append(1)
        return len(calls) > 5  # four leads + the sheet pass, then the final check

    with pytest.raises(S.ExportCancelled):
        s.export_shortlist(tmp_path / "e" / "leads", cancelled=late)
    assert list((tmp_path / "e").iterdir()) == []
    out = s.export_shortlist(tmp_path / "e" / "leads", progress=lambda i, n: done.append((i, n)))
    assert done[-1] == (5, 5) and (out / "manifest.json").is_file()


def test_cancelled_generation_adds_nothing(model, tmp_path: Path) -> None:
    s = _session(model, tmp_path)
    before = (list(s.sets), dict(s.candidates))
    lr = s.prepare(model.config)[0][0]
    seen = []
    with pytest.raises(S.GenerationCancelled):
        S.generate_candidates(model, lr, 32, chunk=8, progress=lambda i, n: seen.append(i),
                              cancelled=lambda: len(seen) >= 2)
    assert seen == [8, 16]  # stopped half-way
    base = s.candidates[s.sets[0].candidate_ids[0]]
    with pytest.raises(S.GenerationCancelled):
        S.more_like_this(model, base, 32, progress=lambda i, n: seen.append(i), cancelled=lambda: len(seen) >= 3)
    cells = []
    with pytest.raises(S.GenerationCancelled):
        S.generate_cells(model, [lr, lr, lr], 4, 0, 1.0, progress=lambda i, n: cells.append(i),
                         cancelled=lambda: len(cells) >= 1)
    assert cells == [1]
    assert (list(s.sets), dict(s.candidates)) == before  # the session never saw a partial set


def test_varsr_sample_interrupted_leaves_no_partial_run(model, tmp_path: Path, monkeypatch, capsys) -> None:
    from core.cli import sample

    src = tmp_path / "crop.png"
    sample_image().save(src)
    out = tmp_path / "o"
    assert sample.main(["--model", str(model.bundle_path), "-n", "4", "--out", str(out), str(src)]) == 0
    real = core.workbench.export.save_png
    count = []

    def interrupted(img, path, extra=None):
        count.append(path)
        if len(count) == 3:
            raise KeyboardInterrupt
        real(img, path, extra)

    monkeypatch.setattr(core.workbench.export, "save_png", interrupted)
    assert sample.main(["--model", str(model.bundle_path), "-n", "4", "--out", str(out), str(src)]) == 130
    assert capsys.readouterr().err.strip().splitlines()[-1] == "varsr-sample: interrupted"
    assert _tree(out) == ["candidate_002.png", "candidate_003.png", "input_lr.png"]  # the earlier run's only
    assert not (out / "manifest.json").exists()  # so the folder does not pass for a finished run


# -- bounded history ---------------------------------------------------------------------------------
def test_history_is_bounded_and_starred_candidates_stay(model, tmp_path: Path) -> None:
    s = S.Session(models_root=tmp_path, max_candidates=10)
    s.set_evidence(S.evidence_from_image(sample_image()))
    lr = s.prepare(model.config)[0][0]
    dropped = []
    s.events.sets_dropped.connect(lambda sets, freed: dropped.append(([x.id for x in sets], [c.id for c in freed])))
    first = s.add_set("a", S.generate_candidates(model, lr, 4, seed=0))
    s.star(first.candidate_ids[1])
    for seed in range(1, 6):
        s.add_set(f"s{seed}", S.generate_candidates(model, lr, 4, seed=seed))
    assert sum(len(x.candidate_ids) for x in s.sets) <= 10
    assert [x.id for x in s.sets] == ["S5", "S6"] and s.dropped_sets == ["S1", "S2", "S3", "S4"]
    assert first.candidate_ids[1] in s.candidates  # starred: kept for the shortlist and export
    assert len(s.candidates) == 9 and [d[0] for d in dropped] == [["S1"], ["S2"], ["S3"], ["S4"]]
    assert first.candidate_ids[1] not in [c for _, freed in dropped for c in freed]
    out = s.export_shortlist(tmp_path / "leads")
    assert json.loads((out / "manifest.json").read_text())["leads"][0]["recipe"]["id"] == first.candidate_ids[1]
    big = s.add_set("big", S.generate_candidates(model, lr, 16, seed=9))
    assert s.sets == [big]  # the newest set always stays, even alone over the limit


def test_evidence_pixels_are_not_altered_by_loading(tmp_path: Path) -> None:
    """The evidence file is only read: bytes unchanged after open (also for rotated and animated files)."""
    p = tmp_path / "e.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6
    sample_image().save(p, exif=exif.tobytes())
    before = p.read_bytes()
    S.Session(models_root=tmp_path).open_file(p)
    assert p.read_bytes() == before
