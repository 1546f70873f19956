"""Issue 16: a save never blocks the window. Originals still to be copied into a case (a clip of gigabytes)
are hashed and copied in a worker (core/case/copying.py, varsr_gui/case_copy_actions.py), streamed, atomic and
cancellable; the save that follows on the window's thread takes the worker's verified copies without
reading them again. Fast: a few-MB fake clip, a lowered threshold, small chunks."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from core import case as K
from core.case import copying, folder_copy
from core.case import recorder as R
from core.case.copying import CopyCancelled, PendingCopy, copy_verified, run_copies
from core.errors import CaseError
from core.images import sha256_file
from core.workbench import session as S

MB = 1 << 20


def _clip(path: Path, n_bytes: int = 4 * MB, seed: int = 1) -> tuple[Path, str]:
    """A fake clip: incompressible bytes (the evidence of a video frame is the clip file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = hashlib.sha256(str(seed).encode()).digest() * (n_bytes // 32)
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.is_file())


# -- the copy step (core, no Qt) -----------------------------------------------------------------------
def test_copy_is_streamed_verified_atomic_and_read_only(tmp_path: Path) -> None:
    src, sha = _clip(tmp_path / "in" / "street.mp4", 2 * MB)
    target = tmp_path / "case" / "originals" / "x.mp4"
    target.parent.mkdir(parents=True)
    chunks: list[int] = []
    copy_verified(src, target, sha, progress=chunks.append, chunk=256 * 1024)
    assert target.read_bytes() == src.read_bytes() and sha256_file(target) == sha
    assert len(chunks) == 8 and sum(chunks) == 2 * MB  # streamed in chunks, never read whole
    assert not os.access(target, os.W_OK) or os.geteuid() == 0  # the case's copy is read-only
    assert _leftovers(target.parent) == ["x.mp4"]


def test_a_changed_source_leaves_no_file(tmp_path: Path) -> None:
    src, sha = _clip(tmp_path / "in" / "street.mp4", MB)
    target = tmp_path / "originals" / "x.mp4"
    target.parent.mkdir()
    with pytest.raises(CaseError, match="no longer matches the SHA-256 recorded when it was loaded"):
        copy_verified(src, target, "0" * 64, chunk=64 * 1024)
    assert _leftovers(target.parent) == []


def test_a_cancelled_copy_leaves_no_partial_file_and_changes_nothing(tmp_path: Path) -> None:
    a, sha_a = _clip(tmp_path / "in" / "a.mp4", MB, seed=1)
    b, sha_b = _clip(tmp_path / "in" / "b.mp4", 2 * MB, seed=2)
    folder = tmp_path / "case"
    (folder / "originals").mkdir(parents=True)
    (folder / "keep.txt").write_text("as it was")
    copies = [PendingCopy(sha_a, a, "originals/a.mp4", MB), PendingCopy(sha_b, b, "originals/b.mp4", 2 * MB)]
    seen: list[tuple[int, int]] = []

    def cancelled() -> bool:  # turns true in the middle of the second copy
        return bool(seen) and seen[-1][0] >= MB + MB // 2

    with pytest.raises(CopyCancelled):
        run_copies(folder, copies, progress=lambda d, t: seen.append((d, t)), cancelled=cancelled, chunk=128 * 1024)
    assert seen[-1][1] == 3 * MB and MB < seen[-1][0] < 3 * MB
    assert _leftovers(folder) == ["keep.txt"]  # the first, finished copy was removed too; no temporary file


def test_run_copies_keeps_a_good_copy_and_reports_a_changed_source(tmp_path: Path) -> None:
    a, sha_a = _clip(tmp_path / "in" / "a.mp4", MB, seed=1)
    b, sha_b = _clip(tmp_path / "in" / "b.mp4", MB, seed=2)
    folder = tmp_path / "case"
    (folder / "originals").mkdir(parents=True)
    there = folder / "originals" / "a.mp4"
    there.write_bytes(a.read_bytes())
    before = there.stat().st_mtime_ns
    b.write_bytes(b"changed" + b.read_bytes()[7:])
    out = run_copies(folder, [PendingCopy(sha_a, a, "originals/a.mp4", MB),
                              PendingCopy(sha_b, b, "originals/b.mp4", MB)], chunk=256 * 1024)
    assert [v.sha256 for v in out.verified] == [sha_a] and there.stat().st_mtime_ns == before  # hashed, kept
    assert out.verified[0].image_size is None and out.copied_bytes == 0  # a clip is not an image
    assert sha_b in out.failed and "b.mp4 on disk no longer matches" in out.failed[sha_b][1]
    assert _leftovers(folder / "originals") == ["a.mp4"]


# -- the case: pending copies, the worker's result taken in, no second hashing --------------------------------
def _clip_work(session: S.Session, model: Any, tmp_path: Path) -> tuple[Path, str]:
    """Candidates made from a frame of a (fake) clip that is not yet in the case: (the clip, its SHA-256)."""
    frame = tmp_path / "incoming" / "frame.png"
    frame.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (48, 40), (120, 100, 90)).save(frame)
    session.open_file(frame)
    session.set_region(S.Region.from_box(8, 6, 40, 34))
    clip, sha = _clip(tmp_path / "incoming" / "street.mp4")
    lrs, _notes = session.prepare(model.config)
    source = {**session.source(), "evidence": {"sha256": sha, "path": str(clip), "source": "video"}}
    cands = S.generate_candidates(model, lrs[0], 4, 0, 1.0, source=source)
    session.add_set("frames of the clip", cands)
    session.star(cands[0].id)
    return clip, sha


@pytest.fixture
def clip_case(tiny_face_model, tmp_path: Path):
    """A case whose candidates were made from a frame of a clip not yet in the case: (case, clip, sha)."""
    session = S.Session(tmp_path / "models")
    case = K.Case.create(tmp_path / "cases" / "CASE-16", session, "Examiner C")
    clip, sha = _clip_work(session, tiny_face_model, tmp_path)
    return case, clip, sha


def test_save_takes_the_workers_copy_without_hashing_it_again(clip_case, monkeypatch) -> None:
    case, clip, sha = clip_case
    pending = case.pending_copies()
    assert [(p.sha256, p.source, p.size) for p in pending] == [(sha, clip, 4 * MB)]
    assert pending[0].target.startswith(K.ORIGINALS + "/") and pending[0].target.endswith(".mp4")
    case.take_copies(run_copies(case.folder, pending))
    assert case.pending_copies() == []  # verified: nothing left to copy
    hashed: list[Path] = []
    real = R.sha256_file
    monkeypatch.setattr(R, "sha256_file", lambda p: hashed.append(Path(p)) or real(p))
    case.save()
    assert not any(p.suffix == ".mp4" for p in hashed)  # the save read neither the clip nor its copy
    monkeypatch.undo()
    assert case.originals[sha].file == pending[0].target and case.originals[sha].size_bytes == 4 * MB
    assert case.check_originals() == []
    data = K.read_case(case.folder)
    assert sha in data.originals and data.check.ok
    assert sha256_file(case.folder / data.originals[sha].file) == sha


def test_a_copy_changed_after_the_worker_is_hashed_again(clip_case) -> None:
    case, _clip_path, sha = clip_case
    pending = case.pending_copies()
    case.take_copies(run_copies(case.folder, pending))
    copy = case.folder / pending[0].target
    os.chmod(copy, 0o644)
    copy.write_bytes(b"x" + copy.read_bytes()[1:])  # same size, another mtime: the verification no longer holds
    case.save()  # the save hashes it, finds it wrong and copies the clip again
    assert sha256_file(copy) == sha and case.check_originals() == []


def test_a_source_the_worker_found_changed_is_warned_about_as_before(clip_case) -> None:
    case, clip, sha = clip_case
    pending = case.pending_copies()
    clip.write_bytes(b"edited" + clip.read_bytes()[6:])
    case.take_copies(run_copies(case.folder, pending))
    assert case.pending_copies() == []  # not offered to the worker again while the file stays as it is
    case.save()
    assert sha not in case.originals
    assert any("street.mp4 on disk no longer matches" in w for w in case.warnings)
    assert case.log.entries()[-2]["action"] == "warning"


# -- the app: the save goes through the worker, the window keeps running ---------------------------------
class Shell:
    """The window as the case actions see it (varsr_gui.case_actions.Shell), recording what it is told."""

    def __init__(self, widget: Any) -> None:
        self.widget = widget
        self.messages: list[str] = []
        self.errors: list[tuple[str, str]] = []
        self.answer = "save"

    def status(self, text: str, ms: int = 0) -> None:
        self.messages.append(text)

    def show_message(self, text: str, error: bool = True) -> None:
        self.messages.append(text)

    def show_error_dialog(self, title: str, text: str, detail: str = "") -> None:
        self.errors.append((title, text))

    def confirm(self, title: str, text: str, detail: str = "") -> bool:
        return True

    def ask_path(self, title: str, start: str, name_filter: str | None = None) -> str:
        return ""

    def ask_text(self, title: str, label: str, text: str = "") -> str | None:
        return None

    def ask_save(self, text: str) -> str:
        return self.answer

    def dialog_parent(self) -> Any:
        return self.widget

    def submit(self, what: str, work: Any, done: Any) -> None:
        raise AssertionError("the case's copies run in the case actions' own worker")

    def refresh(self) -> None:
        pass

    def reset_view(self) -> None:
        pass


@pytest.fixture
def slow_copies(monkeypatch) -> None:
    """A 1 MB threshold, small chunks and a slowed hash: the copy of a 4 MB clip takes a while."""
    from varsr_gui import case_copy_actions as CC

    monkeypatch.setattr(CC, "BACKGROUND_COPY_BYTES", MB)
    monkeypatch.setattr(copying, "CHUNK", 128 * 1024)

    class SlowHash:
        def __init__(self) -> None:
            self.h = hashlib.sha256()

        def update(self, b: bytes) -> None:
            time.sleep(0.004)
            self.h.update(b)

        def hexdigest(self) -> str:
            return self.h.hexdigest()

    class SlowHashlib:
        sha256 = SlowHash

    monkeypatch.setattr(copying, "hashlib", SlowHashlib)


@pytest.fixture
def actions(qtbot, clip_case, tmp_path: Path, slow_copies):
    """CaseActions over the clip case, seeing the window only as a :class:`Shell`."""
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QWidget

    from varsr_gui import case_actions as CA
    from varsr_gui.qt_images import CandidateImages

    case, clip, sha = clip_case
    widget = QWidget()
    qtbot.addWidget(widget)
    shell = Shell(widget)
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    a = CA.CaseActions(case.session, CandidateImages(), settings, shell)
    a._bind(case)
    yield a, shell, case, clip, sha
    a.timer.stop()
    a.copier.shutdown()
    a.recovery.shutdown()


def _ticking(qtbot) -> tuple[Any, list[int]]:
    from PySide6.QtCore import QTimer

    ticks = [0]
    timer = QTimer()
    timer.setInterval(5)
    timer.timeout.connect(lambda: ticks.__setitem__(0, ticks[0] + 1))
    timer.start()
    return timer, ticks


def test_a_large_original_is_copied_in_the_worker_while_the_window_runs(actions, qtbot) -> None:
    a, shell, case, clip, sha = actions
    timer, ticks = _ticking(qtbot)
    during: list[int] = []
    a.copier.busy_changed.connect(lambda busy: during.append(ticks[0]))
    assert a.save_case() is False  # not saved yet: the copy runs in the worker
    assert a.copying is not None and a.copying.dialog.isVisible()
    assert not (case.folder / K.MANIFEST).read_text(encoding="utf-8").count(sha)
    qtbot.waitUntil(lambda: a.copying is None, timeout=30000)
    timer.stop()
    assert len(during) == 2 and during[1] - during[0] >= 3  # the event loop kept running while it copied
    assert not shell.errors
    assert not case.has_unsaved_changes() and any("Saved case CASE-16" in m for m in shell.messages)
    data = K.read_case(case.folder)  # complete on disk, and it verifies
    assert sha in data.originals and data.check.ok and not data.warnings
    assert sha256_file(case.folder / data.originals[sha].file) == sha
    assert case.check_originals() == []
    assert a.save_case() is True  # nothing left to copy: saved at once


def test_cancel_says_not_saved_and_changes_nothing(actions, qtbot) -> None:
    from PySide6.QtWidgets import QPushButton

    a, shell, case, _clip_path, sha = actions
    manifest = (case.folder / K.MANIFEST).read_bytes()
    audit = (case.folder / K.AUDIT).read_bytes()
    before = _leftovers(case.folder)
    assert a.save_case() is False
    qtbot.waitUntil(lambda: a.copying is not None and a.copying.dialog.value() > 0, timeout=30000)
    a.copying.dialog.findChild(QPushButton).click()  # the progress window's Cancel
    qtbot.waitUntil(lambda: a.copying is None, timeout=30000)
    assert (case.folder / K.MANIFEST).read_bytes() == manifest and (case.folder / K.AUDIT).read_bytes() == audit
    assert _leftovers(case.folder) == before  # no partial copy, no temporary file
    assert sha not in case.originals and case.has_unsaved_changes() and not shell.errors
    assert "was not saved" in shell.messages[-1] and "Nothing was changed" in shell.messages[-1]


def test_closing_the_case_mid_copy_stops_it_and_leaves_no_copy(actions, qtbot) -> None:
    a, shell, case, _clip_path, sha = actions
    before = _leftovers(case.folder / K.ORIGINALS)
    assert a.save_case() is False and a.copying is not None
    qtbot.waitUntil(lambda: a.copying is not None and a.copying.dialog.value() > 0, timeout=30000)
    shell.answer = "discard"  # close without saving: the copy stops, its work is undone
    assert a.close_case() is True and a.case is None and a.copying is None
    qtbot.wait(50)  # the worker's late signals change nothing
    assert _leftovers(case.folder / K.ORIGINALS) == before  # the unsaved work went to the recovery file only
    assert (case.folder / K.AUTOSAVE).is_file()
    assert sha not in case.originals and not shell.errors


def test_large_originals_are_checked_in_the_worker(actions, qtbot) -> None:
    a, shell, case, _clip_path, sha = actions
    assert a.save_case() is False
    qtbot.waitUntil(lambda: a.copying is None and a.check_task is None, timeout=30000)  # saved, then checked
    assert not shell.errors
    copy = case.folder / case.originals[sha].file
    os.chmod(copy, 0o644)
    copy.write_bytes(b"x" + copy.read_bytes()[1:])
    assert a.check_originals(quiet=False) == [] and a.check_task is not None  # the findings come later
    qtbot.waitUntil(lambda: a.check_task is None, timeout=30000)
    assert shell.errors and shell.errors[-1][0] == "An original no longer matches its hash"
    assert "street.mp4" in shell.errors[-1][1] and case.log.entries()[-1]["action"] == "original_mismatch"


def test_close_and_save_as_go_on_after_the_copy(actions, qtbot, tmp_path: Path) -> None:
    a, shell, case, _clip_path, sha = actions
    out = tmp_path / "cases" / "CASE-16-copy"
    assert a.save_case_as(out) is None  # the copy first, then saved, then copied to the new folder
    qtbot.waitUntil(lambda: a.case is not None and a.case.folder == out, timeout=30000)
    assert sha in a.case.originals and a.case.check_originals() == []
    assert a.case.log.entries()[-2]["action"] == "case_saved_as"
    a.case.record("note", text="one more step")
    assert a.close_case() is True  # nothing large left: saved and closed at once
    assert a.case is None


def test_a_failed_copy_uses_the_error_message(actions, qtbot, monkeypatch) -> None:
    a, shell, case, _clip_path, sha = actions
    before = _leftovers(case.folder)
    real = copying.atomic_write

    def full_disk(target: Path, write: Any) -> None:
        def part(p: Path) -> None:
            write(p)
            raise OSError(28, "No space left on device")

        real(target, part)

    monkeypatch.setattr(copying, "atomic_write", full_disk)
    assert a.save_case() is False
    qtbot.waitUntil(lambda: a.copying is None, timeout=30000)
    assert shell.errors and shell.errors[-1][0] == "The case was not saved"
    assert "could not be copied into the case" in shell.errors[-1][1] and "No space" in shell.errors[-1][1]
    assert _leftovers(case.folder) == before and sha not in case.originals and case.has_unsaved_changes()


def test_quitting_with_save_copies_first_then_closes_the_window(qtbot, models_root: Path, tmp_path: Path,
                                                                 slow_copies, monkeypatch) -> None:
    from PySide6.QtCore import QSettings

    import core
    from varsr_gui.main_window import MainWindow

    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    w = MainWindow(models_root=models_root, settings=settings)
    qtbot.addWidget(w)
    w.show()
    try:
        case = w.case_actions.new_case(tmp_path / "cases" / "CASE-Q", "Examiner Q")
        _clip_path, sha = _clip_work(w.session, core.load_model(models_root / "face-8"), tmp_path)
        monkeypatch.setattr(w, "ask_unsaved", lambda: "save")
        assert w.close() is False and w.isVisible()  # not yet: the clip is copied in the worker first
        assert w.case_actions.copying is not None
        qtbot.waitUntil(lambda: not w.isVisible(), timeout=30000)  # saved, then the window closed itself
        data = K.read_case(case.folder)
        assert sha in data.originals and data.check.ok and not data.warnings
        assert data.manifest["audit"]["entries"] == len(data.lines)
    finally:
        w.confirm_quit = False
        w.runner.shutdown()


# -- save as: the case folder copied in the worker (core/case/folder_copy.py) -----------------------------------
def _tree(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file of a folder: its bytes and mode, by relative path."""
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mode) for p in folder.rglob("*") if p.is_file()}


def _saved_clip_case(clip_case) -> K.Case:
    """The clip case saved with its clip in (the copy made here, on this thread)."""
    case = clip_case[0]
    case.take_copies(run_copies(case.folder, case.pending_copies()))
    case.save()
    return case


def test_a_case_folder_is_copied_in_chunks_and_the_copy_opens(clip_case, tmp_path: Path) -> None:
    case = _saved_clip_case(clip_case)
    before = _tree(case.folder)
    out = tmp_path / "elsewhere" / "deeper" / "CASE-16-copy"
    seen: list[tuple[int, int]] = []
    n = folder_copy.copy_case_folder(case.folder, out, progress=lambda d, t: seen.append((d, t)), chunk=256 * 1024)
    total = sum(len(b) for b, _mode in before.values())
    assert n == total and seen[-1] == (total, total) and len(seen) > 16  # streamed: the 4 MB clip in 16 chunks
    assert [d for d, _t in seen] == sorted(d for d, _t in seen)
    assert _tree(out) == before and _tree(case.folder) == before  # byte for byte, read-only copies kept so
    assert sorted(p.name for p in out.parent.iterdir()) == ["CASE-16-copy"]  # no temporary folder left
    data = K.read_case(out)
    assert data.check.ok and clip_case[2] in data.originals and not data.warnings


def test_a_cancelled_folder_copy_leaves_nothing_at_the_target(clip_case, tmp_path: Path) -> None:
    case = _saved_clip_case(clip_case)
    before = _tree(case.folder)
    out = tmp_path / "new" / "CASE-16-copy"
    seen: list[int] = []
    with pytest.raises(CopyCancelled):
        folder_copy.copy_case_folder(case.folder, out, progress=lambda d, t: seen.append(d),
                                     cancelled=lambda: bool(seen) and seen[-1] >= 2 * MB, chunk=128 * 1024)
    assert not out.exists() and not (tmp_path / "new").exists()  # nor the parent folder it made
    empty = tmp_path / "empty"
    empty.mkdir()
    seen.clear()
    with pytest.raises(CopyCancelled):
        folder_copy.copy_case_folder(case.folder, empty, progress=lambda d, t: seen.append(d),
                                     cancelled=lambda: bool(seen), chunk=128 * 1024)
    assert list(empty.iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    assert _tree(case.folder) == before


def test_a_folder_copy_refuses_a_used_target_and_cleans_up_a_failure(clip_case, tmp_path: Path, monkeypatch) -> None:
    case = _saved_clip_case(clip_case)
    other = K.Case.create(tmp_path / "cases" / "OTHER", S.Session(tmp_path / "models"), "Examiner O")
    theirs = _tree(other.folder)
    with pytest.raises(CaseError, match="already exists and is not empty"):
        folder_copy.copy_case_folder(case.folder, other.folder)
    with pytest.raises(CaseError, match="inside the case's folder"):
        folder_copy.copy_case_folder(case.folder, case.folder / "copy")
    assert _tree(other.folder) == theirs
    real = folder_copy.copy_file
    done: list[str] = []

    def full_disk(source: Path, target: Path, *args: Any) -> None:
        if done:
            raise OSError(28, "No space left on device")
        real(source, target, *args)
        done.append(target.name)

    monkeypatch.setattr(folder_copy, "copy_file", full_disk)
    out = tmp_path / "cases" / "CASE-16-copy"
    with pytest.raises(OSError, match="No space"):
        folder_copy.copy_case_folder(case.folder, out)
    assert sorted(p.name for p in out.parent.iterdir()) == ["CASE-16", "OTHER"]  # no partial copy, no temporary


def test_a_new_case_abandoned_before_its_first_save_leaves_no_folder(tmp_path: Path) -> None:
    session = S.Session(tmp_path / "models")
    case = K.Case.start(tmp_path / "cases" / "NEW", session, "Examiner N")
    (case.folder / K.ORIGINALS).mkdir()
    case.abandon()
    assert not case.folder.exists() and (tmp_path / "cases").is_dir()
    empty = tmp_path / "chosen"
    empty.mkdir()
    case = K.Case.start(empty, session, "Examiner N")
    (empty / K.ORIGINALS).mkdir()
    case.abandon()
    assert empty.is_dir() and list(empty.iterdir()) == []  # the analyst's own folder stays, empty as it was
    saved = K.Case.create(tmp_path / "cases" / "SAVED", session, "Examiner N")
    saved.abandon()  # once saved it is a case: kept
    assert K.read_case(saved.folder).check.ok


@pytest.fixture
def slow_folder_copy(monkeypatch) -> None:
    """The save as's copy slowed (small chunks, a pause per chunk): a few MB take a while."""
    real = folder_copy.copy_file

    def slow(source: Path, target: Path, step: Any, cancelled: Any, chunk: int) -> None:
        def paused(n: int) -> None:
            time.sleep(0.004)
            step(n)

        real(source, target, paused, cancelled, chunk)

    monkeypatch.setattr(folder_copy, "copy_file", slow)


def _saved_in_worker(a: Any, qtbot) -> None:
    """Save through the worker (the clip copied in) and wait until the save and its check are done."""
    assert a.save_case() is False
    qtbot.waitUntil(lambda: a.copying is None and a.check_task is None, timeout=30000)


def test_save_as_copies_in_the_worker_and_the_case_goes_on_there(actions, qtbot, tmp_path: Path,
                                                                  slow_folder_copy) -> None:
    from varsr_gui.case_actions import SavingAs

    a, shell, case, _clip_path, sha = actions
    _saved_in_worker(a, qtbot)
    src = case.folder
    out = tmp_path / "cases" / "CASE-16-as"
    timer, ticks = _ticking(qtbot)
    assert a.save_case_as(out) is None  # returns at once: the folder is copied in the worker
    assert isinstance(a.copying, SavingAs) and a.copying.dialog.isVisible() and not out.exists()
    assert a.case is case and case.folder == src
    at_src = _tree(src)  # the source as this save as saved it
    start = ticks[0]
    case.record("note", text="taken while the copy ran")
    qtbot.waitUntil(lambda: a.copying is None, timeout=30000)
    timer.stop()
    assert ticks[0] - start >= 3 and not shell.errors  # the event loop kept running
    assert a.case is case and case.folder == out and not case.has_unsaved_changes()
    assert _tree(src) == at_src  # the old folder stays as it was saved
    data = K.read_case(out)
    assert data.check.ok and sha in data.originals and not data.warnings
    logged = [json.loads(line)["action"] for line in data.lines]
    assert logged[-3:] == ["note", "case_saved_as", "case_saved"]  # the step taken meanwhile is in the copy
    assert "note" not in [json.loads(line)["action"] for line in K.read_case(src).lines]
    assert sha256_file(out / data.originals[sha].file) == sha


def test_cancelling_save_as_leaves_no_copy_and_the_case_open(actions, qtbot, tmp_path: Path,
                                                             slow_folder_copy) -> None:
    from PySide6.QtWidgets import QPushButton

    a, shell, case, _clip_path, sha = actions
    _saved_in_worker(a, qtbot)
    src = case.folder
    out = tmp_path / "cases" / "CASE-16-as"
    assert a.save_case_as(out) is None
    at_src = _tree(src)
    qtbot.waitUntil(lambda: a.copying is not None and a.copying.dialog.value() > 0, timeout=30000)
    a.copying.dialog.findChild(QPushButton).click()  # the progress window's Cancel
    qtbot.waitUntil(lambda: a.copying is None, timeout=30000)
    assert not out.exists() and sorted(p.name for p in out.parent.iterdir()) == ["CASE-16"]  # no temporary
    assert a.case is case and case.folder == src and _tree(src) == at_src and not shell.errors
    assert "was not saved as a copy" in shell.messages[-1] and "cancelled" in shell.messages[-1]
    case.record("note", text="still bound")
    assert a.save_case() is True and K.read_case(src).check.ok  # still the open case, saved where it was


def test_closing_the_case_mid_save_as_stops_the_copy(actions, qtbot, tmp_path: Path, slow_folder_copy) -> None:
    a, shell, case, _clip_path, _sha = actions
    _saved_in_worker(a, qtbot)
    out = tmp_path / "cases" / "CASE-16-as"
    a.save_case_as(out)
    qtbot.waitUntil(lambda: a.copying is not None and a.copying.dialog.value() > 0, timeout=30000)
    assert a.close_case() is True and a.case is None and a.copying is None
    qtbot.wait(50)
    assert not out.exists() and sorted(p.name for p in out.parent.iterdir()) == ["CASE-16"] and not shell.errors


def test_save_as_refuses_a_folder_holding_a_case(actions, tmp_path: Path) -> None:
    a, shell, case, _clip_path, _sha = actions
    other = K.Case.create(tmp_path / "cases" / "OTHER", S.Session(tmp_path / "models"), "Examiner O")
    theirs = _tree(other.folder)
    log_len = len(case.log)
    assert a.save_case_as(other.folder) is None and a.copying is None  # refused at once, nothing started
    assert shell.errors[-1][0] == "The case was not saved as a copy"
    assert "already exists and is not empty" in shell.errors[-1][1]
    assert _tree(other.folder) == theirs and a.case is case and len(case.log) == log_len  # not even saved


def test_a_failed_save_as_copy_says_why_and_leaves_nothing(actions, qtbot, tmp_path: Path, monkeypatch) -> None:
    a, shell, case, _clip_path, _sha = actions
    _saved_in_worker(a, qtbot)
    src = case.folder

    def full_disk(source: Path, target: Path, *args: Any) -> None:
        target.write_bytes(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(folder_copy, "copy_file", full_disk)
    out = tmp_path / "cases" / "CASE-16-as"
    assert a.save_case_as(out) is None
    qtbot.waitUntil(lambda: a.copying is None, timeout=30000)
    assert shell.errors[-1][0] == "The case was not saved as a copy"
    assert "could not be copied" in shell.errors[-1][1] and "No space" in shell.errors[-1][1]
    assert not out.exists() and sorted(p.name for p in out.parent.iterdir()) == ["CASE-16"]
    assert a.case is case and case.folder == src


# -- opening a case with a clip: its originals hashed in the worker ------------------------------------------
def _main_thread_hashes(monkeypatch) -> list[str]:
    """The files hashed on the window's thread (every hashing path of the case code), by name."""
    import threading

    from core.case import reader as RD
    from core.workbench import evidence as EV

    names: list[str] = []

    def spy(module: Any, name: str) -> None:
        real = getattr(module, name)

        def hashed(path: Any, *args: Any, **kw: Any) -> str:
            if threading.current_thread() is threading.main_thread():
                names.append(Path(path).name)
            return real(path, *args, **kw)

        monkeypatch.setattr(module, name, hashed)

    for module, name in ((copying, "hash_file"), (R, "sha256_file"), (RD, "sha256_file"), (EV, "sha256_file")):
        spy(module, name)
    return names


def test_opening_a_case_with_a_clip_checks_it_in_the_worker(actions, qtbot, monkeypatch) -> None:
    a, shell, case, _clip_path, sha = actions
    _saved_in_worker(a, qtbot)
    copy = case.folder / case.originals[sha].file
    os.chmod(copy, 0o644)
    copy.write_bytes(b"x" + copy.read_bytes()[1:])
    assert a.close_case() is True
    hashed = _main_thread_hashes(monkeypatch)
    opened = a.open_case(case.folder)
    assert opened is not None and a.case is opened and a.check_task is not None  # shown at once
    assert not any(n.endswith(".mp4") for n in hashed)  # the clip's copy is not read on the window's thread
    assert opened.log.entries()[-1]["details"]["originals_check"] == "in the background" and not shell.errors
    qtbot.waitUntil(lambda: a.check_task is None, timeout=30000)
    assert shell.errors and shell.errors[-1][0] == "An original no longer matches its hash"
    assert "street.mp4" in shell.errors[-1][1] and opened.log.entries()[-1]["action"] == "original_mismatch"


# -- a new case adopting the work made from a clip: the clip copied in the worker ------------------------------
@pytest.fixture
def caseless(qtbot, tiny_face_model, tmp_path: Path, slow_copies):
    """CaseActions with no case open, the session holding candidates made from a frame of a clip."""
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QWidget

    from varsr_gui import case_actions as CA
    from varsr_gui.qt_images import CandidateImages

    session = S.Session(tmp_path / "models")
    clip, sha = _clip_work(session, tiny_face_model, tmp_path)
    widget = QWidget()
    qtbot.addWidget(widget)
    shell = Shell(widget)
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    a = CA.CaseActions(session, CandidateImages(), settings, shell)
    yield a, shell, session, clip, sha
    a.timer.stop()
    a.copier.shutdown()
    a.recovery.shutdown()


def test_a_new_case_adopting_a_clip_copies_it_in_the_worker(caseless, qtbot, tmp_path: Path, monkeypatch) -> None:
    a, shell, session, _clip_path, sha = caseless
    folder = tmp_path / "cases" / "CASE-N"
    hashed = _main_thread_hashes(monkeypatch)
    then: list[bool] = []
    assert a.new_case(folder, "Examiner N", then=lambda: then.append(True)) is None  # at once
    assert a.copying is not None and a.copying.fresh and a.case is None and not (folder / K.MANIFEST).exists()
    qtbot.waitUntil(lambda: a.case is not None and a.copying is None, timeout=30000)
    assert not any(n.endswith(".mp4") for n in hashed) and then == [True] and not shell.errors
    assert a.case.folder == folder and not a.case.has_unsaved_changes()
    data = K.read_case(folder)
    assert data.check.ok and sha in data.originals and not data.warnings
    assert sha256_file(folder / data.originals[sha].file) == sha
    assert [e["action"] for e in a.case.log.entries()][:2] == ["case_created", "work_adopted"]


def test_cancelling_a_new_case_leaves_no_folder_and_keeps_the_work(caseless, qtbot, tmp_path: Path) -> None:
    from PySide6.QtWidgets import QPushButton

    a, shell, session, _clip_path, _sha = caseless
    folder = tmp_path / "cases" / "CASE-N"
    n_candidates = len(session.candidates)
    assert a.new_case(folder, "Examiner N") is None
    qtbot.waitUntil(lambda: a.copying is not None and a.copying.dialog.value() > 0, timeout=30000)
    a.copying.dialog.findChild(QPushButton).click()
    qtbot.waitUntil(lambda: a.copying is None, timeout=30000)
    assert a.case is None and not folder.exists() and not shell.errors
    assert "was not created" in shell.messages[-1] and len(session.candidates) == n_candidates
    case = a.new_case(folder, "Examiner N")  # the folder is free again: the next try goes through
    assert case is None and a.copying is not None
    qtbot.waitUntil(lambda: a.case is not None and a.copying is None, timeout=30000)
    assert K.read_case(folder).check.ok
