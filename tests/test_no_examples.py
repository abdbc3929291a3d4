"""The browser's stand-in for pydicom.examples: nothing in pydicom or py_deid uses the examples but pydicom's own
`import pydicom.examples`, and pydicom imports and reads a file with the stand-in in place (natively, in a fresh
interpreter, as the browser worker does it: the stand-in put in sys.modules before pydicom is first imported)."""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
from pathlib import Path

from py_deid.hosts import no_examples

ROOT = Path(__file__).resolve().parents[1]


def _uses_of_examples(folder: Path, skip: set[Path]) -> list[str]:
    found = []
    for path in sorted(folder.rglob("*.py")):
        if path in skip or "tests" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").endswith("examples"):
                found.append(f"{path}: from {node.module} import ...")
            elif isinstance(node, ast.ImportFrom) and any(a.name == "examples" for a in node.names):
                found.append(f"{path}: from {node.module} import examples")
            elif isinstance(node, ast.Attribute) and node.attr == "examples":
                found.append(f"{path}: .examples")
    return found


def test_only_pydicoms_own_import_uses_the_examples():
    pydicom = Path(importlib.util.find_spec("pydicom").origin).parent
    assert "import pydicom.examples" in (pydicom / "__init__.py").read_text(encoding="utf-8"), \
        "pydicom no longer imports its examples: the stand-in can go"
    skip = {pydicom / "__init__.py", pydicom / "examples" / "__init__.py"}
    assert _uses_of_examples(pydicom, skip) == []
    assert _uses_of_examples(ROOT / "py_deid", set()) == []


def test_pydicom_reads_a_file_with_the_stand_in(samples):
    code = ("import sys\nfrom py_deid.hosts import no_examples\nsys.modules['pydicom.examples'] = no_examples\n"
            "import pydicom\nds = pydicom.dcmread(sys.argv[1])\nprint(ds.Modality)\n"
            "assert 'pydicom.examples' in sys.modules and sys.modules['pydicom.examples'] is no_examples\n")
    proc = subprocess.run([sys.executable, "-c", code, str(samples.path("CT_small.dcm"))], capture_output=True,
                          text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "CT"


def test_asking_for_an_example_raises():
    try:
        no_examples.ct  # noqa: B018
    except AttributeError as e:
        assert "not loaded in the browser" in str(e)
    else:
        raise AssertionError("the stand-in gave an example")
