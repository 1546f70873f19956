"""tools/check_import_cycles.py: no import cycle among the project's modules (CI runs it too)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

TOOL = REPO / "tools" / "check_import_cycles.py"


def _tool():
    spec = importlib.util.spec_from_file_location("check_import_cycles", TOOL)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_project_has_no_import_cycle() -> None:
    out = subprocess.run([sys.executable, str(TOOL)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.startswith("no import cycles among ") and "modules" in out.stdout


def test_a_cycle_is_found_even_through_a_function_level_import(tmp_path: Path) -> None:
    pkg = tmp_path / "core"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from core.sub import b\n")  # 'from pkg import module' imports the module
    (pkg / "sub" / "b.py").write_text("def f():\n    from . import c\n")  # relative, inside a function
    (pkg / "sub" / "c.py").write_text("import core.a\nimport numpy\n")
    (pkg / "d.py").write_text("from core.sub import nothing_here\n")  # not a module: imports the package
    tool = _tool()
    graph = tool.import_graph(tmp_path, ("core",))
    assert graph["core.a"] == {"core.sub.b"} and graph["core.sub.b"] == {"core.sub.c"}
    assert graph["core.d"] == {"core.sub"} and graph["core.sub.c"] == {"core.a"}
    assert tool.cycles(graph) == [["core.a", "core.sub.b", "core.sub.c", "core.a"]]
    assert tool.main([str(tmp_path)]) == 1
