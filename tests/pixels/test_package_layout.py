"""The pixel package's shape: no import cycle among its modules, and no file reading of its own (package data
comes through py_deid.package_data, the core's one reader of files that ship inside the package)."""

from __future__ import annotations

import ast
from pathlib import Path

PIXELS = Path(__file__).resolve().parents[2] / "py_deid" / "pixels"
READ_CALLS = ("read_text", "read_bytes", "files")  # methods of pathlib / importlib.resources objects
READ_MODULES = ("importlib", "pathlib", "io", "os", "shutil", "tempfile")


def _module_imports(source: str, package: str = "py_deid.pixels") -> set[str]:
    """Modules of py_deid imported at module level (imports inside functions run late and cannot cycle)."""
    out = set()
    for node in ast.parse(source).body:
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
            mod = ".".join(base + ([node.module] if node.module else []))
            out |= {f"{mod}.{a.name}" for a in node.names} if node.module is None else {mod}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("py_deid"):
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("py_deid")}
    return out


def _graph() -> dict[str, set[str]]:
    names = {("py_deid.pixels" if p.stem == "__init__" else f"py_deid.pixels.{p.stem}"): p
             for p in PIXELS.glob("*.py")}
    def module(imported: str) -> str | None:
        # `from . import PixelError` imports the package itself (the name is not a module)
        if imported in names:
            return imported
        parent = imported.rpartition(".")[0]
        return parent if parent in names else None
    return {n: {m for m in map(module, _module_imports(p.read_text(encoding="utf-8"))) if m} - {n}
            for n, p in names.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(n):
        state[n] = 1
        path.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                return path[path.index(m):] + [m]
            if m not in state and (found := visit(m)):
                return found
        state[n] = 2
        path.pop()
        return None
    for n in sorted(graph):
        if n not in state and (found := visit(n)):
            return found
    return None


def _reads(source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "open":
            found.append("open()")
        elif isinstance(node, ast.Attribute) and node.attr in READ_CALLS:
            found.append(node.attr)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
            found += [n for n in names if n.split(".")[0] in READ_MODULES]
    return found


def test_no_import_cycle_among_the_pixel_modules():
    # The package __init__ imports the step; the step's modules import only leaves, never the package back.
    graph = _graph()
    graph.pop("py_deid.pixels")
    assert _cycle(graph) is None
    assert not any("py_deid.pixels" in deps for deps in graph.values())


def test_the_cycle_check_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _module_imports("from . import PixelError\nfrom .outcome import X\n") == {"py_deid.pixels.PixelError",
                                                                                    "py_deid.pixels.outcome"}


def test_pixel_modules_read_no_files():
    offenders = {p.name: r for p in PIXELS.glob("*.py") if (r := _reads(p.read_text(encoding="utf-8")))}
    assert offenders == {}


def test_the_read_check_sees_a_file_read():
    assert _reads("from importlib import resources\nresources.files('x').read_text()\n")
    assert _reads("def f(p):\n    return open(p).read()\n") == ["open()"]


def test_pixels_clean_is_the_step_and_its_module_is_not_hidden():
    import py_deid.pixels as pixels
    from py_deid.pixels import step

    assert pixels.clean is step.clean and callable(pixels.clean)


def test_every_relative_import_in_the_pixel_modules_names_a_module_that_exists():
    # Imports inside functions run late: a renamed module would only fail when that function first runs.
    import importlib

    missing = []
    for path in PIXELS.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level and node.module:
                package = "py_deid.pixels" if node.level == 1 else "py_deid"
                try:
                    importlib.import_module(f".{node.module}", package)
                except ModuleNotFoundError:
                    missing.append(f"{path.name}: {'.' * node.level}{node.module}")
    assert missing == []
