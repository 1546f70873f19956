"""Fail on any import cycle among the project's own modules (core/, varsr_gui/, tools/, benchmarks/).

Every ``import`` and ``from ... import`` counts, at the top of a module or inside a function: a
cycle that only closes at run time is still a cycle. ``from pkg import name`` imports ``pkg.name``
when that is one of the project's modules, else ``pkg``. Prints each cycle and exits 1, or prints
how many modules were checked and exits 0::

    python tools/check_import_cycles.py
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOTS = ("core", "varsr_gui", "tools", "benchmarks")
REPO = Path(__file__).resolve().parents[1]


def module_name(path: Path, repo: Path) -> str:
    """``core/case/__init__.py`` -> ``core.case``; ``core/workbench/session.py`` -> ``core.workbench.session``."""
    parts = list(path.relative_to(repo).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def find_modules(repo: Path, roots: tuple[str, ...] = ROOTS) -> dict[str, Path]:
    """Every Python module under the roots, by dotted name."""
    out: dict[str, Path] = {}
    for root in roots:
        for path in sorted((repo / root).rglob("*.py")):
            if "__pycache__" not in path.parts:
                out[module_name(path, repo)] = path
    return out


def _resolve_relative(module: str, is_package: bool, level: int, name: str | None) -> str:
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (level - 1)] if level > 1 else base
    return ".".join([*base, *([name] if name else [])])


def _own(name: str, modules: dict[str, Path]) -> str | None:
    """``name`` or its longest prefix that is one of the project's modules."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The project's modules that ``module`` imports, anywhere in its body."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if (target := _own(alias.name, modules)) is not None:
                    out.add(target)
        elif isinstance(node, ast.ImportFrom):
            base = (_resolve_relative(module, is_package, node.level, node.module) if node.level
                    else node.module or "")
            for alias in node.names:
                full = f"{base}.{alias.name}"
                target = full if full in modules else _own(base, modules)
                if target is not None:
                    out.add(target)
    out.discard(module)
    return out


def import_graph(repo: Path = REPO, roots: tuple[str, ...] = ROOTS) -> dict[str, set[str]]:
    modules = find_modules(repo, roots)
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (as a closed path of module names) per strongly connected component that has one."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = 0

    def connect(v: str) -> None:  # Tarjan, iteratively (deep graphs must not hit the recursion limit)
        nonlocal counter
        work = [(v, iter(sorted(graph[v])))]
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == node:
                        break
                if len(comp) > 1:
                    components.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return [_path_in(comp, graph) for comp in components]


def _path_in(component: list[str], graph: dict[str, set[str]]) -> list[str]:
    """A shortest closed path through the component's first module (breadth first)."""
    inside = set(component)
    start = component[0]
    prev: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph[v] & inside):
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(prev[path[-1]])
                    return [start, *reversed(path[:-1]), start] if v != start else [start, start]
                if w not in prev:
                    prev[w] = v
                    nxt.append(w)
        frontier = nxt
    return component


def main(argv: list[str] | None = None) -> int:
    repo = Path(argv[0]).resolve() if argv else REPO
    graph = import_graph(repo)
    found = cycles(graph)
    for cycle in found:
        print("import cycle: " + " -> ".join(cycle))
    if found:
        print(f"{len(found)} import cycle(s) among {len(graph)} modules", file=sys.stderr)
        return 1
    print(f"no import cycles among {len(graph)} modules")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
