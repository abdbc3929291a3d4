"""py_deid.stow: the multipart/related encoder (pure Python, no I/O), decoded by python-multipart."""

from __future__ import annotations

import random
import shutil
import subprocess

import pytest
from py_deid import stow

from . import receiver_support as rs



def test_round_trip_any_chunking(tmp_path):
    """What the encoder writes, the receiver's parser (python-multipart) splits back, however it arrives."""
    from .test_body import split_parts

    rng = random.Random(14)
    parts = [b"", b"\r\n", b"--", b"\r\n--py-deid-x"] + [rng.randbytes(rng.randrange(0, 9000)) for _ in range(5)]
    ctype, body = stow.encode(parts)
    media, params = stow.parse_content_type(ctype)
    assert media == "multipart/related" and params["type"] == "application/dicom"
    assert len(body) == stow.encoded_length([len(p) for p in parts], params["boundary"])
    for chunk in (61, 4096, 1 << 20):  # (byte-by-byte arrival: test_body.py, on smaller bodies)
        assert split_parts(tmp_path, body, params["boundary"], chunk) == parts


def test_content_type_grammar():
    assert stow.parse_content_type('Multipart/Related; Type="application/dicom"; boundary="a b;c"') == (
        "multipart/related", {"type": "application/dicom", "boundary": "a b;c"})
    assert stow.parse_content_type("multipart/related;boundary=xyz")[1] == {"boundary": "xyz"}
    for bad in ("", "multipart", "multipart/related; boundary", 'multipart/related; boundary="open'):
        with pytest.raises(ValueError):
            stow.parse_content_type(bad)
    assert not stow.valid_boundary("a" * 71) and not stow.valid_boundary("ends ") and not stow.valid_boundary("é")


def test_encoder_takes_memoryviews_and_bytearrays(tmp_path):
    from .test_body import split_parts

    parts = [memoryview(b"abc"), bytearray(b"def"), b""]
    ctype, body = stow.encode(parts, boundary="mv")
    assert split_parts(tmp_path, body, "mv", 5) == [b"abc", b"def", b""]


def test_encoder_refuses_a_part_holding_the_boundary():
    with pytest.raises(ValueError):
        stow.encode([b"abc\r\n--same\r\n"], boundary="same")


PYODIDE = rs.REPO / "web" / "node_modules" / "pyodide"
RUN_IN_PYODIDE = """
import { loadPyodide } from "%(pyodide)s/pyodide.mjs";
import { readFileSync } from "fs";
const py = await loadPyodide({ indexURL: "%(pyodide)s/" });
py.FS.mkdirTree("/lib/py_deid");
py.FS.writeFile("/lib/py_deid/__init__.py", "");
py.FS.writeFile("/lib/py_deid/stow.py", readFileSync("%(stow)s"));
console.log(py.runPython(`
import sys; sys.path.insert(0, "/lib")
from py_deid import stow
ct, body = stow.encode([b"abc", memoryview(bytes(range(256)) * 100)])
b = stow.parse_content_type(ct)[1]["boundary"]
" ".join([sys.platform, str(len(body)), str(body.count(b"--" + b.encode()))])
`));
"""


@pytest.mark.skipif(not (shutil.which("node") and (PYODIDE / "pyodide.mjs").exists()),
                    reason="needs node and web/node_modules/pyodide (npm install in web/)")
def test_stow_runs_unchanged_in_pyodide(tmp_path):
    script = tmp_path / "run.mjs"
    script.write_text(RUN_IN_PYODIDE % {"pyodide": PYODIDE.as_posix(), "stow": (rs.REPO / "py_deid" / "stow.py").as_posix()})
    done = subprocess.run(["node", str(script)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-3:] == ["emscripten", str(stow.encoded_length([3, 25600], "x" * 40)), "3"]
