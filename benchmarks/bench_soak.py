"""Soak benchmark: an analyst's long session, 500 generate / slider / star cycles, memory and files sampled.

Each cycle generates ``--n`` candidates (16) from the evidence, steers one of them with an
attribute slider and keeps the result, stars it and unstars the one starred ten cycles before
(the shortlist stays small, as an analyst's does). The same cycles run twice:

* ``session``: through the Qt-free session model (``core.workbench.session``), as the app's workers do;
* ``widgets``: through the real main window offscreen (``QT_QPA_PLATFORM=offscreen``): the Generate
  button, the slider dock, the star action, with the real worker thread and event loop.

Every 50 cycles it prints resident memory (``VmRSS``), open file descriptors (``/proc/self/fd``)
and the candidates held, and at the end the growth from cycle 100 to the last. Uses the installed
bundle when there is one, else the architecture of its training config with random weights.
Not a test: it prints numbers (``docs/ROBUSTNESS.md`` records them).

    python -m benchmarks.bench_soak [--cycles 500] [--n 16] [--phase session|widgets|both]
                                    [--max-candidates N]   # 0: unbounded history, to see the difference
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import qt_loop

SAMPLE_EVERY = 50
UNSTAR_AFTER = 10


def rss_mib() -> float:
    """Resident memory of this process in MiB (Linux ``/proc``; else the peak from ``resource``)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def open_fds() -> int:
    """Open file descriptors of this process (-1 where ``/proc/self/fd`` does not exist)."""
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return -1


class Sampler:
    """Rows of (cycle, seconds, RSS MiB, fds, candidates held, sets held), printed as they come."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.rows: list[tuple[int, float, float, int, int, int]] = []
        self.t0 = time.perf_counter()

    def sample(self, cycle: int, candidates: int, sets: int) -> None:
        gc.collect()
        row = (cycle, time.perf_counter() - self.t0, rss_mib(), open_fds(), candidates, sets)
        self.rows.append(row)
        if len(self.rows) == 1:
            print(f"\n[{self.name}]")
            print(f"{'cycle':>6} {'time s':>8} {'RSS MiB':>9} {'fds':>5} {'candidates':>11} {'sets':>5}")
        print(f"{row[0]:>6} {row[1]:>8.1f} {row[2]:>9.1f} {row[3]:>5} {row[4]:>11} {row[5]:>5}", flush=True)

    def summary(self, start: int = 100) -> dict[str, float]:
        base = next((r for r in self.rows if r[0] >= start), self.rows[0])
        last = self.rows[-1]
        out = {"from": base[0], "to": last[0], "rss_growth_mib": last[2] - base[2], "fd_growth": last[3] - base[3],
               "rss_end_mib": last[2], "seconds": last[1]}
        print(f"[{self.name}] cycles {base[0]} -> {last[0]}: RSS {base[2]:.1f} -> {last[2]:.1f} MiB "
              f"({out['rss_growth_mib']:+.1f} MiB), fds {base[3]} -> {last[3]} ({out['fd_growth']:+d}), "
              f"{last[1]:.0f} s in all")
        return out


def soak_session(models_root: Path, model_name: str, evidence: Path, cycles: int, n: int,
                 max_candidates: int) -> dict[str, float]:
    """The cycles through :class:`core.workbench.session.Session` and the generation functions (no Qt)."""
    import core
    from core.workbench import session as S
    model = core.load_model(models_root / model_name)
    attr = sorted(model.attributes)[0] if model.attributes else None
    s = S.Session(models_root=models_root, max_candidates=max_candidates or 10**9)
    s.open_file(evidence)
    s.set_region(S.Region.from_box(64, 40, 96, 80))
    s.set_model_override(model_name)
    starred: list[str] = []
    sampler = Sampler(f"session model, {n} candidates per generate, history "
                      f"{'unbounded' if not max_candidates else f'<= {s.max_candidates} candidates'}")
    sampler.sample(0, len(s.candidates), len(s.sets))
    for cycle in range(1, cycles + 1):
        lrs, _notes = s.prepare(model.config)
        cands = S.generate_candidates(model, lrs[0], n, seed=cycle, source=s.source())
        cset = s.add_set(f"seed {cycle}", cands)
        base = s.candidates[cset.candidate_ids[cycle % len(cset.candidate_ids)]]
        if attr is not None and base.z is not None:
            kept = s.add_set("steered", [S.derive_with_sliders(model, base, {attr: 1.5 if cycle % 2 else -1.5})])
            cid = kept.candidate_ids[0]
        else:
            cid = base.id
        s.star(cid)
        starred.append(cid)
        if len(starred) > UNSTAR_AFTER:
            s.unstar(starred.pop(0))
        if cycle % SAMPLE_EVERY == 0:
            sampler.sample(cycle, len(s.candidates), len(s.sets))
    return sampler.summary()


def soak_widgets(models_root: Path, model_name: str, evidence: Path, cycles: int, n: int,
                 max_candidates: int) -> dict[str, float]:
    """The same cycles through the main window offscreen: Generate button, slider dock, star action."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from core.workbench import session as S
    from varsr_gui.main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    with tempfile.TemporaryDirectory(prefix="soak_gui_") as d:
        settings = QSettings(str(Path(d) / "settings.ini"), QSettings.Format.IniFormat)
        win = MainWindow(models_root=models_root, settings=settings)
        win.session.max_candidates = max_candidates or 10**9
        win.resize(1400, 900)
        win.show()

        def run_until(cond, timeout_s: float = 120.0) -> None:
            qt_loop.run_until(cond, timeout_s, "the window")

        win.open_path(evidence)
        win.session.set_region(S.Region.from_box(64, 40, 96, 80))
        win.session.set_model_override(model_name)
        win.input_panel.n.setValue(n)
        starred: list[str] = []
        sampler = Sampler(f"widgets offscreen ({app.platformName()}), {n} candidates per generate")
        sampler.sample(0, len(win.session.candidates), len(win.session.sets))
        for cycle in range(1, cycles + 1):
            win.input_panel.seed.setValue(cycle)
            last = win.session.sets[-1].id if win.session.sets else None
            win.input_panel.generate.click()
            run_until(lambda last=last: bool(win.session.sets) and win.session.sets[-1].id != last
                      and not win.runner.busy)
            ids = win.session.sets[-1].candidate_ids
            win.grid.select(ids[cycle % len(ids)])
            if win.slider_dock.sliders:
                key = sorted(win.slider_dock.sliders)[0]
                win.slider_dock.set_value(key, 1.5 if cycle % 2 else -1.5)
                win.slider_dock.flush()
                run_until(lambda: win.session.preview is not None and not win.runner.busy)
            win.toggle_star()  # keeps the steered preview (a set of one) and stars it
            starred.append(win.session.shortlist[-1].candidate_id)
            if len(starred) > UNSTAR_AFTER:
                win.session.unstar(starred.pop(0))
            app.processEvents()
            if cycle % SAMPLE_EVERY == 0:
                sampler.sample(cycle, len(win.session.candidates), len(win.session.sets))
        win.runner.shutdown()
        win.confirm_quit = False  # a script: no question about unsaved work
        win.close()
        win.deleteLater()
        app.processEvents()
    return sampler.summary()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="face-8", help="bundle name (default face-8)")
    p.add_argument("--cycles", type=int, default=500)
    p.add_argument("--n", type=int, default=16, help="candidates per generate (default 16)")
    p.add_argument("--phase", choices=("session", "widgets", "both"), default="both")
    p.add_argument("--max-candidates", type=int, default=None,
                   help="the session's history bound (default: the app's; 0: unbounded)")
    args = p.parse_args(argv)
    from varsr_gui.app import prepare_environment

    prepare_environment()  # before torch loads, as the app does
    from benchmarks.bench_gui import _evidence, _models_root
    from core.perf import tune_cpu
    from core.workbench import session as S

    tune_cpu()
    bound = S.MAX_CANDIDATES if args.max_candidates is None else args.max_candidates
    with tempfile.TemporaryDirectory(prefix="bench_soak_") as d:
        tmp = Path(d)
        root, weights = _models_root(args.model, tmp)
        evidence = _evidence(tmp)
        print(f"model {args.model} ({weights}); {args.cycles} cycles of generate {args.n} / slider / star; "
              f"history bound {bound or 'none'}; torch threads {__import__('torch').get_num_threads()}")
        if args.phase in ("session", "both"):
            soak_session(root, args.model, evidence, args.cycles, args.n, bound)
        if args.phase in ("widgets", "both"):
            soak_widgets(root, args.model, evidence, args.cycles, args.n, bound)
    return 0


if __name__ == "__main__":
    sys.exit(main())
