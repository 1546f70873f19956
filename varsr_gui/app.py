"""``varsr-gui``: start VarSR Studio (``--models DIR``, optional evidence image)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

#: OpenMP threads sleep instead of spinning while they wait: on a CPU shared with other work a
#: spinning team made each small torch call in a worker thread wait milliseconds for its helper
#: (generating 256 candidates took ~8 s instead of ~0.8 s; see ``benchmarks/bench_gui.py``).
OMP_ENV = {"OMP_WAIT_POLICY": "PASSIVE"}


def prepare_environment() -> None:
    """Set the OpenMP wait policy (unless the user set one); it only counts before torch loads."""
    for key, value in OMP_ENV.items():
        os.environ.setdefault(key, value)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="varsr-gui",
        description="VarSR Studio: diverse super-resolution candidates for tiny faces, plates and digits "
        "(synthetic leads, not evidence)")
    p.add_argument("--models", type=Path, default=None,
                   help="folder of model bundles (default: resources/models)")
    p.add_argument("image", nargs="?", type=Path, help="an evidence image to open")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    prepare_environment()
    from PySide6.QtWidgets import QApplication

    from core.perf import tune_cpu
    from varsr_gui.main_window import MainWindow

    tune_cpu()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("VarSR Studio")
    app.setOrganizationName("VarSR Studio")
    win = MainWindow(models_root=args.models)
    win.show()
    if args.image:
        win.open_path(args.image)
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
