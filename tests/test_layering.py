"""The layering rules of docs/development.md ("Layout and layering"), enforced by parsing every module of the package.

- The core (every module outside HOST_MODULES) runs unchanged in Pyodide and does no file, network or process
  access: it imports the standard library minus the I/O, network, process and platform modules, pydicom and other
  core modules; it calls no `open`, reads no path, writes no file. Package data (the TOML tables under
  py_deid/config) is read through importlib.resources by the modules of DATA_READERS only.
- Host modules may import what their host has (numpy, Pillow, tesserocr... natively; js and pyodide in the
  browser); the receiver its HTTP stack; batch, distributed, cli and verify_files the file system.
- Only py_deid/hosts/__init__.py looks at the platform, and what it finds is used.

Each rule is a function of one module's syntax tree, so that the last tests can feed it a deliberate violation.
"""

from __future__ import annotations

import ast
import sys
import textwrap

from tests.package_modules import absolute, imports, modules, parse

HOST_MODULES = ("cli", "site_key", "__main__", "batch", "distributed", "verify_files", "receiver", "hosts.native",
                "hosts.native_ocr", "hosts.native_codecs", "hosts.native_plugins", "hosts.installed_version", "hosts.tessdata",
                "hosts.browser", "_standard.generate",
                "_standard.generate_vocabulary")
# The core modules that read package data. The pixels work moves both readers into one data-loading module:
# its merge replaces these two names by that one.
DATA_READERS = frozenset({"package_data"})
PLATFORM_MODULE = "hosts"  # py_deid/hosts/__init__.py

# Files, network, processes, threads, the platform, dynamic imports; and the host libraries.
CORE_FORBIDDEN = {"os", "io", "pathlib", "shutil", "tempfile", "glob", "fileinput", "mmap", "sqlite3", "dbm",
                  "shelve", "zipfile", "tarfile", "gzip", "bz2", "lzma", "socket", "ssl", "select", "selectors",
                  "asyncio", "http", "urllib", "ftplib", "smtplib", "email", "webbrowser", "subprocess",
                  "multiprocessing", "concurrent", "threading", "signal", "platform", "ctypes", "importlib",
                  "runpy", "logging", "numpy", "PIL", "tesserocr", "pylibjpeg", "openjpeg", "libjpeg", "jpeg_ls",
                  "rle", "starlette", "uvicorn", "httpx", "requests", "cryptography", "js", "pyodide"}
ALLOWED_FROM = {"io": {"BytesIO", "StringIO"}, "importlib": {"resources"}}  # in-memory buffers; package data
THIRD_PARTY_OK = {"pydicom"}
OPENERS = {"open", "__import__", "exec", "eval"}
PATH_METHODS = {"read_bytes", "read_text", "write_bytes", "write_text", "save_as", "unlink", "mkdir", "rename"}
PYDICOM_FILE_FUNCTIONS = {"dcmread", "dcmwrite", "read_file", "write_file"}
BROWSER_MODULES = {"pyodide", "js", "_pyodide", "pyodide_js"}  # `"pyodide" in sys.modules` asks for the platform
PLATFORM_ATTRIBUTES = {("sys", "platform"), ("sys", "implementation"), ("sys", "getwindowsversion"), ("os", "name"),
                       ("os", "uname")}


def _is_host(name: str) -> bool:
    return any(name == h or name.startswith(h + ".") for h in HOST_MODULES)


def _from_names(tree: ast.AST, module: str) -> set[str]:
    return {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and not n.level and n.module == module
            for a in n.names}


def import_problems(name: str, tree: ast.AST, is_package: bool = False) -> list[str]:
    """What a core module imports that the core may not."""
    problems = []
    stdlib = set(sys.stdlib_module_names)
    known = {f"py_deid.{m}" if m else "py_deid" for m in modules()}  # `from ..hosts import native` is a submodule
    for imported in imports(tree, name, is_package, known):
        top = imported.split(".")[0]
        if top == "py_deid":
            inner = imported[len("py_deid."):]
            if inner and _is_host(inner):
                problems.append(f"{name} imports host module {imported}")
        elif top in ALLOWED_FROM and imported == top:
            extra = _from_names(tree, top) - ALLOWED_FROM[top]
            plain = any(isinstance(n, ast.Import) and any(a.name.split(".")[0] == top for a in n.names)
                        for n in ast.walk(tree))
            if extra or plain:
                problems.append(f"{name} imports {top} beyond {sorted(ALLOWED_FROM[top])}")
            elif top == "importlib" and name not in DATA_READERS:
                problems.append(f"{name} reads package data but is not one of the data readers")
        elif top in CORE_FORBIDDEN:
            problems.append(f"{name} imports {imported}")
        elif top not in stdlib and top not in THIRD_PARTY_OK and top != "__future__":
            problems.append(f"{name} imports third-party {imported}")
    return problems


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _in_memory(arg: ast.AST) -> bool:
    # BufferReader (py_deid.instance): pydicom's file interface over a buffer the host passed in (a memory map)
    return isinstance(arg, ast.Call) and _dotted(arg.func).split(".")[-1] in ("BytesIO", "DicomBytesIO",
                                                                              "BufferReader")


def call_problems(name: str, tree: ast.AST) -> list[str]:
    """File access by call: open(), a path's read/write methods, pydicom reading or writing a file by name."""
    problems = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        where = f"{name}:{node.lineno}"
        if isinstance(func, ast.Name) and func.id in OPENERS:
            problems.append(f"{where} calls {func.id}()")
        elif isinstance(func, ast.Attribute) and func.attr in PATH_METHODS:
            # Package data through importlib.resources (resources.files(...).joinpath(...).read_text()).
            reads_resource = func.attr == "read_text" and "resources.files" in _dotted_calls(func.value)
            if not (reads_resource and name in DATA_READERS):
                problems.append(f"{where} calls .{func.attr}()")
        elif _dotted(func).split(".")[-1] in PYDICOM_FILE_FUNCTIONS:
            if not node.args or not _in_memory(node.args[0]):
                problems.append(f"{where} calls {_dotted(func)} on something other than an in-memory buffer")
    return problems


def _dotted_calls(node: ast.AST) -> str:
    """`a.b(...).c(...)` -> "a.b.c" (the chain of names, calls skipped)."""
    while isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Attribute):
        return f"{_dotted_calls(node.value)}.{node.attr}"
    return node.id if isinstance(node, ast.Name) else ""


def platform_problems(name: str, tree: ast.AST, is_package: bool = False) -> list[str]:
    """Looking at the platform anywhere but py_deid/hosts/__init__.py."""
    if name == PLATFORM_MODULE:
        return []
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and (_dotted(node.value), node.attr) in PLATFORM_ATTRIBUTES:
            problems.append(f"{name}:{node.lineno} reads {_dotted(node)}")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and "emscripten" in node.value.lower():
            problems.append(f"{name}:{node.lineno} names emscripten")
        elif (isinstance(node, ast.Compare) and any(_dotted(c) == "sys.modules" for c in node.comparators)
              and isinstance(node.left, ast.Constant) and node.left.value in BROWSER_MODULES):
            problems.append(f"{name}:{node.lineno} probes sys.modules for {node.left.value}")
    problems += [f"{name} imports platform" for m in imports(tree, name, is_package) if m.split(".")[0] == "platform"]
    return problems


def _all():
    for name, path in modules().items():
        yield name, path, parse(path)


def test_the_core_imports_only_stdlib_without_io_pydicom_and_core():
    problems = []
    for name, path, tree in _all():
        if not _is_host(name):
            problems += import_problems(name, tree, path.name == "__init__.py")
    assert problems == []


def test_the_core_opens_no_file():
    problems = []
    for name, _, tree in _all():
        if not _is_host(name):
            problems += call_problems(name, tree)
    assert problems == []


def test_every_data_reader_exists_and_reads_package_data():
    trees = {name: tree for name, _, tree in _all()}
    for reader in DATA_READERS:
        assert reader in trees, f"DATA_READERS names {reader}, which does not exist"
        assert "resources" in _from_names(trees[reader], "importlib"), f"{reader} reads no package data"


def test_only_the_hosts_package_checks_the_platform():
    problems = []
    for name, path, tree in _all():
        problems += platform_problems(name, tree, path.name == "__init__.py")
    assert problems == []


def test_the_platform_check_is_real_and_used():
    all_modules = {name: (path, tree) for name, path, tree in _all()}
    path, tree = all_modules[PLATFORM_MODULE]
    checks = [n for n in ast.walk(tree) if isinstance(n, ast.Attribute) and _dotted(n) == "sys.platform"]
    assert checks, "py_deid/hosts/__init__.py no longer checks sys.platform"
    exported = {t.id for n in ast.walk(tree) if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}
    assert "IS_BROWSER" in exported
    users = [name for name, (p, t) in all_modules.items() if name != PLATFORM_MODULE
             and any(isinstance(n, ast.ImportFrom) and absolute(n, name, p.name == "__init__.py") == "py_deid.hosts"
                     and "IS_BROWSER" in {a.name for a in n.names} for n in ast.walk(t))]
    assert users, "IS_BROWSER is computed but nobody uses it"


def test_the_rules_see_the_core():
    names = {n for n in modules() if not _is_host(n)}
    assert {"header", "instance", "policy", "phi", "verify", "pixels", "hosts", "hosts.services"} <= names
    assert all(any(n == h or n.startswith(h + ".") for n in modules()) for h in HOST_MODULES), "a host module is gone"


# ---- the rules themselves, fed deliberate violations ----

def _tree(source: str) -> ast.Module:
    return ast.parse(textwrap.dedent(source))


def test_a_core_module_that_does_io_is_caught():
    tree = _tree("""
        import socket
        import subprocess
        from io import BytesIO, open as io_open
        from pathlib import Path
        from urllib.request import urlopen
        from concurrent.futures import ThreadPoolExecutor
        import numpy
        from importlib import resources
        from ..hosts import native
        import pydicom

        def f(name, data):
            with open(name) as fh:
                fh.read()
            Path(name).write_bytes(data)
            pydicom.dcmread(name)
            pydicom.dcmread(BytesIO(data))   # allowed: in memory
            ds = pydicom.Dataset()
            ds.save_as(name)
            return resources.files("py_deid").joinpath("x").read_text()
    """)
    imported = import_problems("pixels.sample", tree)
    for needle in ("imports socket", "imports subprocess", "imports io beyond", "imports pathlib",
                   "imports urllib.request", "imports concurrent.futures", "imports numpy",
                   "reads package data", "host module py_deid.hosts.native"):
        assert any(needle in p for p in imported), (needle, imported)
    assert not any("pydicom" in p for p in imported)
    called = call_problems("pixels.sample", tree)
    assert sorted(p.split(" ", 1)[1] for p in called) == sorted([
        "calls open()", "calls .write_bytes()", "calls pydicom.dcmread on something other than an in-memory buffer",
        "calls .save_as()", "calls .read_text()"]), called
    # The same package-data read by a data reader is what the rule allows.
    assert call_problems("package_data", _tree("""
        from importlib import resources
        text = resources.files("py_deid").joinpath("config", "x.toml").read_text(encoding="utf-8")
    """)) == []


def test_a_platform_check_outside_the_hosts_package_is_caught():
    tree = _tree("""
        import os
        import platform
        import sys
        A = sys.platform == "emscripten"
        B = "pyodide" in sys.modules
        E = "pydicom" in sys.modules   # a module loaded or not: no platform question
        C = os.name == "posix"
        D = platform.system()
    """)
    found = platform_problems("pixels.sample", tree)
    assert {p.split(" ", 1)[1] for p in found} == {"reads sys.platform", "names emscripten",
                                                   "probes sys.modules for pyodide", "reads os.name",
                                                   "imports platform"}, found
    assert platform_problems(PLATFORM_MODULE, tree) == []
    # The old rule's slip (`a or b or c and d`) let any module but hosts.browser read sys.platform: not this one.
    assert platform_problems("hosts.browser", tree)
