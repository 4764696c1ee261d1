"""Imports point down only: the package's import graph has no cycle, and the import-linter contracts hold.

The graph is read from the source with :mod:`ast`, every ``import`` statement included — those inside
functions too, which is where cycles used to hide (``data`` → ``cli``, ``stream`` ↔ ``batch``). Imports
under ``if TYPE_CHECKING:`` never run and are left out, as ``lint-imports`` leaves them out. Importing
``aiornot.a.b`` counts as an edge to ``aiornot.a.b`` only: the parent packages Python runs first are
not dependencies of the importing module.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "aiornot"


def module_files(package: Path = PACKAGE) -> dict[str, Path]:
    """Dotted module name → file, for every module of the package (a package is its ``__init__``)."""
    modules = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imported_names(source: str, module: str, *, is_package: bool = False) -> set[str]:
    """Every dotted name ``source`` imports, at any depth (functions, methods, try blocks), but not under TYPE_CHECKING.

    ``from a import b`` gives ``a.b`` (a module or a name in ``a``; :func:`import_graph` resolves which).
    """
    names: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the importing module's package
                package = module.split(".") if is_package else module.split(".")[:-1]
                package = package[: len(package) - node.level + 1]
                base = ".".join(package + ([node.module] if node.module else []))
            names.update(f"{base}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(source))
    return names


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Module → the package's modules it imports (each dotted name resolved to the longest module it names)."""
    modules = module_files(package)

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for module, path in modules.items():
        names = imported_names(path.read_text(encoding="utf-8"), module, is_package=path.name == "__init__.py")
        graph[module] = {target for target in map(resolve, names) if target and target != module}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a path that starts and ends at the same module, or None (depth-first, no recursion)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    for start in sorted(graph):
        if start in state:
            continue
        path, stack = [start], [iter(sorted(graph[start]))]
        state[start] = 1
        while stack:
            target = next(stack[-1], None)
            if target is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(target) == 1:
                return path[path.index(target):] + [target]
            elif target not in state and target in graph:
                state[target] = 1
                path.append(target)
                stack.append(iter(sorted(graph[target])))
    return None


def test_the_package_import_graph_has_no_cycle():
    graph = import_graph()
    assert {"aiornot.apps.cli", "aiornot.io.datasets", "aiornot.apps.service.routes"} <= set(graph)
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " → ".join(cycle)


def test_imports_inside_functions_count_and_type_checking_ones_do_not():
    source = ("from typing import TYPE_CHECKING\nimport aiornot.io.jsonl\nif TYPE_CHECKING:\n    from aiornot import detector\n"
              "def f():\n    from aiornot.io.datasets import load\n    from . import walk\n"
              "class C:\n    def m(self):\n        try:\n            import aiornot.apps.service.settings\n        except ImportError:\n"
              "            pass\n")
    assert imported_names(source, "aiornot.apps.cli") == {"typing.TYPE_CHECKING", "aiornot.io.jsonl", "aiornot.io.datasets.load",
                                                     "aiornot.apps.walk", "aiornot.apps.service.settings"}
    # Today's graph has the edges that only function-level imports make.
    graph = import_graph()
    assert "aiornot.io.datasets" in graph["aiornot.reporting.plots"] and "aiornot.io.display" in graph["aiornot.apps.service.render"]
    assert "aiornot.apps.cli" not in graph["aiornot.io.datasets"]


def test_a_cycle_is_reported_with_its_path():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set()}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"b"}}) is None


def test_the_import_linter_contracts_are_kept():
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if lint is None:
        pytest.skip("import-linter is not installed (the `test` extra pins it)")
    done = subprocess.run([lint, "--no-cache", "--no-logo"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout
