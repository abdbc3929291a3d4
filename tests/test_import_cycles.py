"""No import cycle inside py_deid: a module's imports (at any depth of its code, TYPE_CHECKING ones included) never
lead back to it. A cycle means two modules that cannot be read, tested or moved one without the other."""

from __future__ import annotations

import ast
import textwrap

from tests.package_modules import imports, modules

# Cycles allowed for now: none (the header core and the pixels package removed the two there were). An entry
# here must name a cycle that exists, and the list only ever shrinks.
KNOWN_CYCLES: frozenset[frozenset[str]] = frozenset()


def graph(sources: dict[str, tuple[str, bool]]) -> dict[str, set[str]]:
    """Module -> the package modules it imports, from {name: (source, is_package)}."""
    known = {f"py_deid.{n}" if n else "py_deid" for n in sources}
    edges = {}
    for name, (source, is_package) in sources.items():
        found = imports(ast.parse(textwrap.dedent(source)), name, is_package, known)
        edges[name] = {m[len("py_deid."):] if m != "py_deid" else "" for m in found if m in known} - {name}
    return edges


def cycles(edges: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(frozenset(component))
    return found


def package_graph() -> dict[str, set[str]]:
    return graph({name: (path.read_text(encoding="utf-8"), path.name == "__init__.py")
                  for name, path in modules().items()})


def test_no_import_cycle_beyond_the_known_ones():
    found = set(cycles(package_graph()))
    new = sorted(sorted(c) for c in found - KNOWN_CYCLES)
    assert new == [], f"import cycles: {new}"


def test_known_cycles_are_still_there():
    """An entry of KNOWN_CYCLES that no longer exists goes from the list (it must not hide a new cycle later)."""
    found = set(cycles(package_graph()))
    assert sorted(sorted(c) for c in KNOWN_CYCLES - found) == []


def test_the_graph_sees_function_level_and_type_checking_imports():
    edges = graph({
        "a": ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .b import B\n", False),
        "b": ("def f():\n    from . import a\n", False),
        "c": ("from .d import x\n", False),
        "d": ("import os\n", False),
        "pkg": ("from .sub import thing\n", True),
        "pkg.sub": ("from . import helper, CONSTANT\n", False),
        "pkg.helper": ("", False),
    })
    assert edges["a"] == {"b"} and edges["b"] == {"a"} and edges["pkg.sub"] == {"pkg", "pkg.helper"}
    assert sorted(sorted(c) for c in cycles(edges)) == [["a", "b"], ["pkg", "pkg.sub"]]
    assert cycles({"x": {"y"}, "y": {"z"}, "z": set()}) == []
    assert cycles({"x": {"y"}, "y": {"z"}, "z": {"x"}}) == [frozenset({"x", "y", "z"})]


def test_every_module_is_in_the_graph():
    edges = package_graph()
    assert {"header", "privates", "receiver.app", "pixels.step", "hosts.services"} <= set(edges)
    assert "privates" in edges["header"] and "header" not in edges["privates"]


def test_the_shared_element_helpers_are_a_leaf():
    """elements.py is what every pass asks of an element: it leans on no pass (only on dates, itself a leaf)."""
    edges = package_graph()
    assert edges["elements"] <= {"dates"} and edges["dates"] == set()
    assert all("header" not in edges[m] for m in ("verify", "residual", "conform", "phi", "privates", "policy"))
