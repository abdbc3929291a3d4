"""The layering rule, enforced by parsing every import of the package.

- The core (everything not listed in HOST_MODULES) runs unchanged in Pyodide and does no I/O: it may import
  the standard library minus the I/O and process modules, pydicom, and other core modules.
- Host modules may import what their host has (numpy, Pillow, tesserocr... natively; js and pyodide in the
  browser); the receiver its HTTP stack; batch, distributed, cli and verify_files the file system.
- Only py_deid/hosts/__init__.py looks at the platform.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).parents[1] / "py_deid"
HOST_MODULES = ("cli", "site_key", "__main__", "batch", "distributed", "verify_files", "receiver", "hosts.native",
                "hosts.native_ocr", "hosts.native_codecs", "hosts.tessdata", "hosts.browser", "_standard.generate",
                "_standard.generate_vocabulary")
CORE_FORBIDDEN = {"numpy", "PIL", "tesserocr", "pylibjpeg", "openjpeg", "libjpeg", "jpeg_ls", "rle", "starlette",
                  "uvicorn", "httpx", "cryptography", "js", "pyodide", "os", "subprocess", "socket", "shutil",
                  "tempfile", "pathlib", "multiprocessing", "concurrent", "threading", "asyncio", "urllib",
                  "http", "sqlite3", "ssl", "requests", "glob", "io_open"}
THIRD_PARTY_OK = {"pydicom"}


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).with_suffix("")
        name = ".".join(rel.parts)
        if name.endswith("__init__"):
            name = name[: -len(".__init__")] if name != "__init__" else ""
        yield name, path


def _is_host(name: str) -> bool:
    return any(name == h or name.startswith(h + ".") for h in HOST_MODULES)


def _imports(path: Path, name: str) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".") if package else []
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                mod = ".".join(["py_deid", *base, *([node.module] if node.module else [])])
                if node.module is None:
                    found += [f"{mod}.{a.name}" for a in node.names]
                else:
                    found.append(mod)
            else:
                found.append(node.module)
    return found


def test_core_imports_only_stdlib_pydicom_and_core():
    stdlib = set(sys.stdlib_module_names)
    problems = []
    for name, path in _modules():
        if _is_host(name):
            continue
        for imported in _imports(path, name):
            top = imported.split(".")[0]
            if top == "py_deid":
                inner = imported[len("py_deid."):] if imported != "py_deid" else ""
                if inner and _is_host(inner):
                    problems.append(f"{name} imports host module {imported}")
            elif top in CORE_FORBIDDEN:
                problems.append(f"{name} imports {imported}")
            elif top not in stdlib and top not in THIRD_PARTY_OK and top != "__future__":
                problems.append(f"{name} imports third-party {imported}")
    assert problems == []


def test_only_the_hosts_package_checks_the_platform():
    offenders = []
    for name, path in _modules():
        if name == "hosts":
            continue
        text = path.read_text(encoding="utf-8")
        if "sys.platform" in text or "emscripten" in text or "IS_BROWSER" in text and name != "hosts.browser":
            offenders.append(name)
    assert offenders == []


def test_the_rule_sees_the_core():
    names = {n for n, _ in _modules() if not _is_host(n)}
    assert {"header", "instance", "policy", "phi", "verify"} <= names
