"""The modules of py_deid and what each imports, read from their source (nothing is imported): shared by the
layering and the import-cycle tests."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).parents[1] / "py_deid"


def modules(package: Path = PACKAGE) -> dict[str, Path]:
    """Dotted name inside the package ("" for the package itself, "pixels" for pixels/__init__.py) -> file."""
    found = {}
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def absolute(node: ast.ImportFrom, name: str, is_package: bool) -> str:
    """The absolute module an ImportFrom names (`from ..x import y` in py_deid.a.b -> py_deid.x)."""
    if not node.level:
        return node.module or ""
    base = ["py_deid", *(name.split(".") if name else [])]
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def imports(tree: ast.AST, name: str, is_package: bool, known: set[str] | frozenset[str] = frozenset()) -> list[str]:
    """Every module imported anywhere in the tree (functions and TYPE_CHECKING blocks included), absolute.

    `from pkg import x` counts as an import of pkg.x when `py_deid.<...>.x` is one of `known` (a submodule), else
    of pkg."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            mod = absolute(node, name, is_package)
            for a in node.names:
                sub = f"{mod}.{a.name}"
                found.append(sub if sub in known else mod)
    return found


def parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
