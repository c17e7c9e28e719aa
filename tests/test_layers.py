"""The package's import graph: no cycle at all, TYPE_CHECKING and in-function imports counted.

The layer order itself is import-linter's contract in pyproject.toml (`make lint` runs
`lint-imports`); this test catches what a layers contract does not, a cycle inside one layer.
"""

from __future__ import annotations

import sys
from pathlib import Path

import grimp

import toolkit


def cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return found


def test_the_toolkit_has_no_import_cycle() -> None:
    graph = grimp.build_graph("toolkit", exclude_type_checking_imports=False)
    assert cycles(graph) == []


def test_a_cycle_is_found_when_there_is_one() -> None:
    graph = grimp.ImportGraph()
    for module in ("pkg", "pkg.a", "pkg.b", "pkg.c"):
        graph.add_module(module)
    graph.add_import(importer="pkg.a", imported="pkg.b")
    graph.add_import(importer="pkg.b", imported="pkg.a")
    graph.add_import(importer="pkg.c", imported="pkg.a")
    assert cycles(graph) == [["pkg.a", "pkg.b"]]


def test_no_module_shadows_the_standard_library() -> None:
    """toolkit/lifecycle/hubpull.py runs as a script from its folder, which puts that folder
    first on sys.path: a module beside it named like a standard one (secrets.py, say) would be
    imported instead of the standard one."""
    package = Path(toolkit.__file__).parent
    shadowing = sorted(
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if path.stem in sys.stdlib_module_names
    )
    assert shadowing == []
